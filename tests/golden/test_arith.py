"""Reference arithmetic (golden.arith) against independent references written here:
an exact Fraction sum with our own float32 rounding, an explicit np.float32 loop in block
order, and a Python-int fixed-point loop. Element values come from ml_dtypes (int8: c/64)
and scales from the E8M0 definition 2**(code - 127), not from golden."""

import dataclasses
import math
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra.numpy import arrays

from mxhw import golden
from mxhw.golden import arith

ML = {
    "fp8_e4m3": ml_dtypes.float8_e4m3fn, "fp8_e5m2": ml_dtypes.float8_e5m2,
    "fp6_e3m2": ml_dtypes.float6_e3m2fn, "fp6_e2m3": ml_dtypes.float6_e2m3fn,
    "fp4_e2m1": ml_dtypes.float4_e2m1fn, "int8": None,
}
ELEM_OF = {"mxfp8_e4m3": "fp8_e4m3", "mxfp8_e5m2": "fp8_e5m2", "mxfp6_e3m2": "fp6_e3m2",
           "mxfp6_e2m3": "fp6_e2m3", "mxfp4_e2m1": "fp4_e2m1", "mxint8": "int8"}
BLOCKS = list(ELEM_OF)
K = 32


def ml_values(elem, codes):
    c = np.asarray(codes).astype(np.uint8)
    if ML[elem] is None:
        return c.view(np.int8).astype(np.float64) / 64
    return c.view(ML[elem]).astype(np.float64)


def round_f32(q: Fraction) -> float:
    """Our own correct rounding of an exact rational to float32: nearest, ties to even,
    subnormals, overflow to +-Inf."""
    if q == 0:
        return 0.0
    neg = q < 0
    a = -q if neg else q
    e = a.numerator.bit_length() - a.denominator.bit_length()
    if a < Fraction(2) ** e:
        e -= 1                                  # now 2**e <= a < 2**(e+1)
    e = max(e, -126)                            # subnormal quantum below 2**-126
    quantum = Fraction(2) ** (e - 23)
    n = a / quantum
    fl = n.numerator // n.denominator
    r = n - fl
    if r > Fraction(1, 2) or (r == Fraction(1, 2) and fl % 2 == 1):
        fl += 1
    v = fl * quantum
    out = math.inf if v >= Fraction(2) ** 128 else float(v)
    return -out if neg else out


def ref_block_dots(a, b):
    """Exact Fraction block dots [m][n][j], None for a block with a NaN scale."""
    ea, eb = ELEM_OF[a.fmt.name], ELEM_OF[b.fmt.name]
    va, vb = ml_values(ea, a.elements), ml_values(eb, b.elements)
    M, Kt = a.shape
    N = b.shape[1]
    out = [[[None] * (Kt // K) for _ in range(N)] for _ in range(M)]
    for m in range(M):
        for n in range(N):
            for j in range(Kt // K):
                sa, sb = int(a.scales[m, j]), int(b.scales[j, n])
                if sa == 255 or sb == 255:
                    continue
                s = sum(Fraction(float(va[m, j * K + i])) * Fraction(float(vb[j * K + i, n]))
                        for i in range(K))
                out[m][n][j] = s * Fraction(2) ** (sa - 127 + sb - 127)
    return out


def ref_exact(d):
    return np.array([[math.nan if any(x is None for x in row) else round_f32(sum(row))
                      for row in r] for r in d], dtype=np.float32)


def ref_fp32(d):
    M, N = len(d), len(d[0])
    out = np.zeros((M, N), dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        for m in range(M):
            for n in range(N):
                acc = np.float32(0.0)
                for x in d[m][n]:
                    bd = np.float32(math.nan) if x is None else np.float32(round_f32(x))
                    acc = np.float32(acc + bd)
                out[m, n] = acc
    return out


def ref_fixed(d, width, frac, overflow, rounding):
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    M, N = len(d), len(d[0])
    regs = [[0] * N for _ in range(M)]
    vals = np.zeros((M, N))
    for m in range(M):
        for n in range(N):
            reg, nan = 0, False
            for x in d[m][n]:
                if x is None:
                    nan = True
                    continue
                y = x * Fraction(2) ** frac
                q = y.numerator // y.denominator      # floor
                if rounding == "rne":
                    r = y - q
                    if r > Fraction(1, 2) or (r == Fraction(1, 2) and q % 2):
                        q += 1
                reg += q
                if overflow == "saturate":
                    reg = min(max(reg, lo), hi)
                else:
                    reg = (reg - lo) % (1 << width) + lo
            regs[m][n] = reg
            vals[m, n] = math.nan if nan else float(Fraction(reg) * Fraction(2) ** -frac)
    return vals, regs


BITS = {"fp8_e4m3": 8, "fp8_e5m2": 8, "fp6_e3m2": 6, "fp6_e2m3": 6, "fp4_e2m1": 4, "int8": 8}


def finite_codes(elem):
    """The element codes with a finite value (by ml_dtypes), code 0 (the zero) first."""
    c = np.arange(1 << BITS[elem])
    return [int(x) for x in c[np.isfinite(ml_values(elem, c))]]


@st.composite
def mx_codes(draw, fmt, shape, axis):
    """An MXArray of ``fmt`` drawn as codes (blocks of K along ``axis``): finite element
    codes (failures shrink to zeros) and E8M0 scale codes within a drawn spread (0 to the
    whole range) of a drawn centre (shrinking to 2**0)."""
    spread = draw(st.sampled_from([0, 4, 30, 150]))
    centre = 127 + draw(st.integers(-127, 127))
    sshape = list(shape)
    sshape[axis] //= K
    scales = draw(arrays(np.int64, tuple(sshape), elements=st.integers(
        max(0, centre - spread), min(254, centre + spread))))
    elements = draw(arrays(np.int64, tuple(shape),
                           elements=st.sampled_from(finite_codes(ELEM_OF[fmt]))))
    return golden.MXArray(golden.formats.get(fmt), tuple(shape), axis, elements, scales)


@st.composite
def gemm_operands(draw):
    """(a, b): M x K and K x N operands of any two OCP block formats, K of 1..3 blocks."""
    M, N, Kt = draw(st.integers(1, 3)), draw(st.integers(1, 3)), K * draw(st.integers(1, 3))
    a = draw(mx_codes(draw(st.sampled_from(BLOCKS)), (M, Kt), 1))
    b = draw(mx_codes(draw(st.sampled_from(BLOCKS)), (Kt, N), 0))
    return a, b


GEMM_CASE = gemm_operands()


# ---- GEMM ---------------------------------------------------------------------------------

@given(GEMM_CASE)
def test_gemm_exact(case):
    a, b = case
    np.testing.assert_array_equal(golden.gemm(a, b, golden.EXACT), ref_exact(ref_block_dots(a, b)))


@given(GEMM_CASE)
def test_gemm_fp32_block_order(case):
    a, b = case
    got = golden.gemm(a, b, golden.FP32)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, ref_fp32(ref_block_dots(a, b)))


@given(GEMM_CASE, st.integers(4, 40), st.integers(-8, 24),
       st.sampled_from(["saturate", "wrap"]), st.sampled_from(["floor", "rne"]))
def test_gemm_fixed(case, width, frac, overflow, rounding):
    a, b = case
    acc = golden.fixed(width, frac, overflow=overflow, rounding=rounding)
    got, raw = golden.gemm(a, b, acc, return_raw=True)
    want, regs = ref_fixed(ref_block_dots(a, b), width, frac, overflow, rounding)
    np.testing.assert_array_equal(got, want)
    assert [[int(r) for r in row] for row in raw] == regs
    np.testing.assert_array_equal(golden.gemm(a, b, acc), want)


def test_fixed_saturate_and_wrap_examples():
    # one block of 32 ones times ones (int8 elements, scale 1): block dot = 32
    x = np.ones((1, 64))
    a = golden.quantize(x, "mxint8", axis=1)
    b = golden.quantize(x.T.copy(), "mxint8", axis=0)
    # 8-bit register, 2 fractional bits: each block adds 128 > 127
    v, raw = golden.gemm(a, b, golden.fixed(8, 2, "saturate"), return_raw=True)
    assert int(raw[0, 0]) == 127 and v[0, 0] == 31.75
    v, raw = golden.gemm(a, b, golden.fixed(8, 2, "wrap"), return_raw=True)
    assert int(raw[0, 0]) == 0 and v[0, 0] == 0.0          # 128 + 128 = 256 wraps to 0
    v = golden.gemm(a, b, golden.fixed(9, 2, "wrap"))
    assert v[0, 0] == -64.0                                # 256 wraps to -256
    assert golden.gemm(a, b, golden.fixed(10, 2))[0, 0] == 64.0


def test_fixed_rounding_examples():
    # block dot = 0.75 * 1 with a 1-bit fraction: floor -> 0.5, rne -> 1.0 (tie to even)
    xa = np.zeros((1, 32)); xa[0, 0] = 0.75
    xb = np.zeros((32, 1)); xb[0, 0] = 1.0
    a, b = golden.quantize(xa, "mxfp8_e4m3", axis=1), golden.quantize(xb, "mxfp8_e4m3", axis=0)
    assert golden.gemm(a, b, golden.fixed(8, 1, rounding="floor"))[0, 0] == 0.5
    assert golden.gemm(a, b, golden.fixed(8, 1, rounding="rne"))[0, 0] == 1.0
    xa[0, 0] = -0.75
    a = golden.quantize(xa, "mxfp8_e4m3", axis=1)
    assert golden.gemm(a, b, golden.fixed(8, 1, rounding="floor"))[0, 0] == -1.0
    assert golden.gemm(a, b, golden.fixed(8, 1, rounding="rne"))[0, 0] == -1.0


def test_fp32_order_matters():
    # blocks 2**30, 1, -2**30 (exact sum 1): FP32 in block order loses the 1
    xa = np.zeros((1, 96)); xa[0, [0, 32, 64]] = [2.0**30, 1.0, -2.0**30]
    xb = np.zeros((96, 1)); xb[[0, 32, 64], 0] = 1.0
    a, b = golden.quantize(xa, "mxfp8_e4m3", axis=1), golden.quantize(xb, "mxfp8_e4m3", axis=0)
    assert golden.gemm(a, b, golden.EXACT)[0, 0] == 1.0
    assert golden.gemm(a, b, golden.FP32)[0, 0] == 0.0


def test_nan_scale_propagates():
    rng = np.random.default_rng(5)
    xa = rng.standard_normal((3, 96))
    xa[1, 40] = np.nan
    xb = rng.standard_normal((96, 4))
    xb[70, 2] = np.inf
    a, b = golden.quantize(xa, "mxfp6_e2m3", axis=1), golden.quantize(xb, "mxfp4", axis=0)
    assert a.scales[1, 1] == 255 and b.scales[2, 2] == 255
    d = ref_block_dots(a, b)
    for acc in (golden.EXACT, golden.FP32, golden.fixed(32, 8)):
        c = golden.gemm(a, b, acc)
        nan = np.zeros((3, 4), bool)
        nan[1, :] = True
        nan[:, 2] = True
        np.testing.assert_array_equal(np.isnan(c), nan)
    np.testing.assert_array_equal(golden.gemm(a, b, golden.EXACT), ref_exact(d))
    np.testing.assert_array_equal(golden.gemm(a, b, golden.FP32), ref_fp32(d))


def test_nonfinite_element_codes_follow_ieee():
    # an E5M2 +Inf element code (0x7C) times a positive element gives +Inf; times 0 NaN
    xa = np.ones((2, 32))
    a = golden.quantize(xa, "mxfp8_e5m2", axis=1)
    el = a.elements.copy()
    el[:, 0] = 0x7C
    a = dataclasses.replace(a, elements=el)
    xb = np.zeros((32, 2)); xb[0, 0] = 1.0; xb[1, 1] = 1.0
    b = golden.quantize(xb, "mxfp8_e5m2", axis=0)
    c = golden.gemm(a, b, golden.EXACT)
    assert c[0, 0] == np.inf and np.isnan(c[0, 1])


def test_gemm_overflow_to_inf():
    x = np.full((1, 32), 2.0**200)
    a, b = golden.quantize(x, "mxfp8_e4m3", axis=1), golden.quantize(x.T.copy(), "mxfp8_e4m3", axis=0)
    for acc in (golden.EXACT, golden.FP32):
        assert golden.gemm(a, b, acc)[0, 0] == np.inf


def test_gemm_bad_arguments():
    x = np.ones((2, 64))
    a = golden.quantize(x, "mxfp4", axis=1)
    b = golden.quantize(x.T.copy(), "mxfp4", axis=0)
    with pytest.raises(TypeError, match=r"a must be an MXArray \(see golden.quantize\), not "
                                        r"<class 'numpy.ndarray'>"):
        golden.gemm(x, b)
    with pytest.raises(ValueError, match=r"b must be 2-D, not of shape \(64,\)"):
        golden.gemm(a, golden.quantize(np.ones(64), "mxfp4"))
    with pytest.raises(ValueError, match=r"inner dimensions differ: a is \(2, 64\), b is \(32, 2\)"):
        golden.gemm(a, golden.quantize(np.ones((32, 2)), "mxfp4", axis=0))
    with pytest.raises(ValueError, match=r"a must be quantised along its columns \(axis=1, the "
                                         r"K axis\)"):
        golden.gemm(golden.quantize(x, "mxfp4", axis=0), b)
    with pytest.raises(ValueError, match=r"b must be quantised along its rows \(axis=0, the K "
                                         r"axis\)"):
        golden.gemm(a, golden.quantize(x.T.copy(), "mxfp4", axis=1))
    with pytest.raises(ValueError, match=r"K = 40 must be a multiple of the block size 32"):
        golden.gemm(golden.quantize(np.ones((2, 40)), "mxfp4", axis=1),
                    golden.quantize(np.ones((40, 2)), "mxfp4", axis=0))
    with pytest.raises(TypeError, match=r"acc must be an Accumulation \(EXACT, FP32, "
                                        r"fixed\(...\)\), not 'exact'"):
        golden.gemm(a, b, "exact")


def test_accumulation_validation():
    with pytest.raises(ValueError, match=r"mode must be one of 'exact', 'fp32', 'fixed', not 'fp16'"):
        golden.Accumulation("fp16")
    with pytest.raises(ValueError, match=r"fixed accumulation: width must be >= 2, not 1"):
        golden.fixed(1, 0)
    with pytest.raises(TypeError, match=r"fixed accumulation: frac_bits must be an integer, "
                                        r"not 1.5"):
        golden.fixed(16, 1.5)
    with pytest.raises(ValueError, match=r"overflow must be one of 'saturate', 'wrap', not 'clip'"):
        golden.fixed(16, 4, overflow="clip")
    with pytest.raises(ValueError, match=r"rounding must be one of 'floor', 'rne', not 'ceil'"):
        golden.fixed(16, 4, rounding="ceil")
    with pytest.raises(ValueError, match=r"width and frac_bits apply to fixed accumulation, "
                                         r"not 'fp32'"):
        golden.Accumulation("fp32", width=16)


# ---- dot, requantize ----------------------------------------------------------------------

@st.composite
def dot_operands(draw):
    """1-D operands of any two OCP block formats, 1..4 blocks."""
    Kt = K * draw(st.integers(1, 4))
    a = draw(mx_codes(draw(st.sampled_from(BLOCKS)), (Kt,), 0))
    b = draw(mx_codes(draw(st.sampled_from(BLOCKS)), (Kt,), 0))
    return a, b


@given(dot_operands())
def test_dot(case):
    a, b = case
    # the same codes as a 1 x K row and a K x 1 column, for the GEMM reference
    a2 = dataclasses.replace(a, shape=(1, a.shape[0]), axis=1, elements=a.elements[None, :],
                             scales=a.scales[None, :])
    b2 = dataclasses.replace(b, shape=(b.shape[0], 1), axis=0, elements=b.elements[:, None],
                             scales=b.scales[:, None])
    d = ref_block_dots(a2, b2)
    # (assert_array_equal: +Inf and -Inf block dots make a NaN FP32 sum, on both sides)
    np.testing.assert_array_equal(golden.dot(a, b), ref_exact(d)[0, 0])
    np.testing.assert_array_equal(golden.dot(a, b, golden.FP32), ref_fp32(d)[0, 0])
    np.testing.assert_array_equal(golden.dot(a, b, golden.fixed(24, 6)),
                                  ref_fixed(d, 24, 6, "saturate", "floor")[0][0, 0])


def test_dot_bad_arguments():
    a = golden.quantize(np.ones((2, 32)), "mxfp4")
    b = golden.quantize(np.ones(32), "mxfp4")
    with pytest.raises(ValueError, match=r"a must be a 1-D MXArray"):
        golden.dot(a, b)
    with pytest.raises(ValueError, match=r"b must be a 1-D MXArray"):
        golden.dot(b, np.ones(32))


def test_requantize():
    rng = np.random.default_rng(9)
    a = golden.quantize(rng.standard_normal((4, 64)), "mxfp8_e4m3", axis=1)
    b = golden.quantize(rng.standard_normal((64, 40)), "mxfp8_e4m3", axis=0)
    c = golden.gemm(a, b, golden.FP32)
    for fmt, axis in (("mxfp4", -1), ("mxint8", 0), ("mxfp6_e2m3", 1)):
        r = golden.requantize(c, fmt, axis=axis)
        q = golden.quantize(c.astype(np.float64), fmt, axis=axis)
        np.testing.assert_array_equal(r.elements, q.elements)
        np.testing.assert_array_equal(r.scales, q.scales)
    # a worked example: [6, 3, -0.5, 0...] in MXFP4 is exact at scale 2**0
    r = golden.requantize(np.array([[6.0, 3.0, -0.5] + [0.0] * 29], np.float32), "mxfp4")
    assert r.scales.tolist() == [[127]]
    assert r.elements[0, :3].tolist() == [0b0111, 0b0101, 0b1001]


# ---- element products ---------------------------------------------------------------------

PAIRS = [("fp4_e2m1", "fp4_e2m1"), ("fp4_e2m1", "fp6_e3m2"), ("fp4_e2m1", "fp6_e2m3"),
         ("fp6_e3m2", "fp6_e3m2"), ("fp6_e3m2", "fp6_e2m3"), ("fp6_e2m3", "fp6_e2m3"),
         ("int8", "fp4_e2m1"), ("fp4_e2m1", "int8"), ("int8", "int8"),
         ("fp8_e4m3", "fp8_e5m2"), ("fp8_e4m3", "fp4_e2m1")]


@pytest.mark.parametrize("fa, fb", PAIRS)
def test_element_product_exhaustive(fa, fb):
    na = 1 << golden.formats.get(fa).bits
    nb = 1 << golden.formats.get(fb).bits
    ca, cb = np.meshgrid(np.arange(na), np.arange(nb), indexing="ij")
    va, vb = ml_values(fa, ca), ml_values(fb, cb)
    fin = np.isfinite(va) & np.isfinite(vb)
    ca, cb, va, vb = ca[fin], cb[fin], va[fin], vb[fin]
    p, e = arith.element_product(fa, ca, fb, cb)
    assert p.dtype == np.int64 and isinstance(e, int)
    np.testing.assert_array_equal(np.ldexp(p.astype(np.float64), e), va * vb)  # exact products


def test_element_product_rejects_specials():
    with pytest.raises(ValueError, match=r"element_product: NaN/Inf codes have no exact product"):
        arith.element_product("fp8_e4m3", [0x7F], "fp4_e2m1", [1])
    with pytest.raises(ValueError, match=r"NaN/Inf codes have no exact product"):
        arith.element_product("fp4_e2m1", [1], "fp8_e5m2", [0x7C])
    with pytest.raises(TypeError, match=r"element_product takes element formats, not "
                                        r"BlockFormat\('mxint8'\)"):
        arith.element_product("mxint8", [1], "fp4_e2m1", [1])


# ---- exact_to_float32 -----------------------------------------------------------------------

@given(st.lists(st.tuples(st.integers(-(2**300), 2**300), st.integers(-160, 135)),
                min_size=1, max_size=20))
def test_exact_to_float32_wide(pairs):
    # the second number is the result's binary exponent: E is chosen to land there
    pairs = [(s, t - abs(s).bit_length()) for s, t in pairs]
    S = np.empty(len(pairs), dtype=object)
    S[:] = [s for s, _ in pairs]
    E = np.array([e for _, e in pairs])
    got = arith.exact_to_float32(S, E)
    want = np.array([round_f32(Fraction(s) * Fraction(2) ** e) for s, e in pairs], np.float32)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, want)


@given(st.lists(st.tuples(st.integers(-(2**52), 2**52), st.integers(-200, 120)),
                min_size=1, max_size=20))
def test_exact_to_float32_narrow(pairs):
    S = np.array([s for s, _ in pairs], dtype=np.int64)
    E = np.array([e for _, e in pairs])
    want = np.array([round_f32(Fraction(s) * Fraction(2) ** e) for s, e in pairs], np.float32)
    np.testing.assert_array_equal(arith.exact_to_float32(S, E), want)


TRAPS = [
    # (S, E, expected float32): rounding S to 53 bits first would land on a float32 tie
    (2**60 + 2**36 + 1, -60, 1.0 + 2.0**-23),     # just above the tie: up
    (2**60 + 2**36, -60, 1.0),                     # exact tie, even below: down
    (2**60 + 2**36 - 1, -60, 1.0),                 # just below the tie: down
    (2**60 + 2**37 + 2**36, -60, 1.0 + 2.0**-22),  # tie, odd below: up (to even)
    (-(2**60 + 2**36 + 1), -60, -(1.0 + 2.0**-23)),
    (2**100 + 2**76 + 1, -100, 1.0 + 2.0**-23),
    (2**60 + 1, -210, 2.0**-149),                  # just above half the smallest subnormal
    (2**60, -210, 0.0),                            # exactly half the smallest subnormal
    (2**61 + 2**60, -210, 2.0**-148),              # 1.5 smallest subnormals: tie, to 2 (even)
    (2**61 + 2**60 - 1, -210, 2.0**-149),
    (2**128 - 2**104, 0, float(np.finfo(np.float32).max)),   # max float32
    (2**128 - 2**104 + 2**103 - 1, 0, float(np.finfo(np.float32).max)),
    (2**128 - 2**104 + 2**103, 0, math.inf),      # tie above max: to even = overflow
    (2**200 + 1, 0, math.inf),
]


@pytest.mark.parametrize("s, e, want", TRAPS)
def test_exact_to_float32_double_rounding_traps(s, e, want):
    assert round_f32(Fraction(s) * Fraction(2) ** e) == want       # the reference agrees
    S = np.empty(1, dtype=object)
    S[0] = s
    assert arith.exact_to_float32(S, np.array([e]))[0] == np.float32(want)
    # the naive path (float64 first) falls into the trap for the first case
    if (s, e) == TRAPS[0][:2]:
        assert np.float32(math.ldexp(float(s), e)) != np.float32(want)
