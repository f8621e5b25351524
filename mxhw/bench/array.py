"""``python -m mxhw.bench array``: systolic-array utilisation on a GEMM, by simulation.

Runs :class:`mxhw.systolic.GemmEngine` (``--dataflow``: either; weight-stationary keys end
in ``_ws``) on an MXINT8 GEMM with operands offered every cycle
and results always accepted, and reports busy / (busy + stalled + idle) cycles as counted
by the engine's own telemetry (from reset until the last result row has left, so the
fill and drain of the array are included). The full 256x256x256 GEMM on 8x8 is
``--size 256 256 256`` (key ``utilization_256_8x8``); the default is a smaller GEMM that
pysim finishes in about a minute (key ``utilization_<M>x<N>x<K>_<R>x<C>``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ..systolic.array import DATAFLOWS
from . import machine_config, print_table, write_json


def measure(M, N, K, rows, cols, backend="pysim", fmt="mxint8", seed=0,
            dataflow="output_stationary"):
    from ..golden.arith import fixed, gemm
    from ..golden.quantize import quantize
    from ..sim import run, stream_recv, stream_send
    from ..systolic import GemmEngine
    from ..systolic.driver import array_beats, tile_order, ws_engine_beats

    rng = np.random.default_rng(seed)
    a = quantize(rng.standard_normal((M, K)), fmt, axis=1)
    b = quantize(rng.standard_normal((K, N)), fmt, axis=0)
    acc = fixed(32, 16)
    dut = GemmEngine(rows, cols, fmt, fmt, M, N, K, acc=acc, dataflow=dataflow)
    H = dut.tile_rows
    tiles = tile_order(M, N, H, cols)
    tel, got = {}, {}

    def beats():
        if dataflow == "weight_stationary":
            yield from ws_engine_beats(a, b, rows, cols, H)
            return
        for m0, n0 in tiles:
            for bt in array_beats(a, b, rows, cols, m0, n0):
                del bt["last"]
                yield bt

    async def producer(ctx):
        await stream_send(ctx, dut.i, beats())

    async def consumer(ctx):
        out = await stream_recv(ctx, dut.o, len(tiles) * H)
        for t, (m0, n0) in enumerate(tiles):
            for i in range(H):
                for j in range(cols):
                    got[m0 + i, n0 + j] = out[t * H + i].row.data[j]
        await ctx.tick()
        for n in ("busy", "stalled", "idle"):
            tel[n] = ctx.get(getattr(dut, n))

    t0 = time.perf_counter()
    run(dut, producer, consumer, backend=backend)
    wall = time.perf_counter() - t0
    _, raw = gemm(a, b, acc, return_raw=True)
    correct = all(got[i, j] == raw[i, j] for i in range(M) for j in range(N))
    total = tel["busy"] + tel["stalled"] + tel["idle"]
    return {"busy": tel["busy"], "total": total, "utilization": tel["busy"] / total,
            "wall_s": wall, "correct": correct}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m mxhw.bench array", description=__doc__)
    p.add_argument("--json", metavar="FILE")
    p.add_argument("--size", type=int, nargs=3, metavar=("M", "N", "K"), default=(16, 16, 256))
    p.add_argument("--array", type=int, nargs=2, metavar=("ROWS", "COLS"), default=(8, 8))
    p.add_argument("--backend", default="pysim", choices=("pysim", "compiled"))
    p.add_argument("--dataflow", default="output_stationary", choices=DATAFLOWS)
    args = p.parse_args(argv)
    M, N, K = args.size
    R, C = args.array
    r = measure(M, N, K, R, C, args.backend, dataflow=args.dataflow)
    key = (f"utilization_256_{R}x{C}" if (M, N, K) == (256, 256, 256)
           else f"utilization_{M}x{N}x{K}_{R}x{C}")
    if args.dataflow != "output_stationary":
        key += "_ws"
    print_table(["figure", "value"], [
        (key, f"{r['utilization']:.4f}"), ("busy cycles", r["busy"]),
        ("total cycles", r["total"]), ("results equal golden", r["correct"]),
        (f"wall time ({args.backend}) s", f"{r['wall_s']:.1f}")])
    if args.json:
        cfg = machine_config()
        cfg.update({"M": M, "N": N, "K": K, "rows": R, "cols": C, "backend": args.backend,
                    "dataflow": args.dataflow,
                    "format": "mxint8", "results_equal_golden": r["correct"]})
        write_json(args.json, {key: r["utilization"], "busy_cycles": r["busy"],
                               "total_cycles": r["total"], "sim_wall_s": r["wall_s"]}, cfg)
    return 0 if r["correct"] else 1
