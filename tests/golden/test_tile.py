"""golden.tile: MXArray.T of tile formats, re-quantised transposes of 1-D formats, and the
three training GEMMs (Y = X W, dX = dY W^T, dW = X^T dY) on tile operands.

Expectations come from golden's quantiser on the explicitly transposed float tensor, and
from exact (Fraction) sums of the dequantised operands rounded to float32 here, never from
golden.tile itself."""

import dataclasses
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, strategies as st

from mxhw import golden
from mxhw.golden import formats as F
from mxhw.golden.mxsf import mxsf_tile
from support.golden import float_arrays
from support.hyp import budget

TILES = [(8, 4), (4, 8), (2, 2), (3, 5)]
ONE_D = ["mxfp8_e4m3", "mxfp4_e2m1", "mxsf", "mxint8"]


def _same(p, q):
    """Two MXArrays hold the same format, shape, axis and codes."""
    assert p.fmt is q.fmt and p.shape == q.shape and p.axis == q.axis
    for f in ("elements", "scales", "modes", "zeros"):
        u, v = getattr(p, f), getattr(q, f)
        assert (u is None) == (v is None), f
        if u is not None:
            assert u.shape == v.shape and (u == v).all(), f


def rne32(v: Fraction) -> np.float32:
    """The float32 nearest to the exact ``v``, ties to even (finite range only)."""
    f = np.float32(float(v))
    cands = {f, np.nextafter(f, np.float32(np.inf)), np.nextafter(f, np.float32(-np.inf))}
    return min(cands, key=lambda c: (abs(Fraction(float(c)) - v),
                                     int(np.array(c, np.float32).view(np.uint32)) & 1))


def exact_product(a, b):
    """``a @ b`` of float64 matrices, each output the RNE float32 of the exact sum."""
    fa = [[Fraction(float(v)) for v in row] for row in a]
    fb = [[Fraction(float(v)) for v in row] for row in b.T]
    return np.array([[rne32(sum((x * y for x, y in zip(r, c)), Fraction(0))) for c in fb]
                     for r in fa], dtype=np.float32)


def chunked_fp32(a, b, k):
    """golden's FP32 accumulation written out: exact dot of each K run of ``k``, rounded
    to float32, added in float32 in K order from +0.0."""
    out = np.zeros((a.shape[0], b.shape[1]), dtype=np.float32)
    for j in range(0, a.shape[1], k):
        out = (out + exact_product(a[:, j:j + k], b[j:j + k])).astype(np.float32)
    return out


def _scaled(data, shape, k):
    return np.ldexp(data.draw(float_arrays(shape, hi_abs=8.0)), k)


# ---- transpose ---------------------------------------------------------------------------

@budget(40)
@given(st.sampled_from(TILES), st.integers(1, 19), st.integers(1, 19), st.integers(0, 2),
       st.data(), st.integers(-6, 6))
def test_transpose_twice_is_identity(tile, m, n, lead, data, k):
    x = _scaled(data, (2,) * lead + (m, n), k)
    q = golden.quantize(x, mxsf_tile(*tile))
    t = q.T
    assert t.shape == (*x.shape[:-2], n, m) and t.fmt.block == tile[::-1]
    _same(t.T, q)


@budget(40)
@given(st.sampled_from(TILES), st.integers(1, 19), st.integers(1, 19), st.data(),
       st.integers(-6, 6))
def test_transpose_is_quantised_transpose(tile, m, n, data, k):
    """q.T holds the codes golden gives the transposed float tensor on the swapped tile."""
    x = _scaled(data, (m, n), k)
    q = golden.quantize(x, mxsf_tile(*tile))
    ref = golden.quantize(x.T, mxsf_tile(*tile[::-1]))
    t = q.T
    assert t.fmt.name == ref.fmt.name and t.fmt.block == ref.fmt.block
    for f in ("elements", "scales", "modes"):
        assert (getattr(t, f) == getattr(ref, f)).all(), f
    assert np.array_equal(t.dequantize(), q.dequantize().T, equal_nan=True)


@budget(20)
@given(st.integers(1, 9), st.integers(1, 9), st.sampled_from([0, 1]), st.data())
def test_per_tensor_transpose_is_exact(m, n, axis, data):
    x = data.draw(float_arrays((m, n)))
    q = golden.quantize(x, "fp8_e4m3_pt", axis=axis)
    t = q.T
    assert t.axis == 1 - axis and t.fmt is q.fmt
    ref = golden.quantize(x.T, "fp8_e4m3_pt", axis=1 - axis)
    assert (t.elements == ref.elements).all() and (t.scales == ref.scales).all()
    _same(t.T, q)


def test_transpose_of_nan_tile():
    x = np.ones((8, 8))
    x[0, 5] = np.nan
    q = golden.quantize(x, "mxsf_tile")
    assert np.array_equal(q.T.dequantize(), q.dequantize().T, equal_nan=True)
    assert np.isnan(q.T.dequantize()[4:, :]).all() and not np.isnan(q.T.dequantize()[:4]).any()


@pytest.mark.parametrize("fmt", ONE_D)
def test_one_d_formats_refuse_transpose(fmt):
    q = golden.quantize(np.ones((4, 64)), fmt, axis=1)
    with pytest.raises(golden.TransposeError,
                       match=rf"^{fmt} has 1-D blocks of 32 along axis 1: a transpose would "
                             r"need the blocks along the other axis, which is a "
                             r"re-quantisation, not a re-indexing; use "
                             r"golden.requantize_transposed\(q\)"):
        q.T
    assert issubclass(golden.TransposeError, ValueError)
    with pytest.raises(golden.TransposeError, match=rf"^{fmt} has 1-D blocks of 32: a"):
        golden.transposed_format(fmt)
    with pytest.raises(golden.TransposeError):
        golden.matmul(q, golden.quantize(np.ones((4, 8)), fmt, axis=0), transpose_a=True)


def test_transpose_errors():
    with pytest.raises(ValueError, match=r"cannot transpose a 1-D MXArray of shape \(8,\)"):
        golden.quantize(np.ones(8), "fp8_e4m3_pt").T
    with pytest.raises(TypeError, match=r"transpose takes an MXArray, not <class 'numpy"):
        golden.tile.transpose(np.ones((2, 2)))
    with pytest.raises(TypeError, match=r"transposed_format takes a block format"):
        golden.transposed_format("fp8_e4m3")
    q = golden.quantize(np.ones((8, 4)), "mxsf_tile")
    with pytest.raises(TypeError, match=r"transpose_b must be True or False, not 1"):
        golden.matmul(q.T, q, transpose_b=1)


def test_transposed_format_descriptors():
    t = golden.transposed_format("mxsf_tile")
    assert t.name == "mxsf_tile4x8" and t.block == (4, 8)
    assert t.candidates == F.get("mxsf_tile").candidates and t.scale is F.get("e8m0")
    assert golden.transposed_format(t) is F.get("mxsf_tile")
    assert golden.transposed_format("mxsf_tile") is t  # one descriptor per orientation
    sq = mxsf_tile(2, 2)
    assert golden.transposed_format(sq) is sq
    assert golden.transposed_format("fp8_e4m3_pt") is F.get("fp8_e4m3_pt")
    other = dataclasses.replace(F.get("mxsf_tile"), name="demo_tile", block=(2, 6))
    ot = golden.transposed_format(other)
    assert ot.name == "demo_tile_T" and ot.block == (6, 2) and ot.candidates == other.candidates
    assert golden.transposed_format(ot) is other
    x = np.random.default_rng(3).standard_normal((6, 12))
    _same(golden.quantize(x, other).T.T, golden.quantize(x, other))


# ---- re-quantised transpose of 1-D formats -----------------------------------------------

@budget(20)
@given(st.sampled_from(ONE_D), st.sampled_from([0, 1]), st.data())
def test_requantize_transposed_one_d(fmt, axis, data):
    x = data.draw(float_arrays((32, 32) if axis == 0 else (3, 32)))
    q = golden.quantize(x, fmt, axis=axis)
    r = golden.requantize_transposed(q)
    _same(r, golden.quantize(q.dequantize().T, fmt, axis=axis))
    _same(golden.requantize_transposed(q, axis=1 - axis),
          golden.quantize(q.dequantize().T, fmt, axis=1 - axis))


@budget(20)
@given(st.sampled_from(TILES), st.integers(1, 17), st.integers(1, 17), st.data())
def test_requantize_transposed_tile_has_the_values_of_t(tile, m, n, data):
    q = golden.quantize(data.draw(float_arrays((m, n), hi_abs=30.0)), mxsf_tile(*tile))
    r = golden.requantize_transposed(q)
    assert r.fmt is q.T.fmt and (r.scales.shape == q.T.scales.shape)
    assert np.array_equal(r.dequantize(), q.T.dequantize())


# ---- GEMMs on transposed tiles ---------------------------------------------------------

ACCS = [golden.EXACT, golden.FP32, golden.fixed(48, 24), golden.fixed(16, 4, "wrap", "rne")]


@st.composite
def layer(draw):
    """X (M x K), W (K x N), dY (M x N) for a training step on 8 x 4 tiles: K and N are
    multiples of 4 (the forward and input-gradient K blocks), M of 8 (weight gradient)."""
    m = 8 * draw(st.integers(1, 2))
    k = 4 * draw(st.integers(1, 3))
    n = 4 * draw(st.integers(1, 3))
    e = draw(st.integers(-4, 4))
    return tuple(np.ldexp(draw(float_arrays(s, hi_abs=8.0)), e)
                 for s in ((m, k), (k, n), (m, n)))


@budget(25)
@given(layer())
def test_training_gemms_are_exact_products(ops):
    """EXACT: each product is the float32 rounding of the exact product of the
    dequantised operands, every operand quantised once."""
    x, w, dy = (golden.quantize(t, "mxsf_tile") for t in ops)
    X, W, D = (q.dequantize() for q in (x, w, dy))
    y, dx, dw = golden.training_gemms(x, w, dy)
    assert np.array_equal(y, exact_product(X, W))
    assert np.array_equal(dx, exact_product(D, W.T))
    assert np.array_equal(dw, exact_product(X.T, D))


@budget(25)
@given(layer(), st.sampled_from(ACCS))
def test_transposed_gemm_equals_gemm_of_quantised_transpose(ops, acc):
    """gemm on q.T equals gemm on the transposed float tensor quantised on the swapped
    tile, and on the re-quantised transpose, under every accumulation."""
    xf, wf, dyf = ops
    x, w, dy = (golden.quantize(t, "mxsf_tile") for t in ops)
    wt = golden.quantize(wf.T, mxsf_tile(4, 8))
    xt = golden.quantize(xf.T, mxsf_tile(4, 8))
    y, dx, dw = golden.training_gemms(x, w, dy, acc)
    assert np.array_equal(dx, golden.gemm(dy, wt, acc), equal_nan=True)
    assert np.array_equal(dw, golden.gemm(xt, dy, acc), equal_nan=True)
    assert np.array_equal(dx, golden.gemm(dy, golden.requantize_transposed(w), acc))
    assert np.array_equal(dw, golden.gemm(golden.requantize_transposed(x), dy, acc))
    assert np.array_equal(dx, golden.matmul(dy, w, acc, transpose_b=True))
    assert np.array_equal(dw, golden.matmul(x, dy, acc, transpose_a=True))
    assert np.array_equal(y, golden.matmul(x, w, acc))
    # transposing the whole product: (X W)^T = W^T X^T, both read from the same tiles
    if acc.mode == "exact":
        assert np.array_equal(golden.matmul(w, x, acc, True, True), y.T)


@budget(15)
@given(layer())
def test_forward_tiles_meet_in_k_runs_of_4(ops):
    """X's 8 x 4 tiles against W's 8 x 4 tiles: the FP32 accumulation rounds the exact dot
    of every K run of 4 (both scales constant) and adds them in K order."""
    x, w, _ = (golden.quantize(t, "mxsf_tile") for t in ops)
    assert np.array_equal(golden.gemm(x, w, golden.FP32),
                          chunked_fp32(x.dequantize(), w.dequantize(), 4))


@budget(15)
@given(st.data())
def test_tile_against_one_d_operand(data):
    """A tile A (K run 4) against an MXFP8 B (K blocks of 32) meets in runs of 4."""
    a = golden.quantize(data.draw(float_arrays((8, 32))), "mxsf_tile")
    b = golden.quantize(data.draw(float_arrays((32, 2))), "mxfp8_e4m3", axis=0)
    assert np.array_equal(golden.gemm(a, b, golden.FP32),
                          chunked_fp32(a.dequantize(), b.dequantize(), 4))


def test_one_d_blocks_still_must_match_along_k():
    a = golden.quantize(np.ones((2, 64)), "mxfp4", axis=1)
    b16 = dataclasses.replace(F.get("mxfp4"), name="mxfp4_b16", block=16)
    with pytest.raises(ValueError, match=r"^a and b blocks differ along K \(32 vs 16\)$"):
        golden.gemm(a, golden.quantize(np.ones((64, 2)), b16, axis=0))
    with pytest.raises(ValueError, match=r"K = 6 must be a multiple of the block size 4"):
        golden.gemm(golden.quantize(np.ones((8, 6)), "mxsf_tile"),
                    golden.quantize(np.ones((6, 8)), "mxsf_tile"))
