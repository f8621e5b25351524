"""MX-SAFE tile operands (``mxsf_tile``: one scale and one mode per r x c tile) on the
systolic arrays, both dataflows, both orientations of each operand, against
``golden.tile.matmul`` (``op(a) @ op(b)``, ``op`` the exact transpose ``q.T``) bit for bit;
the K-block mapping (:mod:`mxhw.systolic.tile`) and its errors.

Operands are drawn as stored tiles: per tile a scale code and a mode, per element a code
of its tile's mode (mode S codes include reserved ones, which golden decodes as NaN)."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, strategies as st

from support.hyp import budget
from support.systolic import acc_strategy, compare, waits
from support.tile import SHAPES, tile_operand, training_step
from mxhw import golden
from mxhw.golden.arith import FP32, fixed, gemm
from mxhw.golden.mxsf import mxsf_tile
from mxhw.golden.quantize import quantize
from mxhw.golden.tile import matmul
from mxhw.sim import run, stream_recv, stream_send
from mxhw.systolic import SystolicArray
from mxhw.systolic.driver import array_beats, tile_order, ws_beats
from mxhw.systolic.grid import PE_PIPELINE_MAX
from mxhw.systolic.tile import k_block_format, k_block_formats, k_blocks, tile_k

@st.composite
def training_operands(draw, M, N, nblk, **kw):
    """``(a, b, ta, tb)``: stored tile operands and transpose flags, ``op(a)`` M x K and
    ``op(b)`` K x N, K a multiple ``nblk`` of the K block."""
    fa = mxsf_tile(*draw(st.sampled_from(SHAPES)))
    fb = mxsf_tile(*draw(st.sampled_from(SHAPES)))
    ta, tb = draw(st.booleans()), draw(st.booleans())
    opa = golden.tile.transposed_format(fa) if ta else fa
    opb = golden.tile.transposed_format(fb) if tb else fb
    K = tile_k(opa, opb) * nblk
    a = draw(tile_operand(fa, (K, M) if ta else (M, K), **kw))
    b = draw(tile_operand(fb, (N, K) if tb else (K, N), **kw))
    return a, b, ta, tb


def _op(q, t):
    return q.T if t else q


def _fed(a, b, ta, tb):
    """The operands as the feeder serves them to the PEs: 1-D K blocks."""
    opa, opb = _op(a, ta), _op(b, tb)
    k = tile_k(opa.fmt, opb.fmt)
    return k_blocks(opa, "a", k), k_blocks(opb, "b", k)


def run_os(a, b, ta, tb, rows, cols, acc, gaps=None, **kw):
    """``op(a) @ op(b)`` through an output-stationary array fed 1-D K blocks; every result
    against ``golden.tile.matmul``."""
    fa, fb = _fed(a, b, ta, tb)
    dut = SystolicArray(rows, cols, _op(a, ta).fmt, _op(b, tb).fmt, acc=acc, **kw)
    assert (dut.fmt_a, dut.fmt_b) == (fa.fmt, fb.fmt)
    M, N = fa.shape[0], fb.shape[1]
    tiles = tile_order(M, N, rows, cols)
    rng_i, rng_o = (None, None) if gaps is None else (g.fresh() for g in gaps)
    got = {}

    async def producer(ctx):
        for m0, n0 in tiles:
            await stream_send(ctx, dut.i, array_beats(fa, fb, rows, cols, m0, n0), rng_i,
                              0.5)

    async def consumer(ctx):
        for m0, n0 in tiles:
            for i, r in enumerate(await stream_recv(ctx, dut.o, rows, rng_o, 0.5)):
                for j in range(cols):
                    got[m0 + i, n0 + j] = (r.data[j], r.special[j])

    run(dut, producer, consumer)
    _check(got, a, b, ta, tb, acc)


def run_ws(a, b, ta, tb, rows, cols, acc, depth, gaps=None, **kw):
    """The same through a weight-stationary array (schedule ``ws_beats``)."""
    fa, fb = _fed(a, b, ta, tb)
    dut = SystolicArray(rows, cols, _op(a, ta).fmt, _op(b, tb).fmt, acc=acc,
                        dataflow="weight_stationary", depth=depth, **kw)
    M, N = fa.shape[0], fb.shape[1]
    rng_i, rng_o = (None, None) if gaps is None else (g.fresh() for g in gaps)
    got = {}

    async def producer(ctx):
        await stream_send(ctx, dut.i, ws_beats(fa, fb, rows, cols, depth), rng_i, 0.5)

    async def consumer(ctx):
        for m0, n0 in tile_order(M, N, depth, cols):
            for i, r in enumerate(await stream_recv(ctx, dut.o, depth, rng_o, 0.5)):
                for j in range(cols):
                    got[m0 + i, n0 + j] = (r.data[j], r.special[j])

    run(dut, producer, consumer)
    _check(got, a, b, ta, tb, acc)


def _check(got, a, b, ta, tb, acc):
    # golden on the tile operands themselves: op(a) is golden's exact transpose q.T
    compare(got, _op(a, ta), _op(b, tb), acc)
    want = matmul(a, b, acc, transpose_a=ta, transpose_b=tb)
    assert np.array_equal(want, gemm(_op(a, ta), _op(b, tb), acc), equal_nan=True)


# ---- the K-block mapping -------------------------------------------------------------------

@budget(40)
@given(data=st.data(), M=st.integers(1, 9), N=st.integers(1, 9), nblk=st.integers(1, 3),
       acc=acc_strategy())
def test_k_blocks_equal_golden(data, M, N, nblk, acc):
    """Golden's GEMM of the fed 1-D K blocks equals golden.tile.matmul of the stored tiles
    in every orientation (fixed and exact accumulation): the feeder's replication of
    each tile's scale and mode loses nothing and rounds where golden rounds."""
    a, b, ta, tb = data.draw(training_operands(M, N, nblk, reserved=True, nan=True))
    fa, fb = _fed(a, b, ta, tb)
    for ac in (acc, golden.arith.EXACT):
        want = matmul(a, b, ac, transpose_a=ta, transpose_b=tb)
        assert np.array_equal(gemm(fa, fb, ac), want, equal_nan=True)


def test_k_block_of_the_training_gemms():
    """8 x 4 tiles: forward (X W) and input gradient (dY W^T) in K blocks of 4, weight
    gradient (X^T dY) in K blocks of 8."""
    t, tt = mxsf_tile(), mxsf_tile(4, 8)
    assert tile_k(t, t) == 4 and tile_k(t, tt) == 4 and tile_k(tt, t) == 8
    fa, fb = k_block_formats(t, t)
    assert fa.block == fb.block == 4 and fa.candidates == t.candidates
    assert k_block_format(t, 4) is fa and fa.name == "mxsf_tile_k4"
    assert tile_k("mxsf_tile", "mxsf") == 4                # a 1-D partner of 32
    assert k_block_formats("mxsf", "mxfp4")[0] is golden.formats.get("mxsf")


def test_training_step_on_the_array():
    """One linear layer's three GEMMs (forward, dX, dW) from one quantised copy each of X,
    W and dY, on a 2 x 2 output-stationary array: each equals golden.tile.training_gemms."""
    acc, cases = training_step()
    for a, b, ta, tb, _ in cases:
        run_os(a, b, ta, tb, 2, 2, acc)


# ---- the arrays ------------------------------------------------------------------------------

@budget(10, suppress_health_check=list(HealthCheck))
@given(data=st.data(), rows=st.integers(1, 3), cols=st.integers(1, 3), M=st.integers(1, 5),
       N=st.integers(1, 5), nblk=st.integers(1, 2), acc=acc_strategy(),
       reserved=st.booleans(), nan=st.booleans(), gaps=st.tuples(waits(), waits()),
       pipeline=st.integers(0, PE_PIPELINE_MAX))
def test_os_tile_matches_golden(data, rows, cols, M, N, nblk, acc, reserved, nan, gaps,
                                pipeline):
    """Output-stationary, fixed accumulation, tile operands in either orientation."""
    a, b, ta, tb = data.draw(training_operands(M, N, nblk, reserved=reserved, nan=nan))
    run_os(a, b, ta, tb, rows, cols, acc, gaps, pipeline=pipeline)


@budget(5, suppress_health_check=list(HealthCheck))
@given(data=st.data(), rows=st.integers(1, 2), cols=st.integers(1, 2), M=st.integers(1, 3),
       N=st.integers(1, 3), nblk=st.integers(1, 2), spread=st.sampled_from([4, 40]),
       pipeline=st.integers(0, PE_PIPELINE_MAX))
def test_os_tile_fp32_matches_golden(data, rows, cols, M, N, nblk, spread, pipeline):
    """Output-stationary, FP32 accumulation (one float32 rounding per K block)."""
    a, b, ta, tb = data.draw(training_operands(M, N, nblk, spread=spread))
    run_os(a, b, ta, tb, rows, cols, FP32, pipeline=pipeline)


@budget(8, suppress_health_check=list(HealthCheck))
@given(data=st.data(), rows=st.integers(1, 3), cols=st.integers(1, 3),
       depth=st.integers(1, 4), M=st.integers(1, 5), N=st.integers(1, 5),
       nblk=st.integers(1, 2), acc=st.one_of(acc_strategy(), st.just(FP32)),
       reserved=st.booleans(), gaps=st.tuples(waits(), waits()),
       pipeline=st.integers(0, PE_PIPELINE_MAX))
def test_ws_tile_matches_golden(data, rows, cols, depth, M, N, nblk, acc, reserved, gaps,
                                pipeline):
    """Weight-stationary, fixed or FP32 accumulation, either orientation."""
    a, b, ta, tb = data.draw(training_operands(M, N, nblk, reserved=reserved))
    run_ws(a, b, ta, tb, rows, cols, acc, depth, gaps, pipeline=pipeline)


# ---- errors ------------------------------------------------------------------------------------

def test_errors():
    t = mxsf_tile()
    with pytest.raises(ValueError, match="one scale per tensor"):
        tile_k("mxsf_tile", "fp8_e4m3_pt")
    with pytest.raises(ValueError, match="role must be 'a' or 'b'"):
        k_blocks(quantize(np.ones((8, 4)), t), "c", 4)
    with pytest.raises(ValueError, match=r"k = 3 must divide"):
        k_blocks(quantize(np.ones((8, 4)), t), "a", 3)
    with pytest.raises(TypeError, match="2-D MXArray"):
        k_blocks(np.ones((8, 4)), "a", 4)
    with pytest.raises(ValueError, match="blocked along K"):
        k_blocks(quantize(np.ones((32, 32)), "mxsf", axis=0), "a", 32)
    with pytest.raises(ValueError, match="fmt_a must be a block format name"):
        SystolicArray(2, 2, "mxsf_tilex", "mxsf_tile", acc=fixed(32, 16))
