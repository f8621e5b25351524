"""golden.nvfp4_gemm (the arrays' NVFP4 twin) against an independent exact computation in
Fractions: per block pair the exact sum of decoded products times both decoded E4M3 block
scales, rounded onto the fixed grid (floor / RNE), accumulated with saturation or wrap; the
host's per-tensor step ``Ta * Tb * C`` rounded once to float64. Operands are drawn code by
code (elements, block scale codes with both NaN codes and negative scales, per-tensor
scales) and also come from golden's quantiser."""

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, strategies as st

from support.hyp import budget
from support.nvfp4 import NV, nvfp4_operand
from mxhw import golden
from mxhw.golden import nvfp4_gemm
from mxhw.golden.arith import fixed

E2M1, E4M3 = NV.element, NV.scale


def accs():
    return st.builds(fixed, st.integers(8, 40), st.integers(0, 24),
                     st.sampled_from(["saturate", "wrap"]), st.sampled_from(["floor", "rne"]))


def _round(v: Fraction, rounding):
    q = math.floor(v)
    if rounding == "rne":
        r = v - q
        if r > Fraction(1, 2) or (r == Fraction(1, 2) and q % 2):
            q += 1
    return q


def reference(a, b, acc):
    """Exact per output: the accumulator integer (None for NaN)."""
    M, K = a.shape
    N = b.shape[1]
    va, vb = E2M1.table[a.elements], E2M1.table[b.elements]
    sa, sb = E4M3.table[a.scales], E4M3.table[b.scales]
    lo, hi = -(1 << (acc.width - 1)), (1 << (acc.width - 1)) - 1
    out = {}
    for m in range(M):
        for n in range(N):
            reg, nan = 0, False
            for j in range(K // 16):
                if math.isnan(sa[m, j]) or math.isnan(sb[j, n]):
                    nan = True
                    continue
                s = sum(Fraction(va[m, kk]) * Fraction(vb[kk, n])
                        for kk in range(16 * j, 16 * j + 16))
                v = s * Fraction(sa[m, j]) * Fraction(sb[j, n]) * 2 ** acc.frac_bits
                reg += _round(v, acc.rounding)
                if acc.overflow == "saturate":
                    reg = min(max(reg, lo), hi)
                else:
                    reg = (reg - lo) % (1 << acc.width) + lo
            out[m, n] = None if nan else reg
    return out


def _check(a, b, acc):
    val, raw = nvfp4_gemm.gemm(a, b, acc, return_raw=True)
    ref = reference(a, b, acc)
    ta = Fraction(golden.nvfp4.tensor_scale_value(a))
    tb = Fraction(golden.nvfp4.tensor_scale_value(b))
    scaled = nvfp4_gemm.gemm_scaled(a, b, acc)
    for (m, n), r in ref.items():
        if r is None:
            assert np.isnan(val[m, n]) and np.isnan(scaled[m, n])
            continue
        assert raw[m, n] == r, (m, n, raw[m, n], r)
        assert val[m, n] == r * 2.0 ** -acc.frac_bits
        assert scaled[m, n] == float(ta * tb * Fraction(r, 1 << acc.frac_bits)), (m, n)


@budget(40)
@given(data=st.data(), M=st.integers(1, 3), N=st.integers(1, 3), nblk=st.integers(1, 3),
       acc=accs(), nan=st.booleans())
def test_twin_equals_exact_reference(data, M, N, nblk, acc, nan):
    a = data.draw(nvfp4_operand((M, 16 * nblk), 1, nan))
    b = data.draw(nvfp4_operand((16 * nblk, N), 0, nan))
    _check(a, b, acc)


def test_twin_on_quantised_data_matches_float():
    """On golden-quantised data with a wide exact accumulator: the scaled result is the
    float64 product of the dequantised operands (exact there) rounded as the twin says."""
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((4, 64)) * 3, rng.standard_normal((64, 3))
    a = golden.quantize(x, "nvfp4", axis=1)
    b = golden.quantize(w, "nvfp4", axis=0)
    acc = fixed(53, 20)          # exact here: products down to 2**-20, sums below 2**32
    _check(a, b, acc)
    exact = a.dequantize() @ b.dequantize()
    np.testing.assert_allclose(nvfp4_gemm.gemm_scaled(a, b, acc), exact, rtol=1e-12, atol=1e-9)


def test_bad_operands_raise():
    a = golden.quantize(np.ones((2, 16)), "nvfp4", axis=1)
    b = golden.quantize(np.ones((16, 2)), "nvfp4", axis=0)
    with pytest.raises(ValueError, match="fixed point"):
        nvfp4_gemm.gemm(a, b, golden.arith.FP32)
    with pytest.raises(ValueError, match="NVFP4 MXArray"):
        nvfp4_gemm.gemm(a, golden.quantize(np.ones((16, 2)), "mxfp4", axis=0), fixed(32, 8))
    with pytest.raises(ValueError, match="nvfp4_gemm"):
        golden.gemm(a, b)
