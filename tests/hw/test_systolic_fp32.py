"""FP32 accumulation in hardware (MXMacPE / output-stationary SystolicArray) against
golden.arith.gemm with FP32, bit for bit; the float32 converter and adder against NumPy."""

import numpy as np
from amaranth.hdl import signed
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator
from hypothesis import HealthCheck, given, strategies as st

from support.hyp import budget
from mxhw.golden.arith import FP32, exact_to_float32, gemm
from mxhw.golden.quantize import quantize
from mxhw.systolic.fp32acc import f32_add, int_to_f32
from mxhw.systolic.grid import PE_PIPELINE_MAX

from support.systolic import FORMATS, Harness, check_fp32, mx_operands, waits


def f32_bits(x):
    return int(np.float32(x).view(np.uint32))


@budget(8, suppress_health_check=list(HealthCheck))
@given(data=st.data(), fa=st.sampled_from(FORMATS), fb=st.sampled_from(FORMATS),
       rows=st.integers(1, 2), cols=st.integers(1, 2),
       M=st.integers(1, 3), N=st.integers(1, 3), nblk=st.integers(1, 3),
       spread=st.sampled_from([4, 40, 130]), pipeline=st.integers(0, PE_PIPELINE_MAX),
       nan=st.booleans(), inf=st.booleans(), zero=st.booleans(),
       gaps=st.tuples(waits(), waits()))
def test_fp32_array_matches_golden(data, fa, fb, rows, cols, M, N, nblk, spread, pipeline,
                                   nan, inf, zero, gaps):
    """Drawn formats and codes, scales from ordinary to far beyond float32's range
    (subnormal and overflowing blocks), NaN scales (A), Inf elements, zero blocks,
    back-pressure."""
    a, b = data.draw(mx_operands(fa, fb, M, N, nblk, nan=nan, zero=zero, inf=inf,
                                 spread=spread, b_kw={"nan": False}))
    check_fp32(a, b, rows, cols, pipeline, gaps, 0.5)


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


def _f32_unit():
    """int_to_f32 and f32_add on ports."""
    def build(m, u):
        m.d.comb += [u.f.eq(int_to_f32(m, u.s, u.e)), u.z.eq(f32_add(m, u.x, u.y))]
    return Harness({"s": In(signed(40)), "e": In(signed(12)), "x": In(32), "y": In(32),
                    "f": Out(32), "z": Out(32)}, build)


def _f32_special_bits():
    return st.sampled_from([0, 0x8000_0000, 1, 0x807F_FFFF, 0x0080_0000, 0x7F7F_FFFF,
                            0xFF7F_FFFF, 0x7F80_0000, 0xFF80_0000, 0x7FC0_0000, 0x3F80_0000,
                            0x3380_0000, 0x3400_0000])


@budget(20, suppress_health_check=list(HealthCheck))
@given(ints=st.lists(st.tuples(st.integers(-(1 << 39), (1 << 39) - 1), st.integers(-300, 300)),
                     min_size=20, max_size=20),
       pairs=st.lists(st.tuples(st.one_of(st.integers(0, 2**32 - 1), _f32_special_bits()),
                                st.one_of(st.integers(0, 2**32 - 1), _f32_special_bits())),
                      min_size=20, max_size=20))
def test_float_units(ints, pairs):
    """int_to_f32 equals golden's exact_to_float32; f32_add equals NumPy float32 addition
    bit for bit (any NaN for NaN)."""
    dut = _f32_unit()
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
