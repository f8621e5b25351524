"""golden.chain: the golden twin of a program of linear layers."""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, strategies as st

from mxhw import golden
from mxhw.golden.chain import chain, linear
from support.hyp import budget

ACC = golden.fixed(32, 16, overflow="saturate", rounding="floor")


def _exact_fixed(x, w, acc):
    """An independent reference of a fixed-point layer: the exact rational product of
    the dequantised operands, each block dot product floored to the fixed-point grid and
    the running sum saturated, as golden.fixed documents (block products exact)."""
    xv, wv = x.dequantize(), w.dequantize()
    M, K = xv.shape
    N = wv.shape[1]
    lo, hi = -(1 << (acc.width - 1)), (1 << (acc.width - 1)) - 1
    out = np.zeros((M, N))
    for i in range(M):
        for j in range(N):
            s = 0
            for b in range(0, K, 32):
                d = sum(Fraction(float(xv[i, k])) * Fraction(float(wv[k, j]))
                        for k in range(b, b + 32))
                s = min(hi, max(lo, s + int(np.floor(d * (1 << acc.frac_bits)))))
            out[i, j] = s / (1 << acc.frac_bits)
    return out


@budget(10)
@given(seed=st.integers(0, 2**32 - 1), m=st.integers(1, 3), n=st.integers(1, 5),
       kb=st.integers(1, 2), scale=st.integers(-6, 6))
def test_fixed_layer_is_the_exact_floored_sum(seed, m, n, kb, scale):
    rng = np.random.default_rng(seed)
    x = golden.quantize(rng.standard_normal((m, 32 * kb)) * 2.0 ** scale, "mxfp8_e4m3", axis=1)
    w = golden.quantize(rng.standard_normal((32 * kb, n)), "mxfp4", axis=0)
    assert np.array_equal(linear(x, w, ACC), _exact_fixed(x, w, ACC))


@budget(10)
@given(seed=st.integers(0, 2**32 - 1), fmt=st.sampled_from(["mxfp8_e4m3", "mxint8",
                                                            "mxfp4", "mxfp6_e3m2"]))
def test_requantised_layer_feeds_the_next(seed, fmt):
    """A re-quantised layer is blocked along N (axis 1, 32 wide) and equals quantize of
    the fixed-point values; a two-layer chain is the composition."""
    rng = np.random.default_rng(seed)
    x = golden.quantize(rng.standard_normal((2, 64)), fmt, axis=1)
    w1 = golden.quantize(rng.standard_normal((64, 32)), "mxfp4", axis=0)
    w2 = golden.quantize(rng.standard_normal((32, 3)), "mxfp4", axis=0)
    h = linear(x, w1, ACC, fmt)
    assert h.axis == 1 and h.shape == (2, 32) and h.scales.shape == (2, 1)
    y = linear(x, w1, ACC)
    assert np.array_equal(h.elements, golden.quantize(y, fmt, axis=1).elements)
    assert np.array_equal(chain(x, [(w1, fmt), (w2, None)], ACC), linear(h, w2, ACC))


def test_chain_refuses_bad_input():
    x = golden.quantize(np.ones((1, 32)), "mxfp4", axis=1)
    w = golden.quantize(np.ones((32, 32)), "mxfp4", axis=0)
    with pytest.raises(ValueError, match="layer 0 has out_fmt=None"):
        chain(x, [(w, None), (w, None)], ACC)
    with pytest.raises(TypeError, match="MXArrays"):
        linear(np.ones((1, 32)), w, ACC)
    with pytest.raises(ValueError, match="blocked along axis 1"):
        linear(w, x, ACC)
    with pytest.raises(ValueError, match="inner dimensions"):
        linear(x, golden.quantize(np.ones((64, 2)), "mxfp4", axis=0), ACC)
    with pytest.raises(ValueError, match="fixed-point accumulation"):
        linear(x, w, golden.FP32)
