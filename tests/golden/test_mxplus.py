"""MX+ (golden.mxplus): expectations from golden's existing OCP formats (plain MXFP) and
from the layout written in docs/FORMATS.md, never from golden.mxplus itself.

* every non-BM element has the plain MX code and the block the plain MX scale;
* the BM's error is never larger than plain MX's;
* dequantise(quantise(v)) == v for blocks built on the documented grids;
* golden.gemm / dot multiply MX+ exactly (against Fractions of the dequantised values);
* golden.compare: MX+ lies between MXFP4 and MXFP6 on SQNR.
"""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, strategies as st

from support.hyp import budget

from mxhw import golden
from mxhw.golden import compare, formats as F

PLUS = {"mxfp4_plus": "mxfp4_e2m1", "mxfp6_plus": "mxfp6_e2m3", "mxfp8_plus": "mxfp8_e4m3"}


def test_descriptors():
    for p, b in PLUS.items():
        f, fb = F.get(p), F.get(b)
        assert f.element is fb.element and f.scale is fb.scale and f.block == 32
        assert f.index_bits == 5 and f.bits_per_value == fb.bits_per_value + 5 / 32


@st.composite
def blocks(draw):
    """float64 (rows, 32 * n) tensors: random magnitudes over 2**-12..2**12 relative to a
    drawn exponent, with zeros, ties for the maximum and NaN/Inf blocks sometimes."""
    r, n = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    e0 = draw(st.integers(-120, 120))
    vals = draw(st.lists(st.one_of(st.just(0.0), st.floats(-4096, 4096, width=32)),
                         min_size=r * 32 * n, max_size=r * 32 * n))
    x = np.array(vals).reshape(r, 32 * n) * 2.0 ** e0
    if draw(st.booleans()):  # a tie for the block maximum
        i, j = draw(st.integers(0, 31)), draw(st.integers(0, 31))
        top = np.abs(x[0, :32]).max() or 1.0
        x[0, i], x[0, j] = top, -top
    if draw(st.booleans()):
        x[-1, draw(st.integers(0, x.shape[1] - 1))] = draw(st.sampled_from([np.nan, np.inf]))
    return x


@pytest.mark.parametrize("plus", PLUS)
@budget(30)
@given(x=blocks())
def test_plain_codes_and_bm_error(plus, x):
    q, p = golden.quantize(x, plus), golden.quantize(x, PLUS[plus])
    np.testing.assert_array_equal(q.scales, p.scales)
    d, dp = q.dequantize(), p.dequantize()
    for r in range(x.shape[0]):
        for b in range(x.shape[1] // 32):
            blk = x[r, 32 * b:32 * b + 32]
            i = int(q.index[r, b])
            if not np.isfinite(blk).all():
                assert q.scales[r, b] == 0xFF and np.isnan(d[r, 32 * b:32 * b + 32]).all()
                continue
            if q.scales[r, b] == 0:  # documented: a plain block, index 0
                assert i == 0
                np.testing.assert_array_equal(d[r, 32 * b:32 * b + 32],
                                              dp[r, 32 * b:32 * b + 32])
                continue
            assert i == int(np.argmax(np.abs(blk)))  # first of the largest magnitude
            others = np.arange(32) != i
            np.testing.assert_array_equal(q.elements[r, 32 * b:32 * b + 32][others],
                                          p.elements[r, 32 * b:32 * b + 32][others])
            assert abs(blk[i] - d[r, 32 * b + i]) <= abs(blk[i] - dp[r, 32 * b + i])


@pytest.mark.parametrize("plus", PLUS)
@budget(30)
@given(data=st.data())
def test_roundtrip_on_representable_values(plus, data):
    f = F.get(plus)
    k, emax = f.element.bits - 1, f.element.emax
    se = data.draw(st.integers(-100, 100))
    grid = f.element.finite_values
    vals = np.array(data.draw(st.lists(st.sampled_from(list(grid)), min_size=32, max_size=32)))
    # BM: a value of the extended grid, strictly larger than every other magnitude
    fr = data.draw(st.integers(0, (1 << k) - 1))
    bm = 2.0 ** emax * (1 + fr / 2 ** k)
    vals = np.clip(vals, -2.0 ** emax + 0, 2.0 ** emax) * (np.abs(vals) < bm)
    vals[np.abs(vals) >= bm] = 0
    i = data.draw(st.integers(0, 31))
    vals[i] = bm * data.draw(st.sampled_from([1, -1]))
    x = (vals * 2.0 ** se)[None, :]
    q = golden.quantize(x, plus)
    np.testing.assert_array_equal(q.dequantize(), x)
    assert q.index[0, 0] == i and q.scales[0, 0] == se + 127


def test_saturation_and_zero_block():
    x = np.zeros((1, 64))
    x[0, 40] = 7.99  # FP4 extended max is 7.5 at scale 1
    q = golden.quantize(x, "mxfp4_plus")
    assert q.dequantize()[0, 40] == 7.5 and (q.dequantize()[0, :32] == 0).all()
    assert list(q.scales[0]) == [0, 127] and list(q.index[0]) == [0, 8]


@pytest.mark.parametrize("plus", PLUS)
def test_gemm_and_dot_exact(plus):
    rng = np.random.default_rng(3)
    a = golden.quantize(rng.standard_normal((3, 96)), plus, axis=1)
    b = golden.quantize(rng.standard_t(3, (96, 2)), plus, axis=0)
    da, db = a.dequantize(), b.dequantize()
    want = np.array([[float(sum(Fraction(da[i, t]) * Fraction(db[t, j]) for t in range(96)))
                      for j in range(2)] for i in range(3)], dtype=np.float32)
    np.testing.assert_array_equal(golden.gemm(a, b), want)
    v = golden.quantize(rng.standard_normal(64), plus)
    w = golden.quantize(rng.standard_normal(64), plus)
    exact = sum(Fraction(s) * Fraction(t) for s, t in zip(v.dequantize(), w.dequantize()))
    assert golden.dot(v, w) == np.float32(float(exact))


def test_compare_puts_mxfp4_plus_between_mxfp4_and_mxfp6():
    t = compare.synthetic(0, shape=(64, 256))
    for name, x in t.items():
        s4 = compare.evaluate(x, "mxfp4")[1]
        sp = compare.evaluate(x, "mxfp4_plus")[1]
        s6 = compare.evaluate(x, "mxfp6_e2m3")[1]
        assert s4 < sp < s6, name
