"""Per-tensor FP8 with an FP32 scale (fp8_e4m3_pt, fp8_e5m2_pt) and the binary32 scale kind.

Expectations come from ml_dtypes (element codes), struct (binary32 bit patterns) and exact
rational arithmetic (Fractions) written here, never from the code under test.
"""
import struct
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

from mxhw import golden
from mxhw.golden import formats as F

PT = {"fp8_e4m3_pt": (ml_dtypes.float8_e4m3fn, 448, 0x7E),
      "fp8_e5m2_pt": (ml_dtypes.float8_e5m2, 57344, 0x7B)}
B32 = F.BINARY32
F32_MAX = float(np.finfo(np.float32).max)


# ---- independent exact references -------------------------------------------------------

def _bits32(v) -> int:
    return struct.unpack("<I", struct.pack("<f", v))[0]


def _from_bits32(c) -> float:
    return struct.unpack("<f", struct.pack("<I", c))[0]


def _rne32(q: Fraction) -> int:
    """Bit pattern of the float32 nearest to the rational ``q`` (ties to the even pattern);
    ``q`` within the finite float32 range."""
    f = np.float32(float(q))  # within an ulp or so; settle by exact comparison
    with np.errstate(over="ignore"):
        cands = {np.float32(f), np.nextafter(f, np.float32(np.inf)),
                 np.nextafter(f, np.float32(-np.inf))}
    cands = [c for c in cands if np.isfinite(c)]
    best = min(cands, key=lambda c: (abs(Fraction(float(c)) - q), _bits32(float(c)) & 1))
    if best == 0:
        return 0x80000000 if q < 0 else 0
    return _bits32(float(best))


def _rne_elem(q: Fraction, elem, neg_zero: bool) -> int:
    """Code of the RNE (ties to the even code), saturating conversion of the rational ``q``
    to the element format, by exact nearest search over its finite values."""
    vals = sorted({Fraction(float(v)) for v in elem.table if np.isfinite(v)})
    if q >= vals[-1]:
        g = vals[-1]
    elif q <= vals[0]:
        g = vals[0]
    else:
        d = min(abs(v - q) for v in vals)
        near = [v for v in vals if abs(v - q) == d]
        codes = [_code_of(elem, v, q < 0 or neg_zero) for v in near]
        return min(codes, key=lambda c: (c & 1, c))
    return _code_of(elem, g, q < 0)


def _code_of(elem, v, neg):
    if v == 0:
        return 1 << (elem.bits - 1) if neg else 0
    return int(np.flatnonzero(elem.table == float(v))[0])


# ---- descriptors -------------------------------------------------------------------------

@pytest.mark.parametrize("name", PT)
def test_descriptor(name):
    f = F.get(name)
    assert name in F.names() and name in F.block_names()
    assert isinstance(f, golden.BlockFormat)
    assert f.per_tensor and f.block is None and f.block_size is None
    assert f.scale is B32 and f.scale_rule == "absmax" and f.rounding == "rne"
    assert f.element is F.get(name[:-3]) and f.element.max_normal == PT[name][1]
    assert f.bits_per_value_for(1024) == 8 + 32 / 1024
    assert f.bits_per_value_for(1) == 40
    with pytest.raises(ValueError, match=rf"^{name} has one scale per tensor; its bits per "
                                         r"value depend on the tensor size: use "
                                         r"bits_per_value_for\(n\)$"):
        f.bits_per_value
    with pytest.raises(ValueError, match=r"^n must be >= 1, not 0$"):
        f.bits_per_value_for(0)
    # the binary32 scale is a descriptor, deliberately not a registered element name
    assert "fp32" not in F.names()


@pytest.mark.parametrize("name", PT)
def test_element_every_code_vs_ml_dtypes(name):
    ml, vmax, top = PT[name]
    e = F.get(name).element
    want = np.arange(256, dtype=np.uint8).view(ml).astype(np.float64)
    got = e.decode(np.arange(256))
    assert np.array_equal(np.isnan(got), np.isnan(want))
    fin = ~np.isnan(want)
    assert np.array_equal(got[fin], want[fin])
    assert np.array_equal(np.signbit(got[fin]), np.signbit(want[fin]))
    # encode round trip of every non-NaN code
    codes = np.flatnonzero(np.isfinite(want))
    assert np.array_equal(e.encode(want[codes]), codes)
    # saturation (OCP MX conversion): beyond max and +-Inf become +-max, never Inf/NaN
    big = np.array([vmax * 1.2, np.inf, -vmax * 4, -np.inf])
    assert e.encode(big).tolist() == [top, top, top | 0x80, top | 0x80]


@pytest.mark.parametrize("name", PT)
@given(st.lists(st.floats(-1e4, 1e4, width=32), min_size=1, max_size=64))
def test_element_encode_vs_ml_dtypes(name, vals):
    ml, vmax, _ = PT[name]
    x = np.array(vals, dtype=np.float32)
    x = x[np.abs(x) <= vmax]  # ml_dtypes' casts do not saturate
    e = F.get(name).element
    want = x.astype(ml).view(np.uint8).astype(np.int64)
    assert np.array_equal(e.encode(x), want)


# ---- the binary32 scale kind -------------------------------------------------------------

@given(st.integers(0, 2**32 - 1))
def test_binary32_decode_vs_struct(code):
    got = float(B32.decode(np.array([code]))[0])
    want = _from_bits32(code)
    if want != want:
        assert got != got
    else:
        assert got == want and np.signbit(got) == np.signbit(want)
    assert float(golden.decode(B32, [code])[0]) == got or got != got


@given(st.floats(-F32_MAX, F32_MAX, allow_nan=False))
def test_binary32_encode_is_rne(v):
    code = int(B32.encode([v])[0])
    assert code == _rne32(Fraction(v)) or (v == 0 and code == _bits32(v))
    # and struct's double -> float packing agrees (same value, independent route)
    assert code == _bits32(v)


def test_binary32_specials_and_saturation():
    ulp_top = 2.0 ** (127 - 23)
    over = F32_MAX + ulp_top / 2  # a tie between max (odd) and 2**128: IEEE rounds to Inf
    below = np.nextafter(over, 0.0)
    assert B32.encode([over, -over, np.inf, -np.inf]).tolist() == [
        0x7F7FFFFF, 0xFF7FFFFF, 0x7F7FFFFF, 0xFF7FFFFF]
    assert B32.encode([over, -np.inf, below], saturate=False).tolist() == [
        0x7F800000, 0xFF800000, 0x7F7FFFFF]
    assert B32.encode([np.nan, -np.nan, -0.0, 0.0, 2.0**-150, 2.0**-149 * 1.5]).tolist() == [
        0x7FC00000, 0xFFC00000, 0x80000000, 0, 0, 2]  # 2**-150 ties to even (0)
    assert B32.max_normal == F32_MAX and B32.min_value == -F32_MAX
    assert (B32.min_subnormal, B32.min_normal, B32.emax) == (2.0**-149, 2.0**-126, 127)
    assert (B32.nan_code, B32.inf_code, B32.sign_bit, B32.bits) == (0x7FC00000, 0x7F800000,
                                                                   31, 32)
    assert B32.signed and B32.has_nan and B32.has_inf and B32.kind == "binary32"
    assert np.isnan(B32.decode([0x7FC00000, 0xFF800001])).all()
    assert B32.decode([0x7F800000, 0xFF800000]).tolist() == [np.inf, -np.inf]


def test_binary32_errors():
    with pytest.raises(ValueError, match=r"^fp32 encodes with rounding 'rne' only, not 'rtz'$"):
        B32.encode([1.0], rounding="rtz")
    with pytest.raises(ValueError, match=r"^fp32 has 2\*\*32 codes and no decode table; use "
                                         r"decode\(\) / encode\(\)$"):
        B32.table
    with pytest.raises(ValueError, match=r"^fp32 codes must lie in \[0, 4294967295\]"):
        B32.decode([2**32])
    with pytest.raises(TypeError, match=r"^codes must be integers, not float64$"):
        B32.decode([1.0])
    e = F.get("fp8_e4m3")
    with pytest.raises(ValueError, match=r"^a binary32 scale needs scale_rule 'absmax', not "
                                         r"'minmax'$"):
        golden.BlockFormat("x", (e,), B32, block=None, scale_rule="minmax", zero_point=e)
    with pytest.raises(ValueError, match=r"^scale_rule 'ocp_floor' needs a power-of-two scale"):
        golden.BlockFormat("x", (e,), B32, block=None)


# ---- the scale rule ----------------------------------------------------------------------

_E30 = float(np.float32(1e30))
_f32 = st.floats(-_E30, _E30, width=32, allow_subnormal=True)


@pytest.mark.parametrize("name", PT)
@given(st.lists(_f32, min_size=1, max_size=40))
def test_scale_rule_float32_inputs(name, vals):
    """float32 inputs: the scale is the correctly rounded float32 of amax / max_elem."""
    x = np.array(vals, dtype=np.float32)
    vmax = PT[name][1]
    amax = Fraction(float(np.abs(x).max()))
    if amax == 0:
        assert golden.quantize(x, name).scales.tolist() == [0x3F800000]  # scale 1.0
        return
    assume(amax / vmax > Fraction(2) ** -149)  # else the scale underflows (tested below)
    q = golden.quantize(x, name)
    assert q.scales.shape == (1,)
    assert int(q.scales[0]) == _rne32(amax / vmax)


@pytest.mark.parametrize("name", PT)
@given(st.lists(st.floats(-1e200, 1e200, allow_nan=False), min_size=1, max_size=20))
def test_scale_rule_float64_inputs(name, vals):
    """float64 inputs: the float64 quotient (Python's correctly rounded division), then RNE
    to float32, saturating."""
    x = np.array(vals)
    vmax = PT[name][1]
    amax = float(np.abs(x).max())
    assume(amax / vmax >= 2.0**-140)
    q = golden.quantize(x, name)
    quot = amax / vmax
    want = 0x7F7FFFFF if quot > F32_MAX else _rne32(Fraction(quot))  # saturating
    assert int(q.scales[0]) == want


def test_all_zero_tensor():
    q = golden.quantize(np.array([[0.0, -0.0], [0.0, 0.0]]), "fp8_e4m3_pt")
    assert q.scales.tolist() == [[0x3F800000]]
    assert q.elements.tolist() == [[0, 0x80], [0, 0]]
    d = q.dequantize()
    assert (d == 0).all() and np.signbit(d).tolist() == [[False, True], [False, False]]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_tensor_gets_nan_scale(bad):
    q = golden.quantize(np.array([1.0, bad, 3.0]), "fp8_e5m2_pt")
    assert q.scales.tolist() == [0x7FC00000] and q.elements.tolist() == [0, 0, 0]
    assert np.isnan(q.dequantize()).all()


def test_scale_underflow_and_overflow():
    with pytest.raises(ValueError, match=r"^fp8_e4m3_pt: a block scale underflowed to zero "
                                         r"in fp32$"):
        golden.quantize(np.array([1e-50, 0.0]), "fp8_e4m3_pt")
    q = golden.quantize(np.array([1e300, -1.0]), "fp8_e4m3_pt")
    assert q.scales.tolist() == [0x7F7FFFFF]
    assert q.elements.tolist()[0] == 0x7E  # 1e300 / max_float32 saturates to 448


# ---- elements: one RNE rounding of the exact quotient -----------------------------------

@pytest.mark.parametrize("name", PT)
@given(s=st.floats(float(np.float32(1e-30)), _E30, width=32), data=st.data())
def test_elements_round_exact_quotient(name, s, data):
    """Elements equal an exact RNE of x / scale, also for x next to scale * (a midpoint):
    the float64 quotient never lands on a rounding midpoint the exact one misses."""
    vmax = PT[name][1]
    e = F.get(name).element
    vals = e.finite_values
    mids = (vals[:-1] + vals[1:]) / 2
    pts = data.draw(st.lists(st.sampled_from(np.concatenate([vals, mids]).tolist()),
                             min_size=1, max_size=12))
    nudge = data.draw(st.lists(st.sampled_from([-1, 0, 1]), min_size=len(pts),
                               max_size=len(pts)))
    xs = [vmax * s]  # fixes the scale at exactly s
    for t, n in zip(pts, nudge):
        if abs(t) == vmax:
            n = 0  # a nudge past +-max * s would move the scale
        v = t * s  # exact in float64 (few bits times 24 bits)
        xs.append(np.nextafter(v, n * np.inf) if n else v)
    x = np.array(xs, dtype=np.float64)
    q = golden.quantize(x, name)
    assert float(q.scale_values()[0]) == s
    for xi, c in zip(x, q.elements):
        assert c == _rne_elem(Fraction(float(xi)) / Fraction(s), e, np.signbit(xi)), xi


@pytest.mark.parametrize("name", PT)
def test_dequantize_is_exact_product(name):
    x = np.random.default_rng(1).standard_t(3, (8, 16))
    q = golden.quantize(x, name)
    s = Fraction(float(q.scale_values()[0, 0]))
    el = q.fmt.element.decode(q.elements)
    d = q.dequantize()
    assert all(Fraction(float(a)) == s * Fraction(float(b)) for a, b in zip(d.ravel(), el.ravel()))
    # the quantisation error is at most half an element step at the largest magnitude
    assert np.abs(d - x).max() <= float(s) * PT[name][1] / 8


# ---- API: axis, torch, scaling -----------------------------------------------------------

def test_axis_has_no_effect():
    x = np.random.default_rng(2).standard_normal((3, 4, 5))
    qs = [golden.quantize(x, "fp8_e4m3_pt", axis=a) for a in (0, 1, -1)]
    for q in qs:
        assert q.scales.shape == (1, 1, 1) and q.elements.shape == x.shape
        assert np.array_equal(q.elements, qs[0].elements)
        assert np.array_equal(q.scales, qs[0].scales)
    assert [q.axis for q in qs] == [0, 1, 2]


@pytest.mark.parametrize("name", PT)
def test_torch_inputs(name):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(4).laplace(size=(6, 10))
    for dt in (torch.float64, torch.float32, torch.float16, torch.bfloat16):
        t = torch.tensor(x).to(dt)
        ref = t.to(torch.float64).numpy()
        a, b = golden.quantize(t, name), golden.quantize(ref, name)
        assert np.array_equal(a.elements, b.elements) and np.array_equal(a.scales, b.scales)
        assert np.array_equal(a.dequantize(), b.dequantize())


@pytest.mark.parametrize("name", PT)
@given(vals=st.lists(st.floats(-1e6, 1e6, width=32), min_size=1, max_size=32),
       k=st.integers(-40, 40))
def test_power_of_two_moves_only_the_scale(name, vals, k):
    x = np.array(vals, dtype=np.float64)
    assume(np.abs(x).max() >= 1e-6)
    a, b = golden.quantize(x, name), golden.quantize(np.ldexp(x, k), name)
    assert np.array_equal(a.elements, b.elements)
    assert int(b.scales[0]) - int(a.scales[0]) == k << 23  # only the exponent field moves
    assert np.array_equal(np.ldexp(a.dequantize(), k), b.dequantize())


def test_quantize_errors():
    with pytest.raises(ValueError, match=r"^fp8_e4m3_pt has one scale per tensor; cannot "
                                         r"quantise an empty tensor of shape \(0, 3\)$"):
        golden.quantize(np.zeros((0, 3)), "fp8_e4m3_pt")
    with pytest.raises(ValueError, match=r"^cannot quantise a 0-d tensor"):
        golden.quantize(np.float64(1.0), "fp8_e5m2_pt")
    with pytest.raises(ValueError, match=r"^axis 2 is out of range for a 2-D tensor$"):
        golden.quantize(np.ones((2, 2)), "fp8_e5m2_pt", axis=2)
    with pytest.raises(TypeError, match=r"^quantize needs a block format, not the element "
                                        r"format 'fp8_e4m3'"):
        golden.quantize(np.ones(2), "fp8_e4m3")


# ---- arithmetic --------------------------------------------------------------------------

def _exact_matrix(qa, qb):
    da, db = qa.dequantize(), qb.dequantize()
    M, K = da.shape
    N = db.shape[1]
    return [[sum(Fraction(float(da[i, k])) * Fraction(float(db[k, j])) for k in range(K))
             for j in range(N)] for i in range(M)]


@pytest.mark.parametrize("fb", ["fp8_e5m2_pt", "fp8_e4m3_pt", "mxfp8_e4m3", "mxfp4"])
@pytest.mark.parametrize("seed", range(3))
def test_gemm_exact(fb, seed):
    rng = np.random.default_rng(seed)
    qa = golden.quantize(rng.standard_t(3, (3, 64)), "fp8_e4m3_pt", axis=1)
    qb = golden.quantize(rng.standard_normal((64, 4)) * 10.0 ** seed, fb, axis=0)
    c = golden.gemm(qa, qb, golden.EXACT)
    want = _exact_matrix(qa, qb)
    assert c.dtype == np.float32
    for i in range(3):
        for j in range(4):
            assert _bits32(float(c[i, j])) == _rne32(want[i][j])


def test_gemm_fp32_with_mx_blocks():
    rng = np.random.default_rng(7)
    qa = golden.quantize(rng.standard_normal((2, 96)), "fp8_e4m3_pt", axis=1)
    qb = golden.quantize(rng.standard_normal((96, 3)), "mxfp8_e5m2", axis=0)
    c = golden.gemm(qa, qb, golden.FP32)
    da, db = qa.dequantize(), qb.dequantize()
    for i in range(2):
        for j in range(3):
            acc = np.float32(0.0)
            for blk in range(3):  # per 32-block exact dot rounded to FP32, added in FP32
                ks = range(32 * blk, 32 * blk + 32)
                d = sum(Fraction(float(da[i, k])) * Fraction(float(db[k, j])) for k in ks)
                acc = np.float32(acc + np.float32(_from_bits32(_rne32(d))))
            assert c[i, j] == acc


def test_dot_and_nan():
    rng = np.random.default_rng(8)
    a = golden.quantize(rng.standard_normal(40), "fp8_e5m2_pt")
    b = golden.quantize(rng.standard_normal(40), "fp8_e4m3_pt")
    d = sum(Fraction(float(u)) * Fraction(float(v))
            for u, v in zip(a.dequantize(), b.dequantize()))
    assert _bits32(float(golden.dot(a, b))) == _rne32(d)
    n = golden.quantize(np.array([1.0, np.nan] * 20), "fp8_e5m2_pt")
    assert np.isnan(golden.dot(n, b))


def test_gemm_rejects_other_scales():
    rng = np.random.default_rng(9)
    qa = golden.quantize(rng.standard_normal((2, 128)), "int4_g128", axis=1)
    qb = golden.quantize(rng.standard_normal((128, 2)), "fp8_e4m3_pt", axis=0)
    with pytest.raises(ValueError, match=r"^exact arithmetic needs power-of-two or binary32 "
                                         r"scales; int4_g128 has fp16 scales \(dequantize\(\) "
                                         r"and use float arithmetic instead\)$"):
        golden.gemm(qa, qb)
