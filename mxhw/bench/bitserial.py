"""``python -m mxhw.bench bitserial``: cycles per GEMV of the bit-serial engine, per precision.

The engine (:class:`mxhw.pe.bitserial_engine.BitSerialGEMV`, ``pes=16``, ``lanes=8``,
``group=128``, the family's types) computes ``y = W x`` for a ``rows x cols`` weight
matrix (default 16 x 256) with INT8 activations, on Amaranth's simulator. Cycle counts are
**simulated**: the testbench counts clock edges from the first input beat's transfer to the
last output beat's transfer (no gaps, no back-pressure); every result is checked against
``golden.bitserial.gemv``.

Figures:

* ``gemv_cycles_w3`` / ``_w4`` / ``_w8``: INT3 / INT4 / INT8 weights (serial precision 3, 4,
  8); ``gemv_cycles_bitmod_fp3`` / ``_bitmod_fp4``: BitMoD 3-bit / 4-bit weights (our
  two's-complement serial form needs 4 bits for FP3 and 5-6 bits for FP4, per group).
* ``parallel_int8_cycles``: a bit-parallel INT8 x INT8 datapath with the same number of
  weight lanes (``pes * lanes`` = 128 multipliers, each one MAC per cycle, fully pipelined,
  no fill or drain counted): ``ceil(rows / pes) * cols / lanes`` cycles -- **analytic**.
* ``ratio_wN`` = ``gemv_cycles_wN / parallel_int8_cycles``: how much longer the bit-serial
  engine takes than that bit-parallel datapath (ideal: the precision). Equivalently, a
  bit-parallel datapath of the same throughput needs ``1 / ratio`` times the multipliers.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from . import machine_config, print_table, write_json
from .. import sim
from ..golden import bitserial as g
from ..pe.bitserial_engine import BitSerialGEMV

__all__ = ["run", "main"]

CASES = [("w3", "int3"), ("w4", "int4"), ("w8", "int8"), ("bitmod_fp3", "bitmod_fp3"),
         ("bitmod_fp4", "bitmod_fp4")]


def _simulate(dut, q, x):
    beats = dut.beats(q, x)
    n_out = -(-q.codes.shape[0] // dut.pes)
    state = {"cycle": 0, "first": None, "last": None}
    got = []

    async def producer(ctx):
        ip, iv, ir = dut.i.payload, dut.i.valid, dut.i.ready
        cycle = 0
        for b in beats:
            ctx.set(ip, b)
            ctx.set(iv, 1)
            while True:
                *_, ready = await ctx.tick().sample(ir)
                cycle += 1
                if ready:
                    if state["first"] is None:
                        state["first"] = cycle
                    break
                if cycle > 10_000_000:
                    raise sim.SimTimeout("bitserial bench: input stalled")
        ctx.set(iv, 0)

    async def consumer(ctx):
        ov, op, orr = dut.o.valid, dut.o.payload, dut.o.ready
        ctx.set(orr, 1)
        cycle = 0
        while len(got) < n_out:
            *_, valid, payload = await ctx.tick().sample(ov, op)
            cycle += 1
            if valid:
                got.append([int(v) for v in payload])
                state["last"] = cycle
            if cycle > 10_000_000:
                raise sim.SimTimeout("bitserial bench: no output")

    sim.run(dut, producer, consumer, backend="pysim")
    ys = [v for beat in got for v in beat][:q.codes.shape[0]]
    if ys != g.gemv(q, x):
        raise RuntimeError("bitserial bench: engine result differs from golden.bitserial.gemv")
    # edges from the first input transfer to the last output transfer, both included
    return state["last"] - state["first"] + 1


def run(rows=16, cols=256, pes=16, lanes=8, group=128, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((rows, cols))
    x = rng.integers(-128, 128, cols)
    dut_args = dict(pes=pes, lanes=lanes, group=group, cols=cols)
    parallel = math.ceil(rows / pes) * (cols // lanes)
    figures, rows_out = {}, []
    for key, fam in CASES:
        q = g.quantize_int_scale(w, fam, group=group)
        t0 = time.perf_counter()
        cycles = _simulate(BitSerialGEMV(**dut_args, types=g.FAMILIES[fam]), q, x)
        dt = time.perf_counter() - t0
        figures[f"gemv_cycles_{key}"] = cycles
        figures[f"ratio_{key}"] = cycles / parallel
        prec = g.family_bits(fam)
        rows_out.append((key, fam, prec, cycles, f"{cycles / parallel:.3f}", f"{dt:.1f}"))
    figures["parallel_int8_cycles"] = parallel
    config = {**machine_config(), "rows": rows, "cols": cols, "pes": pes, "lanes": lanes,
              "group": group, "backend": "pysim",
              "parallel_model": "analytic: ceil(rows/pes) * cols/lanes (pes*lanes INT8 MACs)"}
    return figures, rows_out, config


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mxhw.bench bitserial",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", metavar="FILE", help="write the figures as JSON")
    ap.add_argument("--rows", type=int, default=16)
    ap.add_argument("--cols", type=int, default=256)
    args = ap.parse_args(argv)
    figures, rows, config = run(rows=args.rows, cols=args.cols)
    print(f"BitSerialGEMV pes=16 lanes=8 group=128, GEMV {args.rows} x {args.cols}, "
          f"INT8 activations (pysim; cycles simulated)")
    print_table(["case", "weights", "max serial bits", "cycles/GEMV",
                 "x bit-parallel INT8", "sim s"], rows)
    print(f"bit-parallel INT8xINT8 reference (analytic, {16 * 8} MACs/cycle): "
          f"{figures['parallel_int8_cycles']} cycles")
    if args.json:
        write_json(args.json, figures, config)
    return 0
