"""FP32 accumulation in hardware (MXMacPE / output-stationary SystolicArray) against
golden.arith.gemm with FP32, bit for bit; the float32 converter and adder against NumPy."""

import numpy as np
from amaranth.hdl import Module, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator
from hypothesis import HealthCheck, given, settings, strategies as st

from mxhw import golden
from mxhw.golden.arith import FP32, exact_to_float32, gemm
from mxhw.golden.quantize import MXArray, quantize
from mxhw.sim import run, seeded_rng, stream_recv, stream_send
from mxhw.systolic import SystolicArray
from mxhw.systolic.driver import array_beats, tile_order
from mxhw.systolic.fp32acc import f32_add, int_to_f32
from mxhw.systolic.pe import PE_PIPELINE_MAX

from test_systolic import FORMATS, random_operand


def f32_bits(x):
    return int(np.float32(x).view(np.uint32))


def check_fp32(a, b, rows, cols, pipeline, seed=0, p_stall=0.0, p_idle=0.0):
    M, N = a.shape[0], b.shape[1]
    dut = SystolicArray(rows, cols, a.fmt, b.fmt, acc=FP32, pipeline=pipeline)
    tiles = tile_order(M, N, rows, cols)
    got = {}

    async def producer(ctx):
        rng = seeded_rng(seed)
        for m0, n0 in tiles:
            await stream_send(ctx, dut.i, array_beats(a, b, rows, cols, m0, n0), rng, p_idle)

    async def consumer(ctx):
        rng = seeded_rng(seed + 1)
        for m0, n0 in tiles:
            for i, r in enumerate(await stream_recv(ctx, dut.o, rows, rng, p_stall)):
                for j in range(cols):
                    got[m0 + i, n0 + j] = (r.data[j] & 0xFFFF_FFFF, r.special[j])

    run(dut, producer, consumer)
    val = gemm(a, b, FP32)
    for (mm, nn), v in np.ndenumerate(val):
        g, s = got[mm, nn]
        if np.isnan(v):
            assert s and np.isnan(np.uint32(g).view(np.float32)), (mm, nn, hex(g))
        else:
            assert not s and g == f32_bits(v), (mm, nn, hex(g), v)


def with_inf(rng, x, p):
    """Put Inf codes (of formats that have them) into random elements of ``x``."""
    t = x.fmt.element.table
    infs = np.flatnonzero(np.isinf(t))
    if not len(infs) or not p:
        return x
    el = x.elements.copy()
    hit = rng.random(el.shape) < p
    el[hit] = rng.choice(infs, hit.sum())
    return MXArray(x.fmt, x.shape, x.axis, el, x.scales, x.modes)


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(fa=st.sampled_from(FORMATS), fb=st.sampled_from(FORMATS),
       rows=st.integers(1, 2), cols=st.integers(1, 2),
       M=st.integers(1, 3), N=st.integers(1, 3), nblk=st.integers(1, 3),
       spread=st.sampled_from([4, 40, 130]), pipeline=st.integers(0, PE_PIPELINE_MAX),
       seed=st.integers(0, 2**16), nan_p=st.sampled_from([0.0, 0.0, 0.2]),
       inf_p=st.sampled_from([0.0, 0.0, 0.02]), zero_p=st.sampled_from([0.0, 0.3]),
       p_stall=st.sampled_from([0.0, 0.5]))
def test_fp32_array_matches_golden(fa, fb, rows, cols, M, N, nblk, spread, pipeline, seed,
                                   nan_p, inf_p, zero_p, p_stall):
    """Random formats, magnitudes from ordinary to far beyond float32's range (subnormal
    and overflowing blocks), NaN scales, Inf elements, zero blocks, back-pressure."""
    rng = np.random.default_rng(seed)
    K = 32 * nblk
    a = random_operand(rng, fa, (M, K), 1, spread, nan_p=nan_p, zero_block_p=zero_p)
    b = random_operand(rng, fb, (K, N), 0, spread, zero_block_p=zero_p)
    a, b = with_inf(rng, a, inf_p), with_inf(rng, b, inf_p)
    check_fp32(a, b, rows, cols, pipeline, seed, p_stall)


def test_fp32_order_and_ties():
    """Blocks 1, 2**-24, 2**-24, 3 * 2**-24 ...: each addition rounds (ties to even), in K
    order, as golden; the same blocks reversed give a different float32."""
    vals = [1.0, 2.0**-24, 2.0**-24, 3 * 2.0**-24, -1.0, 2.0**-30, 2.0**100, -2.0**100]
    x = np.zeros((1, 32 * len(vals)))
    x[0, ::32] = vals
    for order in (1, -1):
        xs = x[:, ::-1] if order < 0 else x
        a = quantize(xs, "mxfp4", axis=1)
        b = quantize(np.ones((xs.shape[1], 1)), "mxfp4", axis=0)
        for pipeline in (0, PE_PIPELINE_MAX):
            check_fp32(a, b, 1, 1, pipeline)


def test_fp32_overflow_inf_minus_inf():
    """A block overflowing to +Inf, then one to -Inf: NaN, as golden."""
    x = np.zeros((2, 64))
    x[0, 0], x[0, 32] = 2.0**120, -2.0**120
    x[1, 0] = 2.0**120
    a = quantize(x, "mxint8", axis=1)
    b = quantize(np.full((64, 1), 2.0**20), "mxint8", axis=0)
    v = gemm(a, b, FP32)
    assert np.isnan(v[0, 0]) and np.isposinf(v[1, 0])
    check_fp32(a, b, 2, 1, 2)


class _F32Unit(wiring.Component):
    """int_to_f32 and f32_add on ports (for the tests)."""
    s: In(signed(40))
    e: In(signed(12))
    x: In(32)
    y: In(32)
    f: Out(32)
    z: Out(32)

    def elaborate(self, platform):
        m = Module()
        m.d.comb += [self.f.eq(int_to_f32(m, self.s, self.e)),
                     self.z.eq(f32_add(m, self.x, self.y))]
        return m


def _f32_special_bits():
    return st.sampled_from([0, 0x8000_0000, 1, 0x807F_FFFF, 0x0080_0000, 0x7F7F_FFFF,
                            0xFF7F_FFFF, 0x7F80_0000, 0xFF80_0000, 0x7FC0_0000, 0x3F80_0000,
                            0x3380_0000, 0x3400_0000])


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(ints=st.lists(st.tuples(st.integers(-(1 << 39), (1 << 39) - 1), st.integers(-300, 300)),
                     min_size=20, max_size=20),
       pairs=st.lists(st.tuples(st.one_of(st.integers(0, 2**32 - 1), _f32_special_bits()),
                                st.one_of(st.integers(0, 2**32 - 1), _f32_special_bits())),
                      min_size=20, max_size=20))
def test_float_units(ints, pairs):
    """int_to_f32 equals golden's exact_to_float32; f32_add equals NumPy float32 addition
    bit for bit (any NaN for NaN)."""
    dut = _F32Unit()
    res = []

    async def tb(ctx):
        for (s, e), (x, y) in zip(ints, pairs):
            ctx.set(dut.s, s)
            ctx.set(dut.e, e)
            ctx.set(dut.x, x)
            ctx.set(dut.y, y)
            await ctx.delay(1e-9)
            res.append((ctx.get(dut.f), ctx.get(dut.z)))

    sim = Simulator(dut)      # combinational: no clock
    sim.add_testbench(tb)
    sim.run()
    for ((s, e), (x, y)), (f, z) in zip(zip(ints, pairs), res):
        assert f == f32_bits(exact_to_float32(np.array([s], dtype=object), e)[0]), (s, e)
        fx, fy = (np.uint32(v).view(np.float32) for v in (x, y))
        with np.errstate(all="ignore"):
            want = np.float32(fx + fy)
        if np.isnan(want):
            assert np.isnan(np.uint32(z).view(np.float32)), (hex(x), hex(y), hex(z))
        else:
            assert z == f32_bits(want), (hex(x), hex(y), hex(z), want)
