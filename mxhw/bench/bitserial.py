"""``python -m mxhw.bench bitserial``: cycles per GEMV of the bit-serial engine, per precision,
and its area against a bit-parallel INT8 x INT8 datapath of the same throughput.

**Cycles (simulated).** The engine (:class:`mxhw.pe.bitserial_engine.BitSerialGEMV`,
``pes=16``, ``lanes=8``, ``group=128``) computes ``y = W x`` for a ``rows x cols`` weight
matrix (default 16 x 256) with INT8 activations, on Amaranth's simulator. The INT3 / INT4 /
INT8 cases run on one engine mapping the types ``int3``, ``int4``, ``int8``
(:data:`INT_TYPES`: one circuit, the precision chosen per group at run time); the BitMoD
cases on an engine mapping that BitMoD family. The testbench counts clock edges from the
first input beat's transfer to the last output beat's transfer (no gaps, no
back-pressure); every result is checked against ``golden.bitserial.gemv``.

* ``gemv_cycles_w3`` / ``_w4`` / ``_w8``: INT3 / INT4 / INT8 weights (serial precision 3, 4,
  8); ``gemv_cycles_bitmod_fp3`` / ``_bitmod_fp4``: BitMoD 3-bit / 4-bit weights (our
  two's-complement serial form needs 4 bits for FP3 and 5-6 bits for FP4, per group).
* ``parallel_int8_cycles``: a bit-parallel INT8 x INT8 datapath with the same number of
  weight lanes (``pes * lanes`` = 128 multipliers, each one MAC per cycle, fully pipelined,
  no fill or drain counted): ``ceil(rows / pes) * cols / lanes`` cycles -- **analytic**.
* ``ratio_wN`` = ``gemv_cycles_wN / parallel_int8_cycles``: how much longer the bit-serial
  engine takes than that bit-parallel datapath (ideal: the precision).

**Area at equal throughput (synthesised).** The engine's measured throughput at N-bit
weights is ``engine_macs_per_cycle_wN = rows * cols / gemv_cycles_wN`` (fill and drain
included). The bit-parallel datapath of the same throughput is a
:class:`mxhw.pe.ParallelMAC` with ``P = parallel_lanes_wN = max(1, ceil(rows * cols /
gemv_cycles_wN))`` signed 8 x 8 multipliers (P MACs per cycle, so at least the engine's
throughput), a balanced adder tree and an accumulator as wide as the engine's
(``acc_width``), every stage registered. Both designs -- the INT engine exactly as
simulated, and ``ParallelMAC(P)`` for each N -- go through :func:`mxhw.bench.ppa.run_config`
(each block in the ppa :class:`~mxhw.bench.ppa.Harness`, whose registers are not counted;
results cached by RTL hash under ppa's cache, ``~/.cache/mxhw/ppa``) with Yosys for the
ECP5 LFE5U-85F (ULX3S) twice:

* **LUT-only** (``synth_ecp5 -nodsp``, target ``ecp5_nodsp``): every multiplier in LUT4 /
  CCU2C logic. ``engine_luts``, ``engine_ffs``, ``parallel_luts_wN``, ``parallel_ffs_wN``;
  LUTs are LUT4 + 2 * CCU2C (ppa's count). ``area_ratio_wN = parallel_luts_wN /
  engine_luts``: above 1 the bit-serial engine is the smaller of the two.
* **DSPs allowed** (``synth_ecp5``, target ``ecp5``; then nextpnr-ecp5, 300 MHz requested):
  ``engine_dsp_luts`` / ``_ffs`` / ``_dsps`` / ``engine_fmax_mhz`` and
  ``parallel_dsp_luts_wN`` / ``_ffs_wN`` / ``_dsps_wN`` / ``parallel_fmax_mhz_wN``
  (MULT18X18D + ALU54B cells counted as DSPs; Fmax register to register in the harness).
  No ratio is formed here: LUTs and DSP blocks are not one unit.

What the comparison leaves out, on the bit-parallel side: the weight mapping and the group
scales (the engine's :class:`WeightMapper` and :class:`BitSerialDequant` are in its
count), so the ratio favours the bit-parallel datapath. Both are compared per cycle, not
per second (``*_fmax_mhz`` gives each design's clock).

Options: ``--no-synth`` (cycles only, no tool runs); ``--cache DIR`` / ``--rerun`` (ppa's
result cache, or ignore it); ``--rows``, ``--cols``, ``--pes``, ``--lanes``, ``--group``
(the GEMV and the engine; the defaults above are the published figures).
"""

from __future__ import annotations

import argparse
import functools
import math
import time

import numpy as np

from . import machine_config, print_table, write_json
from .. import sim
from ..golden import bitserial as g
from ..pe.bitserial_engine import BitSerialGEMV

__all__ = ["run", "synthesise", "engine_config", "parallel_config", "parallel_lanes",
           "main", "INT_TYPES", "TARGETS"]

CASES = [("w3", "int3"), ("w4", "int4"), ("w8", "int8"), ("bitmod_fp3", "bitmod_fp3"),
         ("bitmod_fp4", "bitmod_fp4")]
#: The INT cases the area comparison covers, and the types of the one engine that runs them.
INT_CASES = ("w3", "w4", "w8")
INT_TYPES = ("int3", "int4", "int8")
#: ppa targets: LUT-only synthesis, and synthesis with DSPs plus place and route.
TARGETS = ("ecp5_nodsp", "ecp5")


def _types(fam):
    return INT_TYPES if fam in INT_TYPES else g.FAMILIES[fam]


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
    """Simulate every case of :data:`CASES`; returns ``(figures, table rows, config)``."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((rows, cols))
    x = rng.integers(-128, 128, cols)
    dut_args = dict(pes=pes, lanes=lanes, group=group, cols=cols)
    parallel = math.ceil(rows / pes) * (cols // lanes)
    figures, rows_out = {}, []
    acc_width = None
    for key, fam in CASES:
        q = g.quantize_int_scale(w, fam, group=group)
        t0 = time.perf_counter()
        dut = BitSerialGEMV(**dut_args, types=_types(fam))
        if fam in INT_TYPES:
            acc_width = dut.acc_width
        cycles = _simulate(dut, q, x)
        dt = time.perf_counter() - t0
        figures[f"gemv_cycles_{key}"] = cycles
        figures[f"ratio_{key}"] = cycles / parallel
        prec = g.family_bits(fam)
        rows_out.append((key, fam, prec, cycles, f"{cycles / parallel:.3f}", f"{dt:.1f}"))
    figures["parallel_int8_cycles"] = parallel
    config = {**machine_config(), "rows": rows, "cols": cols, "pes": pes, "lanes": lanes,
              "group": group, "backend": "pysim", "int_engine_types": list(INT_TYPES),
              "acc_width": acc_width,
              "parallel_model": "analytic: ceil(rows/pes) * cols/lanes (pes*lanes INT8 MACs)"}
    return figures, rows_out, config


# ---- area at equal throughput ------------------------------------------------------------

def parallel_lanes(rows, cols, cycles):
    """Multipliers of the bit-parallel datapath matching ``rows * cols`` MACs in ``cycles``
    cycles: ``max(1, ceil(rows * cols / cycles))``."""
    return max(1, -(-(rows * cols) // cycles))


def _make_engine(pes, lanes, group, cols):
    return BitSerialGEMV(pes=pes, lanes=lanes, group=group, cols=cols, types=INT_TYPES)


def _make_parallel(p, acc_width):
    from ..pe import ParallelMAC
    return ParallelMAC(lanes=p, act_width=8, w_width=8, acc_width=acc_width)


def engine_config(pes=16, lanes=8, group=128, cols=256):
    """The INT engine as the bench simulates it, as a :class:`mxhw.bench.ppa.Config`."""
    from .ppa import Config
    return Config(f"bitserial_gemv_p{pes}_l{lanes}_g{group}_c{cols}_int3_4_8", "bitserial",
                  functools.partial(_make_engine, pes, lanes, group, cols), 0,
                  {"pes": pes, "lanes": lanes, "group": group, "cols": cols,
                   "types": list(INT_TYPES)})


def parallel_config(p, acc_width):
    """``ParallelMAC(lanes=p)`` (INT8 x INT8, ``acc_width`` bits) as a ppa Config."""
    from .ppa import Config
    return Config(f"parallel_int8_mac_p{p}_acc{acc_width}", "parallel",
                  functools.partial(_make_parallel, p, acc_width), p,
                  {"lanes": p, "acc_width": acc_width})


def _area(res, target):
    """The figures of one ppa result for ``target``; raises ``RuntimeError`` with the tool's
    message if it failed (no ratio from a partial measurement)."""
    if target in res["errors"]:
        raise RuntimeError(f"bitserial bench: {res['name']} ({target}) failed:\n"
                           f"{res['errors'][target]}")
    return res[target]


def synthesise(figures, config, cache=None, rerun=False, progress=None):
    """Synthesise the INT engine and, per INT case, the bit-parallel datapath of its
    measured throughput (see the module docstring); ``figures`` and ``config`` are
    :func:`run`'s. Returns ``(figures, table rows, config)``, each with the new entries
    only."""
    from . import ppa
    rows, cols, acc_width = config["rows"], config["cols"], config["acc_width"]
    eng_cfg = engine_config(config["pes"], config["lanes"], config["group"], cols)
    out, table = {}, []
    t0 = time.monotonic()
    eng = ppa.run_config(eng_cfg, cache, targets=TARGETS, rerun=rerun)
    if progress:
        progress(eng)
    e_lut, e_dsp = _area(eng, "ecp5_nodsp"), _area(eng, "ecp5")
    out.update(engine_luts=e_lut["luts"], engine_ffs=e_lut["ffs"],
               engine_dsp_luts=e_dsp["luts"], engine_dsp_ffs=e_dsp["ffs"],
               engine_dsp_dsps=e_dsp["dsps"])
    if "fmax_mhz" in e_dsp:
        out["engine_fmax_mhz"] = e_dsp["fmax_mhz"]
    table.append(("bit-serial engine", "-", "-", e_lut["luts"], e_lut["ffs"], "-",
                  e_dsp["luts"], e_dsp["ffs"], e_dsp["dsps"], e_dsp.get("fmax_mhz", "-")))
    for key in INT_CASES:
        cycles = figures[f"gemv_cycles_{key}"]
        p = parallel_lanes(rows, cols, cycles)
        res = ppa.run_config(parallel_config(p, acc_width), cache, targets=TARGETS,
                             rerun=rerun)
        if progress:
            progress(res)
        p_lut, p_dsp = _area(res, "ecp5_nodsp"), _area(res, "ecp5")
        ratio = p_lut["luts"] / e_lut["luts"]
        out[f"engine_macs_per_cycle_{key}"] = rows * cols / cycles
        out[f"parallel_lanes_{key}"] = p
        out[f"parallel_luts_{key}"] = p_lut["luts"]
        out[f"parallel_ffs_{key}"] = p_lut["ffs"]
        out[f"parallel_dsp_luts_{key}"] = p_dsp["luts"]
        out[f"parallel_dsp_ffs_{key}"] = p_dsp["ffs"]
        out[f"parallel_dsp_dsps_{key}"] = p_dsp["dsps"]
        if "fmax_mhz" in p_dsp:
            out[f"parallel_fmax_mhz_{key}"] = p_dsp["fmax_mhz"]
        out[f"area_ratio_{key}"] = ratio
        table.append((f"bit-parallel, {key}", f"{rows * cols / cycles:.2f}", p,
                      p_lut["luts"], p_lut["ffs"], f"{ratio:.3f}", p_dsp["luts"],
                      p_dsp["ffs"], p_dsp["dsps"], p_dsp.get("fmax_mhz", "-")))
    versions = ppa.tool_versions()
    config = {"yosys": versions["yosys"], "nextpnr_ecp5": versions["nextpnr_ecp5"],
              "ecp5_part": ppa.ECP5_PART, "ecp5_board": "ULX3S",
              "lut_only_synth": "synth_ecp5 -nodsp", "dsp_synth": "synth_ecp5",
              "ecp5_nextpnr": " ".join(ppa.ECP5_NEXTPNR),
              "requested_mhz": ppa.REQUEST_MHZ, "ecp5_luts": "LUT4 + 2 * CCU2C",
              "engine_block": eng_cfg.name,
              "parallel_block": "ParallelMAC(lanes=P, 8 x 8 signed, acc_width)",
              "parallel_lanes_rule": "P = max(1, ceil(rows * cols / gemv_cycles_wN))",
              "area_ratio": "parallel_luts_wN / engine_luts (LUT-only mapping)",
              "harness": ppa.HARNESS_VERSION, "synth_s": round(time.monotonic() - t0, 1)}
    return out, table, config


AREA_HEADERS = ["design", "engine MAC/cyc", "multipliers", "LUT (no DSP)", "FF (no DSP)",
                "LUT ratio", "LUT (DSP)", "FF (DSP)", "DSP", "Fmax MHz (DSP)"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mxhw.bench bitserial",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", metavar="FILE", help="write the figures as JSON")
    ap.add_argument("--rows", type=int, default=16)
    ap.add_argument("--cols", type=int, default=256)
    ap.add_argument("--pes", type=int, default=16)
    ap.add_argument("--lanes", type=int, default=8)
    ap.add_argument("--group", type=int, default=128)
    ap.add_argument("--no-synth", action="store_true",
                    help="simulated cycles only (no Yosys / nextpnr runs)")
    ap.add_argument("--cache", metavar="DIR",
                    help="synthesis result cache (default: ppa's, ~/.cache/mxhw/ppa)")
    ap.add_argument("--rerun", action="store_true", help="ignore cached synthesis results")
    args = ap.parse_args(argv)
    shape = dict(pes=args.pes, lanes=args.lanes, group=args.group)
    figures, rows, config = run(rows=args.rows, cols=args.cols, **shape)
    print(f"BitSerialGEMV pes={args.pes} lanes={args.lanes} group={args.group}, GEMV "
          f"{args.rows} x {args.cols}, INT8 activations (pysim; cycles simulated)")
    print_table(["case", "weights", "max serial bits", "cycles/GEMV",
                 "x bit-parallel INT8", "sim s"], rows)
    print(f"bit-parallel INT8xINT8 reference (analytic, {args.pes * args.lanes} "
          f"MACs/cycle): {figures['parallel_int8_cycles']} cycles")
    if not args.no_synth:
        from . import ppa
        versions = ppa.tool_versions()
        print()
        print(f"Area at equal throughput: {ppa.ECP5_PART} (ULX3S), {versions['yosys']}; "
              f"{versions['nextpnr_ecp5']}")
        print("LUT-only: synth_ecp5 -nodsp (LUT = LUT4 + 2 CCU2C). DSP: synth_ecp5, then "
              f"nextpnr-ecp5 at {ppa.REQUEST_MHZ} MHz requested. Bit-parallel: ParallelMAC "
              "with P = ceil(rows*cols / cycles) INT8 x INT8 multipliers; LUT ratio = its "
              "LUTs / the engine's (LUT-only; > 1: bit-serial smaller).", flush=True)

        def progress(r):
            how = "cached" if all(r["cached"].values()) else f"{r['seconds']} s"
            print(f"  {r['name']}: {how}", flush=True)
        area, table, synth_cfg = synthesise(figures, config, cache=args.cache,
                                            rerun=args.rerun, progress=progress)
        print_table(AREA_HEADERS, table)
        figures.update(area)
        config.update(synth_cfg)
    if args.json:
        write_json(args.json, figures, config)
    return 0
