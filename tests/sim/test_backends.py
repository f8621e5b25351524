"""The simulation back ends behind mxhw.sim.run: the same testbenches give the same values,
cycle by cycle, on Amaranth's simulator and on a compiled model (expectations from the
designs' references).

Compiled models are cached on disk (``$MXHW_SIM_CACHE``, default ``~/.cache/mxhw/sim``);
tests that build or run one are marked ``compiled``.
"""

import random

import pytest
from amaranth import *
from amaranth.hdl import Assert
from amaranth.lib import enum, wiring
from amaranth.lib.wiring import In, Out
from hypothesis import given

from mxhw import sim
from mxhw.sim import compiled
from mxhw.sim.examples import MACGrid, StreamPipeline, WideAdder
from support.hyp import budget
from support.sim import (BACKENDS, VECTORS, both_backends, grid_inputs, grid_reference,
                         set_members, to_signed, with_waits, word_lists)


# --- a stream pipeline: shared vectors, valid gaps and back-pressure ------------------------

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


@pytest.mark.compiled
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_stream_pipeline_backends_agree(seed):
    results = {b: pipeline_trace(b, seed) for b in ("pysim", "compiled")}
    for backend, (got, expected) in results.items():
        assert got == expected, backend
    assert results["pysim"][0] == results["compiled"][0]


@pytest.mark.compiled
@budget(10)
@given(case=with_waits(word_lists(max_size=30)))
def test_stream_pipeline_backends_agree_property(case):
    vectors, gaps, stalls = case

    def trace(backend):
        dut = StreamPipeline(width=16, stages=3)
        log = []

        async def producer(ctx):
            await sim.stream_send(ctx, dut.i, vectors, gaps=gaps)

        async def consumer(ctx):
            for stall in stalls:
                for _ in range(stall):
                    await ctx.tick()
                log.append((await sim.stream_get(ctx, dut.o), ctx.get(dut.i.ready)))

        sim.run(dut, producer, consumer, backend=backend)
        return log

    a = both_backends(trace)
    assert [v for v, _ in a] == [StreamPipeline(width=16, stages=3).reference(v)
                                 for v in vectors]


@pytest.mark.compiled
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
            set_members(ctx, dut, a=a, b=b, x=x)
            k_now = ctx.get(dut.k)                 # combinational, visible after set
            await ctx.tick()
            y = ctx.get(dut.y)
            log.append((ctx.get(dut.s), k_now, y.lo, y.hi, y.tag, ctx.get(dut.y.tag),
                        ctx.get(dut.s[64:100]), ctx.get(dut.count)))

    sim.run(dut, tb, backend=backend)
    return log


@pytest.mark.compiled
def test_wide_ports_backends_agree():
    a, b = wide_trace("pysim"), wide_trace("compiled")
    assert a == b
    for (x, y, word), (s, k, lo, hi, tag, tag2, mid, count) in zip(WIDE, b):
        assert s == x + y
        assert k == to_signed(-x, 130)
        assert (lo, hi, tag) == (word["lo"], word["hi"], (word["tag"] + 1) % 16) == \
            (lo, hi, tag2)
        assert mid == ((x + y) >> 64) & ((1 << 36) - 1)
    assert [r[-1] for r in b] == list(range(1, len(WIDE) + 1))


# --- port arrays: the MAC grid, against a Python model ---------------------------------------

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


# --- waits, processes ------------------------------------------------------------------------

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


# --- test harness modules (no signature) ------------------------------------------------------

def harness():
    """A test harness: two components in a plain Module, the testbench driving and reading
    their ports (undriven signals become the model's inputs)."""
    m = Module()
    m.submodules.a = a = StreamPipeline(width=16, stages=2)
    m.submodules.b = b = StreamPipeline(width=16, stages=1)
    wiring.connect(m, a.o, b.i)
    return m, a, b


@pytest.mark.compiled
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


@pytest.mark.compiled
def test_harness_driven_signals_cannot_be_set():
    m, a, b = harness()

    async def tb(ctx):
        ctx.set(b.i.valid, 1)            # driven by a.o.valid

    with pytest.raises(compiled.CompiledSimError, match="can be read but not set"):
        sim.run(m, tb, backend="compiled")


# --- enums, signed ports, internal signals ----------------------------------------------------

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


@pytest.mark.compiled
def test_enum_signed_and_bool_ports_agree():
    cases = [(Op.ADD, 100, 100), (Op.SUB, -128, 127), (Op.NEG, -128, 0), (Op.ADD, -1, -1)]

    def trace(backend):
        dut = SmallALU()
        log = []

        async def tb(ctx):
            for op, a, b in cases:
                set_members(ctx, dut, op=op, a=a, b=b, flag=True)
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


@pytest.mark.compiled
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


class CombAdd(wiring.Component):
    """``y = a + b``, combinational (no clock domain); the members as given."""

    def __init__(self, a, b, y):
        super().__init__({"a": a, "b": b, "y": y})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.y.eq(self.a + self.b)
        return m


COMB_CASES = {
    # members, inputs set one pair at a time, (a, b, y) before any set, y after each
    "wide": ((In(70), In(70), Out(71)),
             [(1, 2), ((1 << 70) - 1, (1 << 70) - 1), (1 << 64, 1 << 63)],
             (0, 0, 0), [3, (1 << 71) - 2, (1 << 64) + (1 << 63)]),
    "init": ((In(8, init=5), In(signed(4), init=-3), Out(9)), [(5, 7)], (5, -3, 2), [12]),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(COMB_CASES))
def test_combinational_design_without_clock(backend, case):
    """No clock: values settle on ``ctx.set``; inputs start at their ``init``."""
    members, inputs, first, expect = COMB_CASES[case]
    dut = CombAdd(*members)
    seen = []

    async def tb(ctx):
        seen.append((ctx.get(dut.a), ctx.get(dut.b), ctx.get(dut.y)))
        for a, b in inputs:
            set_members(ctx, dut, a=a, b=b)
            seen.append(ctx.get(dut.y))

    sim.run(dut, tb, clock=None, backend=backend)
    assert seen == [first, *expect]


@pytest.mark.compiled
def test_compiled_clock_mismatch_errors():
    async def tick(ctx):
        await ctx.tick()

    with pytest.raises(compiled.CompiledSimError, match="no clock; ctx.tick"):
        sim.run(CombAdd(In(70), In(70), Out(71)), tick, clock=None, backend="compiled")
    with pytest.raises(compiled.CompiledSimError, match="clock=None, but the design has a sync"):
        sim.run(StreamPipeline(width=16, stages=1), tick, clock=None, backend="compiled")


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


