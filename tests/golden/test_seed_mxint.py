"""MXINT{N}: OCP-style and MASE-style against independent integer references."""
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, strategies as st
from support.hyp import budget

from mxhw import golden
from mxhw.golden import formats as F


@pytest.mark.parametrize("n", range(2, 9))
def test_element_tables(n):
    e = F.get("mxint8").element if n == 8 else F.get(f"int{n}")
    for c in range(1 << n):
        signed = c - (1 << n) if c >> (n - 1) else c
        assert e.table[c] == signed / 2 ** (n - 2)
    assert e.emax == 0
    m = F.get(f"mase_int{n}")
    for c in range(1 << n):
        signed = c - (1 << n) if c >> (n - 1) else c
        assert m.table[c] == signed / 2 ** (n - 1)


def test_mxint8_is_ocp():
    assert golden.mxint.mxint(8) is F.get("mxint8")
    assert F.get("mxint8").element is F.get("int8")


def _ocp_ref(v, n):
    """OCP: X = 2**(floor(log2 amax) - 0), P = clamp(RNE(v / X * 2**(n-2)))."""
    amax = max(abs(Fraction(float(u))) for u in v)
    e = math.floor(math.log2(amax)) if amax else -127
    if amax and Fraction(2) ** e > amax:
        e -= 1
    if amax and Fraction(2) ** (e + 1) <= amax:
        e += 1
    e = max(-127, min(127, e))  # E8M0 range
    lim = 2 ** (n - 1) - 1
    out = []
    for u in v:
        t = Fraction(float(u)) / Fraction(2) ** e * 2 ** (n - 2)
        out.append(max(-lim, min(lim, round(t))))  # round() on Fraction: ties to even
    return e, out


def _mase_ref(v, n, ew=8):
    """MASE: e = clamp(ceil(log2 amax)), m = clamp(floor(v / 2**e * 2**(n-1)))."""
    amax = max(abs(Fraction(float(u))) for u in v)
    e = 0
    while Fraction(2) ** e < amax:
        e += 1
    while Fraction(2) ** (e - 1) >= amax:
        e -= 1
    e = max(-(2 ** (ew - 1)), min(2 ** (ew - 1) - 1, e))
    out = [max(-(2 ** (n - 1)), min(2 ** (n - 1) - 1,
                                     math.floor(Fraction(float(u)) / Fraction(2) ** e
                                                * 2 ** (n - 1)))) for u in v]
    return e, out


@pytest.mark.parametrize("style", ["ocp", "mase"])
@budget(40)
@given(st.integers(2, 8), st.lists(st.floats(-1e4, 1e4, allow_nan=False), min_size=32,
                                   max_size=32).filter(lambda v: any(v)))
def test_matches_reference(style, n, v):
    """OCP: E8M0 scale code e + 127; MASE: the scale 2**e (a signed exponent code)."""
    if style == "ocp":
        q = golden.quantize(np.array(v)[None], f"mxint{n}")
        e, ints = _ocp_ref(v, n)
        assert q.scales[0, 0] == e + 127
    else:
        q = golden.quantize(np.array(v)[None], f"mxint{n}_mase")
        e, ints = _mase_ref(v, n)
        assert q.scale_values()[0, 0] == 2.0 ** e
    codes = q.elements[0]
    assert [c - (1 << n) if c >> (n - 1) else c for c in codes.tolist()] == ints


def test_mase_floor_not_truncation():
    # -0.3 in a block with max 1: e = 0, floor(-0.3 * 8) = -3, not -2 (toward zero)
    x = np.zeros((1, 32))
    x[0, :2] = [1.0, -0.3]
    q = golden.quantize(x, "mxint4_mase")
    assert q.dequantize()[0, :2].tolist() == [0.875, -0.375]


def test_mase_gemm():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((3, 64)), rng.standard_normal((64, 2))
    qa, qb = golden.quantize(a, "mxint5_mase", axis=1), golden.quantize(b, "mxint5_mase", axis=0)
    ref = [[float(sum(Fraction(float(u)) * Fraction(float(w)) for u, w in
                      zip(qa.dequantize()[i], qb.dequantize()[:, j]))) for j in range(2)]
           for i in range(3)]
    assert golden.gemm(qa, qb).tolist() == ref


def test_bad_params():
    with pytest.raises(ValueError, match=r"^mxint: bits must be in \[2, 8\], not 1$"):
        golden.mxint.mxint(1)
    with pytest.raises(TypeError, match=r"^mxint: bits must be an integer, not 4.0$"):
        golden.mxint.mxint(4.0)
    with pytest.raises(ValueError, match=r"^mxint: block must be >= 1, not 0$"):
        golden.mxint.mxint(4, block=0)
    with pytest.raises(ValueError, match=r"^mxint: exp_bits must be in \[2, 16\], not 1$"):
        golden.mxint.mxint(4, style="mase", exp_bits=1)
    with pytest.raises(ValueError, match=r"^mxint: style must be 'ocp' or 'mase', not 'x'$"):
        golden.mxint.mxint(4, style="x")
    assert golden.mxint.mxint(4, block=16).block == 16
