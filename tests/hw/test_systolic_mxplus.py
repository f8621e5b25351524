"""MX+ (``mxfp4_plus``, ``mxfp6_plus``, ``mxfp8_plus``) as operands of the systolic arrays,
against golden.arith.gemm bit for bit: the (ext, code) element decode, the
output-stationary array (fixed and FP32 accumulation, per-PE and row-shared accumulators,
bit-serial PEs), the weight-stationary array; errors.

Operands are drawn code by code: element codes, scale codes (0 and NaN included: a block
with scale code 0 is a plain MX block), each block's index, and the extended element's
code from all its codes (the FP8 E4M3 NaN pattern is a number there)."""

import numpy as np
import pytest
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator
from hypothesis import HealthCheck, given, strategies as st
from hypothesis.extra import numpy as hnp

from support.hyp import budget
from mxhw import golden
from mxhw.formats import Unpacked, fixed_point, fixed_shape, operand_element, unpack
from mxhw.golden.arith import gemm
from mxhw.golden.quantize import MXArray
from mxhw.systolic.grid import PE_PIPELINE_MAX

from support.systolic import (Harness, acc_strategy, check_fp32, check_gemm, check_ws,
                              mx_operand, waits)

PLUS = ["mxfp4_plus", "mxfp6_plus", "mxfp8_plus"]
#: operand pairs: MX+ on A, on B, on both (block 32 everywhere)
PAIRS = [("mxfp4_plus", "mxfp4"), ("mxfp8_e4m3", "mxfp6_plus"), ("mxfp4_plus", "mxfp8_plus"),
         ("mxfp6_plus", "mxfp6_plus"), ("mxint8", "mxfp8_plus")]


@st.composite
def plus_operand(draw, fmt, shape, axis, **kw):
    """An operand of ``fmt``: :func:`~support.systolic.mx_operand` (plain codes, scales,
    NaN scales, zero blocks); MX+ adds each block's index (drawn) and its extended code
    (drawn from every code)."""
    f = golden.formats.get(fmt)
    base = draw(mx_operand(f, shape, axis, **kw))
    if f.codec != "mxplus":
        return base
    k = f.block_size
    idx = draw(hnp.arrays(np.int64, base.scales.shape, elements=st.integers(0, k - 1)))
    ext = draw(hnp.arrays(np.int64, base.scales.shape,
                          elements=st.integers(0, f.element.n_codes - 1)))
    el = base.elements.copy()
    for pos in np.ndindex(base.scales.shape):
        at = list(pos)
        at[axis] = pos[axis] * k + idx[pos]
        el[tuple(at)] = ext[pos]
    return MXArray(f, base.shape, axis, el, base.scales, index=idx)


def operands(fa, fb, M, N, nblk, **kw):
    K = 32 * nblk
    return st.tuples(plus_operand(fa, (M, K), 1, **kw), plus_operand(fb, (K, N), 0, **kw))


# ---- golden facts the hardware relies on ------------------------------------------------

def test_index_matters():
    """The stored index changes golden's product (so the array tests can fail when the
    hardware ignores or misplaces it): the same codes and scales with the index moved."""
    rng = np.random.default_rng(3)
    a = golden.quantize(rng.standard_normal((2, 32)), "mxfp4_plus", axis=1)
    b = golden.quantize(rng.standard_normal((32, 1)), "mxfp4", axis=0)
    moved = MXArray(a.fmt, a.shape, 1, a.elements, a.scales, index=(a.index + 1) % 32)
    acc = golden.arith.fixed(32, 10)
    assert not np.array_equal(gemm(a, b, acc), gemm(moved, b, acc))


# ---- the operand element: every (ext, code) ----------------------------------------------

def _decode(fmt):
    def build(m, d):
        m.d.comb += [d.u.eq(unpack(m, fmt, d.code)), d.x.eq(fixed_point(m, fmt, d.code))]
    return Harness({"code": In(fmt.bits), "u": Out(Unpacked(fmt)),
                    "x": Out(fixed_shape(fmt))}, build)


@pytest.mark.parametrize("name", PLUS)
def test_operand_element_decode_every_code(name):
    """Every (ext, code) pair: ext 0 decodes as the plain element (golden's table), ext 1
    as golden.mxplus.ext_decode; the fixed-point integer is golden's element_ints."""
    f = golden.formats.get(name)
    e = operand_element(f)
    b = f.element.bits
    assert e.bits == b + 1
    plain = f.element.table
    ext = golden.mxplus.ext_decode(f, np.arange(1 << b))
    dut = _decode(e)
    lay = Unpacked(e)
    fields = [n for n, _ in lay]
    got = []

    async def tb(ctx):
        for c in range(1 << (b + 1)):
            ctx.set(dut.code, c)
            await ctx.delay(1e-9)
            u = ctx.get(dut.u)
            got.append(({n: getattr(u, n) for n in fields}, ctx.get(dut.x)))

    sim = Simulator(dut)
    sim.add_testbench(tb)
    sim.run()
    for c, (u, x) in enumerate(got):
        want = ext[c & ((1 << b) - 1)] if c >> b else plain[c]
        v = lay.value(u)
        if np.isnan(want):
            assert np.isnan(v), c
            continue
        assert v == want, (c, v, want)
        assert x * 2.0 ** e.lsb_exp == want, (c, x)


# ---- output-stationary ------------------------------------------------------------------

@budget(10, suppress_health_check=list(HealthCheck))
@given(data=st.data(), pair=st.sampled_from(PAIRS), rows=st.integers(1, 3),
       cols=st.integers(1, 3), M=st.integers(1, 4), N=st.integers(1, 4),
       nblk=st.integers(1, 2), acc=acc_strategy(), nan=st.booleans(), zero=st.booleans(),
       gaps=st.tuples(waits(), waits()), pipeline=st.integers(0, PE_PIPELINE_MAX),
       shared=st.sampled_from([None, False]))
def test_os_matches_golden(data, pair, rows, cols, M, N, nblk, acc, nan, zero, gaps,
                           pipeline, shared):
    """MX+ on A, on B, on both (drawn codes, indices, NaN scales, zero blocks), shapes,
    fixed accumulation (row-shared or per-PE), gaps and stalls: equal to golden."""
    a, b = data.draw(operands(*pair, M, N, nblk, nan=nan, zero=zero))
    check_gemm(a, b, rows, cols, acc, gaps, 0.5, 0.5, pipeline=pipeline, shared_acc=shared)


@budget(6, suppress_health_check=list(HealthCheck))
@given(data=st.data(), pair=st.sampled_from(PAIRS), rows=st.integers(1, 2),
       cols=st.integers(1, 2), M=st.integers(1, 3), N=st.integers(1, 3),
       nblk=st.integers(1, 2), spread=st.sampled_from([4, 40, 130]),
       pipeline=st.integers(0, PE_PIPELINE_MAX), nan=st.booleans(),
       gaps=st.tuples(waits(), waits()))
def test_os_fp32_matches_golden(data, pair, rows, cols, M, N, nblk, spread, pipeline, nan,
                                gaps):
    """FP32 accumulation with MX+ operands, magnitudes up to beyond float32's range."""
    a, b = data.draw(operands(*pair, M, N, nblk, nan=nan, spread=spread))
    check_fp32(a, b, rows, cols, pipeline, gaps, 0.5)


@budget(5, suppress_health_check=list(HealthCheck))
@given(data=st.data(), pair=st.sampled_from([("mxfp4_plus", "mxfp4_plus"),
                                             ("mxfp8_e4m3", "mxfp6_plus"),
                                             ("mxfp6_plus", "mxint8")]),
       rows=st.integers(1, 2), cols=st.integers(1, 2), M=st.integers(1, 3),
       N=st.integers(1, 3), acc=acc_strategy(), nan=st.booleans(),
       gaps=st.tuples(waits(), waits()))
def test_os_bitserial_matches_golden(data, pair, rows, cols, M, N, acc, nan, gaps):
    """Bit-serial PEs: an MX+ weight serialised with its extended flag at the edge, an MX+
    activation decoded in the PE."""
    a, b = data.draw(operands(*pair, M, N, 1, nan=nan))
    check_gemm(a, b, rows, cols, acc, gaps, 0.5, pe="bitserial", pipeline=1)


# ---- weight-stationary ------------------------------------------------------------------

@budget(8, suppress_health_check=list(HealthCheck))
@given(data=st.data(), pair=st.sampled_from(PAIRS), rows=st.integers(1, 5),
       cols=st.integers(1, 3), depth=st.integers(1, 4), M=st.integers(1, 5),
       N=st.integers(1, 4), nblk=st.integers(1, 2), acc=acc_strategy(),
       nan=st.booleans(), zero=st.booleans(), gaps=st.tuples(waits(), waits()),
       pipeline=st.integers(0, PE_PIPELINE_MAX))
def test_ws_matches_golden(data, pair, rows, cols, depth, M, N, nblk, acc, nan, zero, gaps,
                           pipeline):
    """The weight-stationary array (passes of ``rows`` K rows: the edge counts each pass's
    block position for the extended flag), fixed accumulation: equal to golden."""
    a, b = data.draw(operands(*pair, M, N, nblk, nan=nan, zero=zero))
    check_ws(a, b, rows, cols, acc, gaps, 0.5, 0.5, pipeline=pipeline, depth=depth)


@budget(4, suppress_health_check=list(HealthCheck))
@given(data=st.data(), pair=st.sampled_from(PAIRS), rows=st.integers(1, 3),
       cols=st.integers(1, 2), M=st.integers(1, 3), N=st.integers(1, 3),
       pipeline=st.integers(0, PE_PIPELINE_MAX), nan=st.booleans())
def test_ws_fp32_matches_golden(data, pair, rows, cols, M, N, pipeline, nan):
    """Weight-stationary with FP32 accumulation."""
    a, b = data.draw(operands(*pair, M, N, 1, nan=nan, spread=40))
    check_ws(a, b, rows, cols, golden.arith.FP32, pipeline=pipeline)



@pytest.mark.parametrize("dataflow", ["output_stationary", "weight_stationary"])
def test_engine(dataflow):
    """GemmEngine passes the index fields through its FIFO to the array."""
    from support.soc import check_engine, run_engine
    rng = np.random.default_rng(33)
    a = golden.quantize(rng.standard_normal((3, 64)) * 3, "mxfp4_plus", axis=1)
    b = golden.quantize(rng.standard_normal((64, 3)), "mxfp8_plus", axis=0)
    acc = golden.arith.fixed(32, 12)
    kw = {"depth": 2} if dataflow == "weight_stationary" else {}
    got, _ = run_engine(a, b, 2, 2, acc, p_idle=0.2, p_stall=0.2, dataflow=dataflow, **kw)
    check_engine(a, b, got, acc)
