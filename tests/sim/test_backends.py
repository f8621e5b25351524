"""The simulation back ends behind mxhw.sim.run: the same testbenches agree on both.

Compiled models are cached on disk (``$MXHW_SIM_CACHE``, default ``~/.cache/mxhw/sim``), so
only the first run on a machine pays the C++ compilation; tests that compile into a fresh
cache on purpose are marked ``slow``.
"""

import random
import warnings

import pytest
from amaranth import *
from amaranth.hdl import Assert
from hypothesis import given, settings, strategies as st
from amaranth.lib import enum, wiring
from amaranth.lib.wiring import In, Out

from mxhw import sim
from mxhw.sim import compiled
from mxhw.sim.examples import MACGrid, StreamPipeline, WideAdder, WideWord

BACKENDS = ["pysim", "compiled"]

VECTORS = [0, 1, 2, 0xFFFF, 0x8000, 0x1234, 0xBEEF, 7, 0x7FFF, 42] + \
          [random.Random(1).randrange(1 << 16) for _ in range(40)]


# --- a stream pipeline: shared vectors, random valid gaps and back-pressure ------------------

def pipeline_trace(backend, seed):
    dut = StreamPipeline(width=16, stages=3)
    got = []

    async def producer(ctx):
        await sim.stream_send(ctx, dut.i, VECTORS, rng=random.Random(seed), p_idle=0.3)

    async def consumer(ctx):
        got.extend(await sim.stream_recv(ctx, dut.o, len(VECTORS), rng=random.Random(seed + 1),
                                         p_stall=0.4))

    sim.run(dut, producer, consumer, backend=backend)
    return got, [dut.reference(v) for v in VECTORS]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_stream_pipeline_backends_agree(seed):
    results = {b: pipeline_trace(b, seed) for b in BACKENDS}
    for backend, (got, expected) in results.items():
        assert got == expected, backend
    assert results["pysim"][0] == results["compiled"][0]


@settings(max_examples=10)
@given(vectors=st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=30),
       seed=st.integers(0, 2**16), p_idle=st.floats(0, 0.8), p_stall=st.floats(0, 0.8))
def test_stream_pipeline_backends_agree_property(vectors, seed, p_idle, p_stall):
    def trace(backend):
        dut = StreamPipeline(width=16, stages=3)
        log = []

        async def producer(ctx):
            await sim.stream_send(ctx, dut.i, vectors, rng=random.Random(seed), p_idle=p_idle)

        async def consumer(ctx):
            rng = random.Random(seed + 1)
            for _ in vectors:
                while rng.random() < p_stall:
                    await ctx.tick()
                log.append((await sim.stream_get(ctx, dut.o), ctx.get(dut.i.ready)))

        sim.run(dut, producer, consumer, backend=backend)
        return log

    a = trace("pysim")
    assert a == trace("compiled")
    assert [v for v, _ in a] == [StreamPipeline(width=16, stages=3).reference(v)
                                 for v in vectors]


def test_stream_pipeline_cycle_exact():
    """Not only the values: the cycle at which each word leaves agrees."""
    def trace(backend):
        dut = StreamPipeline(width=16, stages=2)
        log = []

        async def producer(ctx):
            await sim.stream_send(ctx, dut.i, VECTORS[:20], rng=random.Random(5), p_idle=0.5)

        async def monitor(ctx):
            ctx.set(dut.o.ready, 1)
            for cycle in range(80):
                _, _, valid, payload, ready = await ctx.tick().sample(
                    dut.o.valid, dut.o.payload, dut.i.ready)
                log.append((cycle, valid, payload if valid else None, ready))

        sim.run(dut, producer, monitor, backend=backend)
        return log

    a, b = trace("pysim"), trace("compiled")
    assert sum(v for _, v, _, _ in a) == 20
    assert a == b


# --- wide ports (> 64 bits), signed ports, lib.data views -----------------------------------

WIDE = [
    (0, 0, {"lo": 0, "hi": 0, "tag": 0}),
    ((1 << 130) - 1, 1, {"lo": (1 << 64) - 1, "hi": (1 << 32) - 1, "tag": 15}),
    ((1 << 129) + 5, (1 << 129) + 7, {"lo": 0x0123456789ABCDEF, "hi": 0xCAFEF00D, "tag": 3}),
    (0xDEADBEEF << 64, 0xFFFFFFFF_FFFFFFFF, {"lo": 1 << 63, "hi": 1, "tag": 8}),
    (12345678901234567890123456789, 98765432109876543210987654321,
     {"lo": 42, "hi": 1 << 31, "tag": 14}),
]


def wide_trace(backend):
    dut = WideAdder(width=130)
    log = []

    async def tb(ctx):
        for a, b, x in WIDE:
            ctx.set(dut.a, a)
            ctx.set(dut.b, b)
            ctx.set(dut.x, x)
            k_now = ctx.get(dut.k)                 # combinational, visible after set
            await ctx.tick()
            y = ctx.get(dut.y)
            log.append((ctx.get(dut.s), k_now, y.lo, y.hi, y.tag, ctx.get(dut.y.tag),
                        ctx.get(dut.s[64:100]), ctx.get(dut.count)))

    sim.run(dut, tb, backend=backend)
    return log


def test_wide_ports_backends_agree():
    a, b = wide_trace("pysim"), wide_trace("compiled")
    assert a == b
    for (x, y, word), (s, k, lo, hi, tag, tag2, mid, count) in zip(WIDE, b):
        assert s == x + y
        assert k == _signed(-x, 130)
        assert (lo, hi, tag) == (word["lo"], word["hi"], (word["tag"] + 1) % 16) == \
            (lo, hi, tag2)
        assert mid == ((x + y) >> 64) & ((1 << 36) - 1)
    assert [r[-1] for r in b] == list(range(1, len(WIDE) + 1))


def _signed(v, width):
    v &= (1 << width) - 1
    return v - (1 << width) if v >> (width - 1) else v


def test_model_api_wide_and_views():
    dut = WideAdder(width=130)
    with compiled.build(dut) as m:
        m.set(dut.a, (1 << 129) | 3)
        m.set("b", 1 << 100)
        assert m.get(dut.k) == _signed(-((1 << 129) | 3), 130)
        m.set(dut.x, {"lo": 5, "hi": 6, "tag": 7})
        m.set(dut.x.tag, 2)                        # a view field is a slice of the port
        m.step()
        assert m.get("s") == (1 << 129) + (1 << 100) + 3
        y = m.get(dut.y)
        assert (y.lo, y.hi, y.tag) == (5, 6, 3)
        assert m.get(dut.count) == 1
        m.set(dut.a[128:130], 0)                   # part of a wide input
        assert m.get(dut.a) == 3
        m.set(dut.x, {"hi": 9, "tag": True})       # missing fields are zero, as Layout.const
        assert m.get(dut.x.as_value()) == (9 << 64) | (1 << 96)
        m.set(dut.x, WideWord.const({"lo": 1, "hi": 2, "tag": 3}))   # a data.Const
        assert m.get(dut.x.as_value()) == 1 | (2 << 64) | (3 << 96)
        with pytest.raises((TypeError, ValueError)):
            m.set(dut.x, {"nope": 1})
    with pytest.raises(compiled.CompiledSimError, match="has been closed"):
        m.get(dut.a)
    with pytest.raises(compiled.CompiledSimError, match="has been closed"):
        m.step()


# --- port arrays: the MAC grid, against a Python model ---------------------------------------

def grid_reference(n, width, acc_width, inputs):
    ra = [[0] * n for _ in range(n)]
    rb = [[0] * n for _ in range(n)]
    acc = [[0] * n for _ in range(n)]
    for a, b, en in inputs:
        if en:
            acc = [[(acc[r][c] + ra[r][c] * rb[r][c]) % (1 << acc_width) for c in range(n)]
                   for r in range(n)]
        ra = [[a[r] if c == 0 else ra[r][c - 1] for c in range(n)] for r in range(n)]
        rb = [[b[c] if r == 0 else rb[r - 1][c] for c in range(n)] for r in range(n)]
    return acc


def grid_inputs(n, width, cycles, seed):
    rng = random.Random(seed)
    return [([rng.randrange(1 << width) for _ in range(n)],
             [rng.randrange(1 << width) for _ in range(n)], rng.random() < 0.8)
            for _ in range(cycles)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_mac_grid_port_arrays(backend):
    n, width, cycles = 4, 8, 30
    dut = MACGrid(n=n, width=width)
    inputs = grid_inputs(n, width, cycles, seed=3)
    result = []

    async def tb(ctx):
        for a, b, en in inputs:
            for r in range(n):
                ctx.set(dut.a[r], a[r])
                ctx.set(dut.b[r], b[r])
            ctx.set(dut.en, en)
            await ctx.tick()
        result.extend([[ctx.get(dut.acc[r][c]) for c in range(n)] for r in range(n)])

    sim.run(dut, tb, backend=backend)
    assert result == grid_reference(n, width, dut.acc_width, inputs)


def test_model_api_port_arrays_and_interfaces():
    n = 4
    dut = MACGrid(n=n)
    inputs = grid_inputs(n, 8, 25, seed=4)
    with compiled.build(dut) as m:
        for a, b, en in inputs:
            m.set(dut.a, a)                        # a whole port array at once
            m.set(dut.b, b)
            m.set(dut.en, en)
            m.step()
        assert m.get(dut.acc) == grid_reference(n, 8, dut.acc_width, inputs)
        with pytest.raises(ValueError, match="Port array has 4 elements, value has 3"):
            m.set(dut.a, [1, 2, 3])
    pipe = StreamPipeline(width=16, stages=1)
    with compiled.build(pipe) as m:
        m.set(pipe.i, {"payload": 10, "valid": 1})   # an interface, as a dict of members
        m.set(pipe.o.ready, 1)
        assert m.get(pipe.i)["ready"] == 1
        m.step()
        assert m.get(pipe.o) == {"payload": 31, "valid": 1, "ready": 1}


# --- batch runs, reset, waits, processes ----------------------------------------------------

def test_model_batch_run_matches_stepping():
    dut = StreamPipeline(width=16, stages=3)
    with compiled.build(dut) as m:
        n = len(VECTORS) + 3
        valid, payload, ready = m.run(
            [(dut.i.payload, VECTORS + [0] * 3), (dut.i.valid, [1] * len(VECTORS) + [0] * 3),
             ("o__ready", [1] * n)],
            [dut.o.valid, dut.o.payload, dut.i.ready])
        assert ready == [1] * n
        assert valid == [0] * 3 + [1] * len(VECTORS)
        assert payload[3:] == [dut.reference(v) for v in VECTORS]
        with pytest.raises(ValueError, match="has 2 values for 3 cycles"):
            m.run({"i__valid": [1, 1, 1], "i__payload": [1, 2]})


def test_model_reset():
    dut = WideAdder(width=70)
    with compiled.build(dut) as m:
        m.set(dut.a, 1 << 69)
        m.step(5)
        assert m.get(dut.count) == 5
        assert m.get(dut.s) == 1 << 69
        m.reset()
        assert m.get(dut.count) == 0
        assert m.get(dut.s) == 0
        m.step(3)
        assert m.get(dut.count) == 3
        assert m.cycle == 9


@pytest.mark.parametrize("backend", BACKENDS)
def test_until_repeat_and_processes(backend):
    dut = WideAdder(width=70)
    seen = []

    async def watcher(ctx):                        # a background process: runs forever
        while True:
            _, rst, count = await ctx.tick().sample(dut.count)
            seen.append(count)

    async def tb(ctx):
        await ctx.tick().repeat(3)
        (s,) = await ctx.tick().sample(dut.s).until(dut.count == 6)
        assert ctx.get(dut.count) == 7
        clk, rst, *rest = await ctx.tick()
        assert (clk, rst, rest) == (True, False, [])
        async for _, _, count in ctx.tick().sample(dut.count):
            if count == 10:
                break
        assert ctx.get(dut.count) == 11
        seen.append(("s", s))

    sim.run(dut, tb, processes=[watcher], backend=backend)
    assert seen[:11] == list(range(11))
    assert seen[-1] == ("s", 0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_timeout_on_hang(backend):
    dut = StreamPipeline(width=16, stages=2)

    async def tb(ctx):                             # nothing is ever sent: o.valid stays low
        await sim.stream_get(ctx, dut.o, timeout=50)

    with pytest.raises(sim.SimTimeout, match="valid never rose within 50 cycles"):
        sim.run(dut, tb, backend=backend)


# --- the cache --------------------------------------------------------------------------------

@pytest.mark.slow
def test_cache_builds_once(tmp_path, monkeypatch):
    monkeypatch.setenv("MXHW_SIM_CACHE", str(tmp_path))
    before = compiled.build_count()
    m1 = compiled.build(StreamPipeline(width=12, stages=2))
    assert (m1.compiled, compiled.build_count()) == (True, before + 1)
    m2 = compiled.build(StreamPipeline(width=12, stages=2))    # a new, identical instance
    assert (m2.compiled, compiled.build_count()) == (False, before + 1)
    assert m2.key == m1.key and m2.path == m1.path
    assert m1.path.parent == tmp_path
    m3 = compiled.build(StreamPipeline(width=12, stages=3))    # a different design
    assert (m3.compiled, compiled.build_count()) == (True, before + 2)
    assert m3.key != m1.key
    # both models live side by side, each with its own state
    for m in (m1, m2):
        m.set("o__ready", 1)
        m.set("i__valid", 1)
    m1.set("i__payload", 1)
    m2.set("i__payload", 2)
    m1.step(2)
    m2.step(2)
    assert (m1.get("o__payload"), m2.get("o__payload")) == (13, 22)


# --- waveforms --------------------------------------------------------------------------------

def test_vcd_on_request(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MXHW_VCD", "1")
    dut = StreamPipeline(width=16, stages=3)

    async def producer(ctx):
        await sim.stream_send(ctx, dut.i, VECTORS[:5])

    async def consumer(ctx):
        await sim.stream_recv(ctx, dut.o, 5)

    sim.run(dut, producer, consumer, vcd="pipe compiled", backend="compiled")
    text = (tmp_path / "out" / "vcd" / "pipe_compiled.vcd").read_text()
    assert "$timescale" in text and "$enddefinitions" in text
    for name in ("i__payload", "o__valid", "clk"):
        assert f" {name} $end" in text
    assert "#5000\n" in text and "#15000\n" in text     # 10 ns clock, sampled at both edges


# --- errors -----------------------------------------------------------------------------------

class TwoDomains(wiring.Component):
    o: Out(1)

    def elaborate(self, platform):
        m = Module()
        m.domains.fast = ClockDomain()
        r = Signal()
        m.d.fast += r.eq(~r)
        m.d.sync += self.o.eq(r)
        return m


class LocalSync(wiring.Component):
    o: Out(1)

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = ClockDomain()
        m.d.sync += self.o.eq(~self.o)
        return m


def test_reject_two_clock_domains():
    with pytest.raises(compiled.CompiledSimError,
                       match=r"one clock domain, 'sync', driven from outside the design; this "
                             r"design has clock domains \['fast', 'sync'\]"):
        compiled.build(TwoDomains())
    with pytest.raises(compiled.CompiledSimError, match=r"\['sync'\] \(sync defined inside"):
        compiled.build(LocalSync())


def harness():
    """A test harness: two components in a plain Module, the testbench driving and reading
    their ports (undriven signals become the model's inputs)."""
    m = Module()
    m.submodules.a = a = StreamPipeline(width=16, stages=2)
    m.submodules.b = b = StreamPipeline(width=16, stages=1)
    wiring.connect(m, a.o, b.i)
    return m, a, b


@pytest.mark.parametrize("seed", [0, 1])
def test_harness_module_backends_agree(seed):
    def trace(backend):
        m, a, b = harness()
        got = []

        async def producer(ctx):
            await sim.stream_send(ctx, a.i, VECTORS, rng=random.Random(seed), p_idle=0.3)

        async def consumer(ctx):
            got.extend(await sim.stream_recv(ctx, b.o, len(VECTORS),
                                             rng=random.Random(seed + 7), p_stall=0.3))

        sim.run(m, producer, consumer, backend=backend)
        return got

    ref = StreamPipeline(width=16, stages=3)
    assert trace("pysim") == trace("compiled") == [ref.reference(v) for v in VECTORS]


def test_harness_driven_signals_cannot_be_set():
    m, a, b = harness()

    async def tb(ctx):
        ctx.set(b.i.valid, 1)            # driven by a.o.valid

    with pytest.raises(compiled.CompiledSimError, match="can be read but not set"):
        sim.run(m, tb, backend="compiled")


def test_env_default_falls_back_to_pysim(monkeypatch):
    monkeypatch.setenv("MXHW_SIM_BACKEND", "compiled")
    dut = TwoDomains()

    async def tb(ctx):
        await ctx.tick().repeat(2)

    with pytest.warns(sim.SimBackendFallback, match="falling back to pysim"):
        sim.run(dut, tb)
    with pytest.raises(compiled.CompiledSimError):
        sim.run(TwoDomains(), tb, backend="compiled")


def test_bad_backend_names(monkeypatch):
    with pytest.raises(ValueError, match="backend must be one of pysim, compiled, not 'verilog'"):
        sim.run(StreamPipeline(), backend="verilog")
    monkeypatch.setenv("MXHW_SIM_BACKEND", "fast")
    with pytest.raises(ValueError, match="MXHW_SIM_BACKEND must be one of pysim, compiled"):
        sim.default_backend()


def test_internal_signals_and_outputs_rejected():
    dut = StreamPipeline(width=16, stages=1)
    stray = Signal(4)

    async def read_stray(ctx):
        ctx.get(stray)

    with pytest.raises(compiled.CompiledSimError, match="is not a signal of this design"):
        sim.run(dut, read_stray, backend="compiled")

    dut = StreamPipeline(width=16, stages=1)

    async def set_output(ctx):
        ctx.set(dut.o.valid, 1)

    with pytest.raises(compiled.CompiledSimError, match="'o__valid' is an output"):
        sim.run(dut, set_output, backend="compiled")

    async def delay(ctx):
        await ctx.delay(1e-9)

    with pytest.raises(compiled.CompiledSimError, match=r"ctx.delay\(\) is not supported"):
        sim.run(StreamPipeline(width=16, stages=1), delay, backend="compiled")


def test_bad_optimisation_flag(monkeypatch):
    monkeypatch.setenv("MXHW_SIM_OPT", "-O9")
    with pytest.raises(compiled.CompiledSimError, match="MXHW_SIM_OPT must be one of"):
        compiled.build(StreamPipeline(width=16, stages=1))


class Op(enum.Enum, shape=2):
    ADD = 0
    SUB = 1
    NEG = 2


class SmallALU(wiring.Component):
    """Enum-shaped, signed and 1-bit ports (combinational result, registered copy)."""
    op: In(Op)
    a: In(signed(8))
    b: In(signed(8))
    y: Out(signed(9))
    q: Out(signed(9))
    last: Out(Op)
    flag: In(1)

    def elaborate(self, platform):
        m = Module()
        with m.Switch(self.op):
            with m.Case(Op.ADD):
                m.d.comb += self.y.eq(self.a + self.b)
            with m.Case(Op.SUB):
                m.d.comb += self.y.eq(self.a - self.b)
            with m.Default():
                m.d.comb += self.y.eq(-self.a)
        with m.If(self.flag):
            m.d.sync += [self.q.eq(self.y), self.last.eq(self.op)]
        return m


def test_enum_signed_and_bool_ports_agree():
    cases = [(Op.ADD, 100, 100), (Op.SUB, -128, 127), (Op.NEG, -128, 0), (Op.ADD, -1, -1)]

    def trace(backend):
        dut = SmallALU()
        log = []

        async def tb(ctx):
            for op, a, b in cases:
                ctx.set(dut.op, op)
                ctx.set(dut.a, a)
                ctx.set(dut.b, b)
                ctx.set(dut.flag, True)
                y = ctx.get(dut.y)
                await ctx.tick()
                log.append((y, ctx.get(dut.q), ctx.get(dut.last), ctx.get(dut.y[8])))

        sim.run(dut, tb, backend=backend)
        return log

    a, b = trace("pysim"), trace("compiled")
    assert a == b
    assert [r[0] for r in b] == [200, -255, 128, -2]
    assert [r[2] for r in b] == [op for op, _, _ in cases]


class Peek(wiring.Component):
    """Internal state kept as attributes, for reading from testbenches."""
    go: In(1)
    out: Out(8)

    def __init__(self):
        super().__init__()
        self.state = Signal(8)          # register
        self.twice = Signal(9)          # combinational (may be inlined by CXXRTL)

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = _Inner()
        m.d.comb += inner.x.eq(self.state)
        with m.If(self.go):
            m.d.sync += self.state.eq(self.state + 3)
        m.d.comb += [self.twice.eq(self.state * 2), self.out.eq(inner.y)]
        return m


class _Inner(wiring.Component):
    x: In(8)
    y: Out(8)

    def __init__(self):
        super().__init__()
        self.acc = Signal(8)

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.acc.eq(self.acc ^ self.x)
        m.d.comb += self.y.eq(self.acc)
        return m


def test_internal_signals_readable():
    def trace(backend):
        dut = Peek()
        log = []

        async def tb(ctx):
            ctx.set(dut.go, 1)
            for _ in range(6):
                await ctx.tick()
                log.append((ctx.get(dut.state), ctx.get(dut.twice), ctx.get(dut.out),
                            ctx.get(dut.state[1:4])))
            _, _, s, t = await ctx.tick().sample(dut.state, dut.twice)
            log.append((s, t))

        sim.run(dut, tb, backend=backend)
        return log

    a, b = trace("pysim"), trace("compiled")
    assert a == b
    assert [r[0] for r in b[:6]] == [3, 6, 9, 12, 15, 18]
    assert [r[1] for r in b[:6]] == [6, 12, 18, 24, 30, 36]

    dut = Peek()

    async def poke(ctx):
        ctx.set(dut.state, 5)

    with pytest.raises(compiled.CompiledSimError,
                       match="Internal signal 'state' can be read but not set"):
        sim.run(dut, poke, backend="compiled")


class CombOnly(wiring.Component):
    a: In(70)
    b: In(70)
    y: Out(71)

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.y.eq(self.a + self.b)
        return m


@pytest.mark.parametrize("backend", BACKENDS)
def test_combinational_design_without_clock(backend):
    dut = CombOnly()
    seen = []

    async def tb(ctx):
        for a, b in [(1, 2), ((1 << 70) - 1, (1 << 70) - 1), (1 << 64, 1 << 63)]:
            ctx.set(dut.a, a)
            ctx.set(dut.b, b)
            seen.append(ctx.get(dut.y))

    sim.run(dut, tb, clock=None, backend=backend)
    assert seen == [3, (1 << 71) - 2, (1 << 64) + (1 << 63)]


def test_compiled_clock_mismatch_errors():
    async def tick(ctx):
        await ctx.tick()

    with pytest.raises(compiled.CompiledSimError, match="no clock; ctx.tick"):
        sim.run(CombOnly(), tick, clock=None, backend="compiled")
    with pytest.raises(compiled.CompiledSimError, match="clock=None, but the design has a sync"):
        sim.run(StreamPipeline(width=16, stages=1), tick, clock=None, backend="compiled")


class InitPorts(wiring.Component):
    a: In(8, init=5)
    b: In(signed(4), init=-3)
    y: Out(9)

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.y.eq(self.a + self.b)
        return m


@pytest.mark.parametrize("backend", BACKENDS)
def test_inputs_start_at_init(backend):
    dut = InitPorts()
    seen = []

    async def tb(ctx):
        seen.append((ctx.get(dut.a), ctx.get(dut.b), ctx.get(dut.y)))
        ctx.set(dut.b, 7)
        seen.append(ctx.get(dut.y))

    sim.run(dut, tb, clock=None, backend=backend)
    assert seen == [(5, -3, 2), 12]


class Checked(wiring.Component):
    a: In(8)
    y: Out(8)

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.y.eq(self.a)
        m.d.sync += Assert(self.a != 3, "a must not be 3")
        return m


@pytest.mark.parametrize("backend", BACKENDS)
def test_failed_assertion_raises(backend):
    dut = Checked()
    seen = []

    async def tb(ctx):
        for v in [1, 2, 3, 4, 5]:
            ctx.set(dut.a, v)
            await ctx.tick()
            seen.append(ctx.get(dut.y))

    with pytest.raises(AssertionError, match="^Assertion violated: a must not be 3$"):
        sim.run(dut, tb, backend=backend)
    assert seen == [1, 2]


# --- large designs: hierarchical models with identical modules merged ------------------------

class _Lane(wiring.Component):
    x: In(8)
    y: Out(8)

    def __init__(self, op):
        super().__init__()
        self.op = op
        self.acc = Signal(8)

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.acc.eq(self.acc ^ self.x if self.op == "xor" else self.acc + self.x)
        m.d.comb += self.y.eq(self.acc)
        return m


class Lanes(wiring.Component):
    """Four identical xor lanes and one add lane, each fed its own input."""
    x: In(8).array(5)
    y: Out(8).array(5)

    def __init__(self):
        super().__init__()
        self.lanes = [_Lane("xor") for _ in range(4)] + [_Lane("add")]

    def elaborate(self, platform):
        m = Module()
        for n, lane in enumerate(self.lanes):
            m.submodules[f"lane{n}"] = lane
            # connect in a different order per lane: the merge must not depend on it
            conns = [lane.x.eq(self.x[n]), self.y[n].eq(lane.y)]
            m.d.comb += conns[::-1] if n % 2 else conns
        return m


def test_dedup_merges_identical_modules_only():
    text = compiled._rtlil(Lanes())[0]
    merged, before, after = compiled._dedup_modules(text)
    assert (before, after) == (6, 3)    # top + one xor lane + the add lane
    assert merged.count("\nmodule ") + merged.startswith("module ") == 3
    assert merged.count("  cell \\top.lane0 ") == 4


def test_hierarchical_model_agrees(tmp_path, monkeypatch):
    """A design built the large-design way (merged modules, -noflatten) matches pysim,
    internal signals of merged instances included."""
    monkeypatch.setenv("MXHW_SIM_CACHE", str(tmp_path))
    monkeypatch.setattr(compiled, "LARGE_RTLIL_LINES", 0)
    rng = random.Random(5)
    vectors = [[rng.randrange(256) for _ in range(5)] for _ in range(20)]

    def trace(backend):
        dut = Lanes()
        log = []

        async def tb(ctx):
            for v in vectors:
                for n in range(5):
                    ctx.set(dut.x[n], v[n])
                await ctx.tick()
                log.append([ctx.get(dut.y[n]) for n in range(5)] + [ctx.get(dut.lanes[2].acc)])

        sim.run(dut, tb, backend=backend)
        return log

    a, b = trace("pysim"), trace("compiled")
    assert a == b
    xor3, add4 = 0, 0
    for v in vectors:
        xor3, add4 = xor3 ^ v[3], (add4 + v[4]) % 256
    assert b[-1][3:5] == [xor3, add4]


# --- fast clocking: one evaluation per cycle, the same values as two ---------------------------

def _stream_and_steps(dut, monkeypatch, fast):
    """(model's fast flag, stream results, per-cycle stepping trace, deltas per cycle) with
    fast clocking on or off (``MXHW_SIM_FAST``)."""
    monkeypatch.setenv("MXHW_SIM_FAST", "1" if fast else "0")
    rng = random.Random(11)
    gaps = [rng.choice([0, 0, 1, 3]) for _ in VECTORS]
    stalls = [rng.choice([0, 0, 2, 5]) for _ in VECTORS]
    with compiled.build(dut) as m:
        d0, c0 = m.deltas, m.cycle
        got, cycles = m.stream(dut.i, VECTORS, dut.o, len(VECTORS), gaps=gaps, stalls=stalls)
        per_cycle = (m.deltas - d0) / (m.cycle - c0)
        trace = []
        for n, v in enumerate(VECTORS[:20]):
            m.set(dut.i.payload, v)
            m.set(dut.i.valid, n % 3 != 1)
            m.set(dut.o.ready, n % 4 != 2)
            m.step()
            trace.append((m.get(dut.i.ready), m.get(dut.o.valid), m.get(dut.o.payload)))
        return m.fast, (got, cycles), trace, per_cycle


def test_fast_clocking_agrees(monkeypatch):
    """Fast clocking (outputs sampled between the edge's evaluation and its commit) gives
    the same cycle-exact values as settle-then-edge, in one delta per cycle."""
    dut = StreamPipeline(width=16, stages=3)
    fast, a, ta, d_fast = _stream_and_steps(dut, monkeypatch, True)
    slow, b, tb, d_slow = _stream_and_steps(dut, monkeypatch, False)
    assert (fast, slow) == (True, False)
    assert a == b and ta == tb
    assert a[0] == [dut.reference(v) for v in VECTORS]
    assert (d_fast, d_slow) == (1, 2)


def test_fast_clocking_hierarchical_agrees(tmp_path, monkeypatch):
    """The same on a hierarchical (merged-module) model: child modules see the edge too."""
    monkeypatch.setenv("MXHW_SIM_CACHE", str(tmp_path))
    monkeypatch.setattr(compiled, "LARGE_RTLIL_LINES", 0)
    rng = random.Random(3)
    vectors = [[rng.randrange(256) for _ in range(5)] for _ in range(30)]
    traces = {}
    for fast in (True, False):
        monkeypatch.setenv("MXHW_SIM_FAST", "1" if fast else "0")
        dut = Lanes()
        with compiled.build(dut) as m:
            assert m.fast == fast
            log = []
            for v in vectors:
                for n in range(5):
                    m.set(dut.x[n], v[n])
                m.step()
                log.append([m.get(dut.y[n]) for n in range(5)])
            traces[fast] = log
    assert traces[True] == traces[False]
    xor0, add4 = 0, 0
    for v in vectors:
        xor0, add4 = xor0 ^ v[0], (add4 + v[4]) % 256
    assert traces[True][-1][0] == xor0 and traces[True][-1][4] == add4


@pytest.mark.parametrize("shared", [True, False])
def test_systolic_array_hierarchical_model_is_fast(tmp_path, monkeypatch, shared):
    """The output-stationary SystolicArray (row units or per-PE accumulators, saturating)
    as a hierarchical compiled model settles in one delta per cycle: no combinational
    path leaves a shared module into its parent's logic (one did once, a clamp behind the
    row unit's port, and halved the 8x8 array's simulated cycles/s)."""
    import numpy as np
    from mxhw.golden.arith import fixed, gemm
    from mxhw.golden.quantize import quantize
    from mxhw.systolic import SystolicArray
    from mxhw.systolic.driver import array_beats
    monkeypatch.setenv("MXHW_SIM_CACHE", str(tmp_path))
    monkeypatch.setattr(compiled, "LARGE_RTLIL_LINES", 0)
    acc = fixed(16, 4, "saturate", "floor")
    dut = SystolicArray(3, 3, "mxfp4", "mxint8", acc=acc, shared_acc=shared)
    rng = np.random.default_rng(4)
    qa = quantize(rng.standard_normal((3, 64)) * 8, "mxfp4", axis=1)
    qb = quantize(rng.standard_normal((64, 3)), "mxint8", axis=0)
    beats = [Const.cast(dut.in_layout.const(d)).value for d in array_beats(qa, qb, 3, 3, 0, 0)]
    with compiled.build(dut) as m:
        d0, c0 = m.deltas, m.cycle
        rows, _ = m.stream(dut.i, beats * 2, dut.o, 6)
        assert m.fast and (m.deltas - d0) == (m.cycle - c0)
    _, raw = gemm(qa, qb, acc, return_raw=True)
    got = [[int(r.data[c]) for c in range(3)] for r in rows]
    assert got == [[int(x) for x in raw[k % 3]] for k in range(6)]


class _Inc(wiring.Component):
    x: In(8)
    y: Out(8)

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.y.eq(self.x + 1)
        return m


class _IncChain(wiring.Component):
    """Three identical combinational modules chained against their instance order, then a
    register: kept as hierarchy, their outputs are buffered wires (several delta cycles)."""
    x: In(8)
    y: Out(8)

    def elaborate(self, platform):
        m = Module()
        c = [_Inc() for _ in range(3)]
        for n, cn in enumerate(c):
            m.submodules[f"c{n}"] = cn
        r = Signal(8)
        m.d.comb += [c[2].x.eq(self.x), c[1].x.eq(c[2].y), c[0].x.eq(c[1].y), self.y.eq(r)]
        m.d.sync += r.eq(c[0].y)
        return m


def test_fast_clocking_off_when_settling_takes_deltas(tmp_path, monkeypatch):
    monkeypatch.setenv("MXHW_SIM_CACHE", str(tmp_path))
    monkeypatch.setattr(compiled, "LARGE_RTLIL_LINES", 0)
    dut = _IncChain()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")         # Yosys: buffered combinatorial wires
        m = compiled.build(dut)
    with m:
        assert not m.fast
        for v in (5, 9, 255):
            m.set(dut.x, v)
            m.step()
            assert m.get(dut.y) == (v + 3) % 256


def test_patch_edges_only_single_rising_clock():
    one = ("struct p_top : public module {\n\tbool posedge_p_clk() const {\n"
           "\t\treturn !prev_p_clk.slice<0>().val() && p_clk.slice<0>().val();\n\t}\n};\n"
           "bool p_top::eval(performer *performer) {\n\tbool converged = true;\n")
    cc, fast = compiled._patch_edges(one)
    assert fast and cc.startswith("#define MX_FAST_EDGE 1\n")
    assert "return mx_edge >= 0 ? mx_edge != 0 : (!prev_p_clk" in cc
    for other in (one.replace("posedge_p_clk", "negedge_p_clk"),
                  one + one.replace("p_clk", "p_rst"),
                  one.replace("converged = true", "converged = false"),
                  "struct p_top : public module {};\n"):
        assert compiled._patch_edges(other) == (other, False)


def test_flatten_eval_marks_every_module_eval():
    cc = ("bool p_top::eval(performer *performer) {\n\tbool converged = true;\n}\n"
          "bool p_top_2e_cell::eval(performer *performer) {\n}\n"
          "\tbool eval(performer *performer = nullptr) override;\n"
          "bool p_top::commit() {\n}\n")
    out = compiled._flatten_eval(cc)
    assert out.count("__attribute__((flatten)) bool p_top::eval(performer *performer) {") == 1
    assert "__attribute__((flatten)) bool p_top_2e_cell::eval(" in out
    assert out.count("__attribute__((flatten))") == 2     # not the declaration, not commit
    assert out.replace("__attribute__((flatten)) ", "") == cc
