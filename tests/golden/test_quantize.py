"""The OCP MX quantiser against an independent, slow, scalar reference of the OCP v1.0
algorithm (docs/FORMATS.md "Quantising a block"), written here with math.frexp and Fraction.

Element value sets come from ml_dtypes (int8: code / 64), never from golden; emax_elem and
the element facts are the published ones.
"""

import bisect
import functools
import math
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st
from hypothesis.extra.numpy import arrays
from support.golden import tiled_arrays

from mxhw import golden

# block format: element ml_dtype (None: int8), element bits, emax_elem, bias, man bits
OCP = {
    "mxfp8_e4m3": (ml_dtypes.float8_e4m3fn, 8, 8, 7, 3),
    "mxfp8_e5m2": (ml_dtypes.float8_e5m2, 8, 15, 15, 2),
    "mxfp6_e3m2": (ml_dtypes.float6_e3m2fn, 6, 4, 3, 2),
    "mxfp6_e2m3": (ml_dtypes.float6_e2m3fn, 6, 2, 1, 3),
    "mxfp4_e2m1": (ml_dtypes.float4_e2m1fn, 4, 2, 1, 1),
    "mxint8": (None, 8, 0, None, None),
}
NAMES = list(OCP)
K = 32


# ---- the reference ----------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def elem_values(fmt):
    """Sorted finite element values (Fraction) and their codes (+0 for zero; int8 without
    the -128 code, which the quantiser never produces)."""
    dt, bits, *_ = OCP[fmt]
    codes = np.arange(1 << bits, dtype=np.uint8)
    if dt is None:
        vals = codes.view(np.int8).astype(np.float64) / 64
    else:
        vals = codes.view(dt).astype(np.float64)
    table = {}
    for c, v in zip(codes.tolist(), vals.tolist()):
        if not math.isfinite(v) or (dt is None and c == 128):
            continue
        table.setdefault(Fraction(v), c)  # +0 comes before -0
    items = sorted(table.items())
    return [v for v, _ in items], [c for _, c in items]


def ref_elem(fmt, y: Fraction, negative: bool) -> int:
    """quantize_elem: RNE (ties to the even code), saturating to +-max, signed zero."""
    vals, codes = elem_values(fmt)
    j = bisect.bisect_left(vals, y)
    if j == len(vals):
        i = j - 1
    elif vals[j] == y or j == 0:
        i = j
    else:
        dlo, dhi = y - vals[j - 1], vals[j] - y
        if dlo != dhi:
            i = j - 1 if dlo < dhi else j
        else:
            i = j - 1 if codes[j - 1] % 2 == 0 else j
    c = codes[i]
    if vals[i] == 0 and negative and OCP[fmt][0] is not None:
        c = 1 << (OCP[fmt][1] - 1)
    return c


def ref_block(fmt, block):
    """(scale code, element codes) of one block (a list of Python floats), OCP v1.0."""
    if not all(math.isfinite(v) for v in block):
        return 0xFF, [0] * len(block)
    amax = max(abs(v) for v in block)
    if amax == 0:
        shared_exp = -127
    else:
        shared_exp = math.frexp(amax)[1] - 1 - OCP[fmt][2]   # floor(log2 amax) - emax
        shared_exp = min(max(shared_exp, -127), 127)
    X = Fraction(2) ** shared_exp
    return shared_exp + 127, [ref_elem(fmt, Fraction(v) / X, math.copysign(1, v) < 0)
                              for v in block]


def ref_quantize(x, fmt, axis):
    """Element codes (shape of x) and scale codes (axis length ceil(n / 32)), per fibre."""
    x = np.asarray(x, dtype=np.float64)
    xm = np.moveaxis(x, axis, -1)
    n = xm.shape[-1]
    nb = -(-n // K)
    el = np.zeros(xm.shape, dtype=np.int64)
    sc = np.zeros(xm.shape[:-1] + (nb,), dtype=np.int64)
    for idx in np.ndindex(xm.shape[:-1]):
        fibre = xm[idx].tolist()
        for b in range(nb):
            s, codes = ref_block(fmt, fibre[b * K:(b + 1) * K])
            sc[idx + (b,)] = s
            el[idx + (slice(b * K, b * K + len(codes)),)] = codes
    return np.moveaxis(el, -1, axis), np.moveaxis(sc, -1, axis)


def ref_values(fmt, codes):
    dt, bits, *_ = OCP[fmt]
    c = np.asarray(codes).astype(np.uint8)
    if dt is None:
        return c.view(np.int8).astype(np.float64) / 64
    return c.view(dt).astype(np.float64)


def assert_matches_reference(x, fmt, axis=-1):
    q = golden.quantize(x, fmt, axis=axis)
    xa = np.asarray(x, dtype=np.float64)
    el, sc = ref_quantize(xa, fmt, axis % xa.ndim)
    assert q.elements.shape == xa.shape and q.elements.dtype == np.int64
    assert q.scales.shape == sc.shape and q.scales.dtype == np.int64
    np.testing.assert_array_equal(q.scales, sc)
    np.testing.assert_array_equal(q.elements, el)
    return q


# ---- strategies ---------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _grid(fmt):
    """Element values and midpoints between neighbours (floats): where rounding is decided."""
    vals = [float(v) for v in elem_values(fmt)[0]]
    return sorted(set(vals + [(a + b) / 2 for a, b in zip(vals, vals[1:])]))


EXPONENTS = st.one_of(
    st.integers(-8, 8),                # ordinary
    st.integers(-150, -115),           # around the smallest scale 2**-127
    st.integers(115, 150),             # around the largest scale 2**127
    st.integers(-1080, -1020),         # float64 subnormals
    st.integers(-1074, 1023),          # anything
)


def _ldexp(m, e):
    """math.ldexp that saturates to the largest float instead of raising."""
    try:
        return math.ldexp(m, e)
    except OverflowError:
        return math.copysign(np.finfo(np.float64).max, m)


@st.composite
def adversarial_block(draw, fmt, min_size=1, max_size=70):
    """A list of floats sharing a base exponent: grid points and midpoints of the element
    format (ties), float neighbours of them, outliers, zeros, arbitrary floats."""
    k = draw(EXPONENTS)
    grid = _grid(fmt)

    def one(kind):
        if kind == "grid":
            v = _ldexp(draw(st.sampled_from(grid)), k)
            for _ in range(draw(st.integers(0, 2))):
                v = math.nextafter(v, draw(st.sampled_from([math.inf, -math.inf])))
        elif kind == "outlier":
            v = _ldexp(draw(st.floats(1, 2)), k + draw(st.integers(3, 40)))
        elif kind == "zero":
            v = draw(st.sampled_from([0.0, -0.0]))
        elif kind == "f32":
            v = draw(st.floats(width=32, allow_nan=False, allow_infinity=False))
        else:
            v = draw(st.floats(allow_nan=False, allow_infinity=False))
        if math.isinf(v):
            v = math.copysign(np.finfo(np.float64).max, v)
        return v * draw(st.sampled_from([1.0, -1.0]))

    kinds = st.sampled_from(["grid"] * 6 + ["outlier", "zero", "zero", "f32", "f64"])
    n = draw(st.integers(min_size, max_size))
    return [one(draw(kinds)) for _ in range(n)]


@st.composite
def adversarial_array(draw, shape, fmt):
    """Tensors: a per-tensor base exponent, then per value a grid point (a tie or exact),
    noise, a zero or an outlier, of either sign; up to 64 values are drawn and repeated
    cyclically through a larger tensor (in C order, so blocks along every axis mix them)."""
    k = draw(st.one_of(st.integers(-8, 8), st.integers(-150, -115), st.integers(115, 150),
                       st.integers(-1070, -1030)))
    value = st.one_of(
        st.sampled_from(_grid(fmt)).map(lambda g: _ldexp(g, k)),
        st.just(0.0),
        st.floats(-4, 4).map(lambda m: _ldexp(m, k)),
        st.tuples(st.floats(1, 2), st.integers(3, 29)).map(lambda t: _ldexp(t[0], k + t[1])))
    signed = st.tuples(value, st.sampled_from([1.0, -1.0])).map(lambda t: t[0] * t[1])
    n = math.prod(shape)
    core = draw(st.lists(signed, min_size=min(n, 64), max_size=min(n, 64)))
    return np.resize(np.array(core, dtype=np.float64), n).reshape(shape)


@st.composite
def _shapes(draw, max_values=400, max_dim=70):
    """1-D to 4-D shapes of at most ``max_values`` values, any dimension may be the long one."""
    ndim = draw(st.integers(1, 4))
    dims, budget = [], max_values
    for _ in range(ndim):
        d = draw(st.integers(1, max(1, min(max_dim, budget))))
        dims.append(d)
        budget //= d
    return draw(st.permutations(dims))


SHAPES = _shapes()


# ---- bit-exactness against the reference --------------------------------------------------

@pytest.mark.parametrize("fmt", NAMES)
def test_blocks_match_ocp_reference(fmt):
    @given(adversarial_block(fmt))
    def check(block):
        assert_matches_reference(np.array(block), fmt)
    check()


@pytest.mark.parametrize("fmt", NAMES)
def test_float32_blocks_match_ocp_reference(fmt):
    @given(adversarial_block(fmt))
    def check(block):
        with np.errstate(over="ignore"):
            x = np.array(block, dtype=np.float32)
        x = np.where(np.isinf(x), np.sign(x) * np.finfo(np.float32).max, x).astype(np.float32)
        assert_matches_reference(x, fmt)
    check()


@pytest.mark.parametrize("fmt", NAMES)
def test_tensors_any_axis_match_ocp_reference(fmt):
    @given(SHAPES, st.data(), st.sampled_from([np.float64, np.float32]))
    def check(shape, data, dtype):
        axis = data.draw(st.integers(-len(shape), len(shape) - 1))
        with np.errstate(over="ignore"):
            x = data.draw(adversarial_array(tuple(shape), fmt)).astype(dtype)
        x = np.where(np.isinf(x), 0.0, x).astype(dtype)
        q = assert_matches_reference(x, fmt, axis)
        assert q.axis == axis % len(shape)
        assert q.shape == tuple(shape)
        expect = list(shape)
        expect[q.axis] = -(-shape[q.axis] // K)
        assert q.scales.shape == tuple(expect)
        assert q.dequantize().shape == tuple(shape)
    check()


@pytest.mark.parametrize("fmt", NAMES)
def test_fixed_adversarial_cases(fmt):
    fmax = float(ref_values(fmt, [elem_values(fmt)[1][-1]])[0])
    tiny = 5e-324
    cases = [
        np.zeros(32), np.full(32, -0.0), np.zeros(100), np.zeros(1),
        np.array([1.0]), np.array([-3.0] + [0.0] * 40),
        np.array([tiny, -tiny, 2 * tiny]), np.array([1e308, -1e308, 1.0, 1e-300]),
        np.array([fmax * 2.0**-127, fmax * 2.0**-128, 2.0**-140]),       # below the scale range
        np.array([fmax * 2.0**127, fmax * 2.0**128, 1.0]),              # above it
        np.linspace(-1, 1, 33), np.geomspace(1e-30, 1e30, 70),
        np.array([2.0**k for k in range(-60, 4)]),                      # outlier vs subnormals
        np.array(_grid(fmt) * 3)[:96],
    ]
    for x in cases:
        assert_matches_reference(x, fmt)


def test_all_zero_block_smallest_scale():
    q = golden.quantize(np.zeros((2, 64)), "mxfp8_e4m3")
    assert q.scales.tolist() == [[0, 0], [0, 0]]
    assert (q.elements == 0).all()


def test_e4m3_top_of_range_saturates():
    # the floor puts the scaled maximum in [256, 512); [448, 512) saturates to 448 (0x7E)
    x = np.array([500.0, 480.0, 464.0, 460.0, 448.0, -511.0] + [1.0] * 26)
    q = golden.quantize(x, "mxfp8_e4m3")
    assert q.scales.tolist() == [127]
    assert q.elements[:6].tolist() == [0x7E, 0x7E, 0x7E, 0x7E, 0x7E, 0xFE]
    assert q.elements[6] == 0x38   # 1.0


def test_fp4_example_block():
    # amax 5 -> floor(log2 5) = 2 = emax: scale 2**0; 5 and 2.5 are ties
    x = np.array([5.0, 2.5, -0.25, 0.75, -7.0, 0.0] + [0.0] * 26)
    q = golden.quantize(x, "mxfp4")
    assert q.scales.tolist() == [127]
    assert ref_values("mxfp4_e2m1", q.elements[:6]).tolist() == [4.0, 2.0, -0.0, 1.0, -6.0, 0.0]


# ---- NaN / Inf -----------------------------------------------------------------------

@pytest.mark.parametrize("fmt", NAMES)
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nonfinite_block_gets_nan_scale(fmt, bad):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 70))
    x[1, 40] = bad
    q = golden.quantize(x, fmt)
    el, sc = ref_quantize(x, fmt, 1)
    np.testing.assert_array_equal(q.scales, sc)
    np.testing.assert_array_equal(q.elements, el)
    assert q.scales[1, 1] == 0xFF and (q.elements[1, 32:64] == 0).all()
    assert (np.delete(q.scales.ravel(), 4) != 0xFF).all()
    d = q.dequantize()
    assert np.isnan(d[1, 32:64]).all()
    assert not np.isnan(np.delete(d, np.s_[32:64], axis=1)).any()
    assert not np.isnan(d[[0, 2]]).any()


# ---- error bound -----------------------------------------------------------------------

def _half_ulp(fmt, y):
    """Half an element ulp at scaled magnitude |y| (published bias / mantissa widths)."""
    _, _, emax, bias, man = OCP[fmt]
    if bias is None:
        return np.full(y.shape, 2.0**-7)
    e = np.floor(np.log2(np.where(y == 0, 1.0, np.abs(y))))
    e = np.maximum(e, 1 - bias)
    return np.ldexp(1.0, (e - man - 1).astype(int))


@pytest.mark.parametrize("fmt", NAMES)
def test_error_bound(fmt):
    fmax = float(ref_values(fmt, [elem_values(fmt)[1][-1]])[0])

    @given(tiled_arrays(4, 96, lo_abs=2.0**-30, hi_abs=4.0),
           arrays(np.int64, (4, 1), elements=st.integers(-40, 39)),
           st.sampled_from([np.float64, np.float32]))
    def check(x, e, dtype):
        x = np.ldexp(x, e).astype(dtype).astype(np.float64)
        q = golden.quantize(x, fmt)
        X = np.repeat(np.ldexp(1.0, q.scales - 127), K, axis=1)
        y = x / X
        err = np.abs(q.dequantize() - x)
        sat = np.abs(y) > fmax
        assert np.all(err[~sat] <= _half_ulp(fmt, y[~sat]) * X[~sat])
        assert np.all(np.abs(q.dequantize()[sat]) == fmax * X[sat])
    check()


# ---- inputs: NumPy dtypes and torch ---------------------------------------------------------

@pytest.mark.parametrize("fmt", NAMES)
def test_torch_and_numpy_inputs_agree(fmt):
    g = torch.Generator().manual_seed(7)
    base = torch.randn(3, 5, 40, generator=g, dtype=torch.float64) * 3
    base[0, 0, :] = 0
    base[1, 2, 3] = 1e-8
    for dt in (torch.float32, torch.float16, torch.bfloat16, torch.float64):
        t = base.to(dt)
        x64 = t.to(torch.float64).numpy()
        ref = golden.quantize(x64, fmt, axis=-1)
        for inp in (t, x64.astype(_np_dtype(dt))):
            q = golden.quantize(inp, fmt, axis=-1)
            np.testing.assert_array_equal(q.elements, ref.elements)
            np.testing.assert_array_equal(q.scales, ref.scales)
    el, sc = ref_quantize(base.to(torch.bfloat16).to(torch.float64).numpy(), fmt, 2)
    q = golden.quantize(base.to(torch.bfloat16), fmt)
    np.testing.assert_array_equal(q.elements, el)
    np.testing.assert_array_equal(q.scales, sc)


def _np_dtype(dt):
    return {torch.float32: np.float32, torch.float16: np.float16,
            torch.bfloat16: ml_dtypes.bfloat16, torch.float64: np.float64}[dt]


def test_torch_axis_and_list_input():
    t = torch.arange(-48, 48, dtype=torch.float32).reshape(2, 48).T.contiguous()
    q = golden.quantize(t, "mxint8", axis=0)
    el, sc = ref_quantize(t.numpy(), "mxint8", 0)
    np.testing.assert_array_equal(q.elements, el)
    np.testing.assert_array_equal(q.scales, sc)
    q2 = golden.quantize(t.numpy().tolist(), "mxint8", axis=0)
    np.testing.assert_array_equal(q2.elements, el)


# ---- the MXArray ---------------------------------------------------------------------------

def test_mxarray_values():
    x = np.array([[6.0, -3.0, 0.5] + [0.0] * 37])
    q = golden.quantize(x, "mxfp4")
    assert q.fmt is golden.formats.get("mxfp4_e2m1")
    assert q.modes is None
    assert q.scale_values().tolist() == [[1.0, 2.0**-127]]
    np.testing.assert_array_equal(q.element_values(), x)
    np.testing.assert_array_equal(q.dequantize(), x)


def test_dequantize_is_scale_times_element():
    rng = np.random.default_rng(3)
    for fmt in NAMES:
        x = rng.standard_normal((5, 77)) * 1e3
        q = golden.quantize(x, fmt, axis=1)
        X = np.repeat(np.ldexp(1.0, q.scales - 127), K, axis=1)[:, :77]
        np.testing.assert_array_equal(q.dequantize(), X * ref_values(fmt, q.elements))


# ---- bad arguments ---------------------------------------------------------------------------

def test_quantize_bad_arguments():
    x = np.ones((2, 3))
    with pytest.raises(TypeError, match=r"quantize needs a block format, not the element format "
                                        r"'fp4_e2m1'; block formats: .*mxfp4"):
        golden.quantize(x, "fp4_e2m1")
    with pytest.raises(KeyError, match=r"unknown format 'mxfp5'; known formats:"):
        golden.quantize(x, "mxfp5")
    with pytest.raises(ValueError, match=r"cannot quantise a 0-d tensor; give at least one axis"):
        golden.quantize(np.float64(1.0), "mxfp4")
    with pytest.raises(ValueError, match=r"axis 2 is out of range for a 2-D tensor"):
        golden.quantize(x, "mxfp4", axis=2)
    with pytest.raises(ValueError, match=r"axis -3 is out of range for a 2-D tensor"):
        golden.quantize(x, "mxfp4", axis=-3)
    with pytest.raises(TypeError, match=r"axis must be an integer, not 1.0"):
        golden.quantize(x, "mxfp4", axis=1.0)
    with pytest.raises(TypeError, match=r"cannot quantise an array of dtype <U1"):
        golden.quantize(np.array(["a", "b"]), "mxfp4")


def test_integer_inputs_accepted():
    q = golden.quantize(np.arange(-16, 16), "mxint8")
    el, sc = ref_quantize(np.arange(-16, 16), "mxint8", 0)
    np.testing.assert_array_equal(q.elements, el)
