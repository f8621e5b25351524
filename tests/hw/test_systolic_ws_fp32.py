"""Weight-stationary SystolicArray with FP32 accumulation against golden.arith.gemm(...,
FP32), bit for bit (float32 bit patterns; NaN where golden gives NaN); the float32
conversion split by a register (int_to_f32's ``cut``) against golden."""

import numpy as np
import pytest
from amaranth.hdl import Module, Signal, signed
from amaranth.lib.wiring import In, Out
from hypothesis import HealthCheck, given, strategies as st

from support.hyp import budget
from mxhw.golden.arith import FP32, exact_to_float32, gemm
from mxhw.golden.quantize import MXArray, quantize
from mxhw.sim import run
from mxhw.systolic import SystolicArray
from mxhw.systolic.fp32acc import int_to_f32
from mxhw.lib.signals import stage
from mxhw.systolic.grid import PE_PIPELINE_MAX
from mxhw.systolic.ws import ws_latency

from support.systolic import FORMATS, Harness, check_ws, mx_operands, random_operand, waits


@budget(12, suppress_health_check=list(HealthCheck))
@given(data=st.data(), fa=st.sampled_from(FORMATS), fb=st.sampled_from(FORMATS),
       rows=st.integers(1, 4), cols=st.integers(1, 4), depth=st.integers(1, 5),
       M=st.integers(1, 6), N=st.integers(1, 6), nblk=st.integers(1, 3),
       spread=st.sampled_from([4, 40, 130]), pipeline=st.integers(0, PE_PIPELINE_MAX),
       nan=st.booleans(), inf=st.booleans(), zero=st.booleans(),
       gaps=st.tuples(waits(), waits()))
def test_ws_fp32_matches_golden(data, fa, fb, rows, cols, depth, M, N, nblk, spread, pipeline,
                                nan, inf, zero, gaps):
    """Drawn formats (A and B differ), shapes, depths, M/N/K, codes, scales from ordinary
    to far beyond float32's range (subnormal and overflowing blocks), NaN scales, Inf
    element codes, zero blocks, input gaps and output back-pressure."""
    a, b = data.draw(mx_operands(fa, fb, M, N, nblk, nan=nan, zero=zero, inf=inf,
                                 spread=spread))
    check_ws(a, b, rows, cols, FP32, gaps, 0.5, 0.5, pipeline=pipeline, depth=depth)


def ones_b(K, N=1, fmt="mxfp4"):
    return quantize(np.ones((K, N)), fmt, axis=0)


@pytest.mark.slow
def test_ws_fp32_zero_blocks():
    """All-zero operands give +0 (bits 0), and zero blocks between others add nothing."""
    a = quantize(np.zeros((3, 96)), "mxfp8_e4m3", axis=1)
    b = quantize(np.zeros((96, 2)), "mxint8", axis=0)
    assert not gemm(a, b, FP32).view(np.uint32).any()
    check_ws(a, b, 2, 2, FP32, depth=3)
    rng = np.random.default_rng(21)
    a = random_operand(rng, "mxfp6_e2m3", (4, 128), 1, zero_block_p=0.6)
    b = random_operand(rng, "mxfp4", (128, 3), 0, zero_block_p=0.6)
    for pipeline in (0, PE_PIPELINE_MAX):
        check_ws(a, b, 3, 3, FP32, seed=1, p_stall=0.3, pipeline=pipeline, depth=2)


def test_ws_fp32_nan_scales():
    """A NaN scale in A or in B makes the block, and so the result, NaN."""
    rng = np.random.default_rng(22)
    a = random_operand(rng, "mxfp4", (3, 96), 1, nan_p=0.3)
    b = random_operand(rng, "mxfp8_e5m2", (96, 3), 0, nan_p=0.2)
    v = gemm(a, b, FP32)
    assert np.isnan(v).any() and not np.isnan(v).all()
    check_ws(a, b, 4, 3, FP32, seed=2, p_idle=0.2, pipeline=3, depth=3)


def test_ws_fp32_overflow_to_inf():
    """A block beyond float32's range rounds to +-Inf; two finite blocks whose float32 sum
    overflows give Inf; +Inf then -Inf give NaN; Inf element codes times zero give NaN."""
    x = np.zeros((4, 64))
    x[0, 0], x[0, 32] = 2.0**120, -2.0**120        # +Inf block, then -Inf block: NaN
    x[1, 0] = 2.0**120                             # one +Inf block
    x[2, 0], x[2, 32] = 2.0**107, 2.0**107         # finite blocks, sum overflows
    x[3, 0], x[3, 32] = -2.0**107, -2.0**107
    a = quantize(x, "mxint8", axis=1)
    b = quantize(np.full((64, 1), 2.0**20), "mxint8", axis=0)
    v = gemm(a, b, FP32)
    assert np.isnan(v[0, 0]) and np.isposinf(v[1, 0])
    assert np.isposinf(v[2, 0]) and np.isneginf(v[3, 0])
    for pipeline in (0, 2, PE_PIPELINE_MAX):
        check_ws(a, b, 2, 1, FP32, pipeline=pipeline, depth=4)
    # e5m2 Inf codes: +Inf * x, -Inf * x, Inf * 0 (NaN), +Inf + -Inf within a block (NaN)
    a = quantize(np.ones((4, 32)), "mxfp8_e5m2", axis=1)
    inf = int(np.flatnonzero(np.isposinf(a.fmt.element.table))[0])
    ninf = int(np.flatnonzero(np.isneginf(a.fmt.element.table))[0])
    el = a.elements.copy()
    el[0, 3], el[1, 5], el[2, 7], el[3, 1], el[3, 2] = inf, ninf, inf, inf, ninf
    a = MXArray(a.fmt, a.shape, a.axis, el, a.scales, a.modes)
    xb = np.ones((32, 2))
    xb[7, 1] = 0.0
    b = quantize(xb, "mxfp6_e3m2", axis=0)
    v = gemm(a, b, FP32)
    assert np.isposinf(v[0]).all() and np.isneginf(v[1]).all() and np.isnan(v[3]).all()
    assert np.isposinf(v[2, 0]) and np.isnan(v[2, 1])
    check_ws(a, b, 4, 2, FP32, pipeline=1, depth=2)


def test_ws_fp32_cancellation_and_order():
    """Blocks 2**30, 1, -2**30: FP32 in K order loses the 1 (golden: 0); in the order
    2**30, -2**30, 1 it keeps it. Ties to even in each addition (1, 2**-24, 2**-24, ...),
    forwards and backwards."""
    for rows_vals in ([[2.0**30, 1.0, -2.0**30], [2.0**30, -2.0**30, 1.0]],
                      [[1.0, 2.0**-24, 2.0**-24, 3 * 2.0**-24, -1.0, 2.0**-30],
                       [2.0**-30, -1.0, 3 * 2.0**-24, 2.0**-24, 2.0**-24, 1.0]]):
        x = np.zeros((2, 32 * len(rows_vals[0])))
        x[:, ::32] = rows_vals
        a = quantize(x, "mxfp4", axis=1)
        b = ones_b(x.shape[1])
        if rows_vals[0][0] == 2.0**30:
            assert gemm(a, b, FP32).ravel().tolist() == [0.0, 1.0]
        for pipeline in (0, PE_PIPELINE_MAX):
            check_ws(a, b, 2, 1, FP32, pipeline=pipeline, depth=2)


@pytest.mark.slow
def test_ws_fp32_one_block():
    """K of one block; rows = 64 > k = 32 (one pass a block, rows beyond idle), rows = 1
    (32 passes a block), and rows not dividing k (a padded last pass)."""
    rng = np.random.default_rng(24)
    a = random_operand(rng, "mxint8", (3, 32), 1, 40)
    b = random_operand(rng, "mxfp6_e2m3", (32, 2), 0, 40)
    for rows, cols, depth in ((64, 1, 1), (1, 2, 3), (5, 2, 2)):
        check_ws(a, b, rows, cols, FP32, p_stall=0.3, depth=depth)


def test_ws_fp32_init():
    dut = SystolicArray(3, 2, "mxfp4", "mxint8", acc=FP32, dataflow="weight_stationary",
                        depth=4, pipeline=2)
    assert (dut.acc, dut.depth) == (FP32, 4)
    assert dut.out_layout.members["data"].elem_shape.width == 32
    assert dut.latency == ws_latency(3, 2, 2) == 3 + 2 + 2 + 3


@pytest.mark.parametrize("kw, exc, msg", [
    ({"pe": "bitserial"}, ValueError,
     "pe factories apply to the output-stationary dataflow; the weight-stationary array "
     "has its own PE"),
    ({"depth": 0}, ValueError, "depth must be >= 1, not 0"),
    ({"pipeline": 5}, ValueError, "pipeline must be in [0, 4], not 5"),
])
def test_ws_fp32_init_wrong(kw, exc, msg):
    args = dict(rows=2, cols=2, fmt_a="mxfp4", fmt_b="mxfp4", acc=FP32,
                dataflow="weight_stationary")
    args.update(kw)
    with pytest.raises(exc) as e:
        SystolicArray(**args)
    assert str(e.value).startswith(msg)


def _cut_converter():
    """int_to_f32 with a register at its ``cut`` (one cycle of latency)."""
    def build(m, u):
        calls = []

        def cut(*sigs):
            calls.append(len(sigs))
            return tuple(stage(m, x, True, "cut") for x in sigs)

        m.d.comb += u.f.eq(int_to_f32(m, u.s, u.e, cut=cut))
        assert calls == [6]
    return Harness({"s": In(signed(40)), "e": In(signed(12)), "f": Out(32)}, build)


@budget(10, suppress_health_check=list(HealthCheck))
@given(ints=st.lists(st.tuples(st.integers(-(1 << 39), (1 << 39) - 1), st.integers(-300, 300)),
                     min_size=16, max_size=16))
def test_int_to_f32_cut(ints):
    """The conversion cut by a register equals golden's exact_to_float32, one cycle later."""
    dut = _cut_converter()
    res = []

    async def tb(ctx):
        for n, (s, e) in enumerate(ints):
            ctx.set(dut.s, s)
            ctx.set(dut.e, e)
            await ctx.tick()
            # the next input is already on the ports: only the registered half converts
            ctx.set(dut.s, ints[(n + 1) % len(ints)][0])
            ctx.set(dut.e, ints[(n + 1) % len(ints)][1])
            res.append(ctx.get(dut.f))

    run(dut, tb)
    for (s, e), f in zip(ints, res):
        want = exact_to_float32(np.array([s], dtype=object), e)[0]
        assert f == int(want.view(np.uint32)), (s, e, hex(f))


def test_int_to_f32_wrong_cut():
    m = Module()
    with pytest.raises(TypeError, match=r"^cut must be a callable or None, not 3$"):
        int_to_f32(m, Signal(signed(8)), Signal(signed(4)), cut=3)
