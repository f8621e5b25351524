"""MXSF: decode tables, mode choice by exact brute force, tile transpose, gemm."""
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import example, given, strategies as st
from support.golden import float_arrays
from support.hyp import budget

from mxhw import golden
from mxhw.golden import formats as F


def _fp_value(code, e, m, bias, bits):
    # independent decode from the field definition
    s = -1 if code >> (bits - 1) & 1 else 1
    ex = code >> m & ((1 << e) - 1)
    man = code & ((1 << m) - 1)
    if ex == 0:
        return s * Fraction(man, 1 << m) * Fraction(2) ** (1 - bias)
    return s * (1 + Fraction(man, 1 << m)) * Fraction(2) ** (ex - bias)


def test_mode_w_table():
    w = F.get("mxsf_w")
    assert w.bits == 8 and w.max_normal == 7.875 and w.emax == 2
    for c in range(256):
        assert Fraction(float(w.table[c])) == _fp_value(c, 2, 5, 1, 8)


def test_mode_s_table():
    s = F.get("mxsf_s")
    assert s.bits == 8 and s.max_normal == 28 and s.emax == 4
    for c in range(64):
        assert Fraction(float(s.table[c])) == _fp_value(c, 3, 2, 3, 6)
    assert np.isnan(s.table[64:]).all()
    # the encoder never produces a reserved code
    v = np.linspace(-40, 40, 4001)
    assert s.encode(v).max() < 64


def _brute(block, fmt):
    """Independent: per candidate, OCP floor scale and RNE by exact nearest search."""
    best = None
    amax = max(abs(Fraction(float(v))) for v in block)
    for i, c in enumerate(fmt.candidates):
        vals = sorted({Fraction(float(v)) for v in c.table if np.isfinite(v)})
        e = amax.numerator.bit_length() - amax.denominator.bit_length()
        if Fraction(2) ** e > amax:
            e -= 1
        # the shared exponent is clamped to E8M0's range, 2**-127 .. 2**127 (docs/FORMATS.md)
        X = Fraction(2) ** min(max(e - c.emax, -127), 127)
        err = Fraction(0)
        for v in block:
            t = Fraction(float(v)) / X
            q = min(vals, key=lambda g: abs(g - t))  # ties don't change the error
            err += (Fraction(float(v)) - X * q) ** 2
        if best is None or err < best[1]:
            best = (i, err)
    return best


@budget(60)
@given(st.lists(st.floats(-1e3, 1e3, allow_nan=False, width=32), min_size=32, max_size=32)
       .filter(lambda v: any(v)))
@example([0.0] * 31 + [2.0 ** -149])   # below E8M0's smallest scale: clamped, rounds to 0
def test_mode_choice_is_exact_min(vals):
    x = np.array(vals)[None, :]
    q = golden.quantize(x, "mxsf")
    i, err = _brute(vals, F.get("mxsf"))
    assert q.modes[0, 0] == i
    got = sum((Fraction(float(a)) - Fraction(float(b))) ** 2
              for a, b in zip(x[0], q.dequantize()[0]))
    assert got == err


def test_mode_s_for_wide_range_block():
    # one large value and small ones: S (more range) wins; a flat block: W wins
    x = np.full((1, 32), 0.3)
    x[0, 0] = 112.0  # 7 * 16 in W, 28 * 4 in S; 0.3 is 0 or 0.5 in W, 0.25 in S
    assert golden.quantize(x, "mxsf").modes[0, 0] == 1
    y = np.linspace(1.0, 1.9, 32)[None]
    assert golden.quantize(y, "mxsf").modes[0, 0] == 0


def test_tie_goes_to_w():
    # every value exactly representable in both modes: both errors 0
    x = np.zeros((1, 32))
    x[0, :4] = [1.0, -2.0, 4.0, 0.5]
    assert golden.quantize(x, "mxsf").modes[0, 0] == 0


@budget(40)
@given(st.lists(st.floats(-100, 100, allow_nan=False), min_size=32, max_size=32)
       .filter(lambda v: any(v)), st.integers(-60, 60))
def test_mode_invariant_to_pow2_scaling(vals, k):
    x = np.array(vals)[None]
    a, b = golden.quantize(x, "mxsf"), golden.quantize(np.ldexp(x, k), "mxsf")
    assert (a.modes == b.modes).all() and (a.elements == b.elements).all()
    assert (b.scales.astype(int) - a.scales == k).all()


@budget(30)
@given(st.integers(1, 3), st.integers(1, 3), st.sampled_from([(8, 4), (4, 8), (2, 2)]),
       st.data(), st.integers(-5, 4))
def test_tile_transpose(mb, nb, tile, data, k):
    r, c = tile
    # ragged on both axes (the last tiles are partial)
    x = np.ldexp(data.draw(float_arrays((mb * r + 1, nb * c + 2), hi_abs=8.0)), k)
    a = golden.quantize(x, golden.mxsf.mxsf_tile(r, c))
    b = golden.quantize(x.T, golden.mxsf.mxsf_tile(c, r))
    assert (a.elements == b.elements.T).all()
    assert (a.scales == b.scales.T).all() and (a.modes == b.modes.T).all()


def test_tile_default_and_errors():
    assert golden.mxsf.mxsf_tile() is F.get("mxsf_tile")
    assert F.get("mxsf_tile").block == (8, 4)
    with pytest.raises(ValueError, match=r"^mxsf_tile: rows must be >= 1, not 0$"):
        golden.mxsf.mxsf_tile(0, 4)
    with pytest.raises(TypeError, match=r"^mxsf_tile: cols must be an integer, not 4.0$"):
        golden.mxsf.mxsf_tile(8, 4.0)


def test_gemm_with_modes():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((4, 64))
    a[0, :32] = 0.3
    a[0, 3] = 112.0  # forces mode S in that block (see test_mode_s_for_wide_range_block)
    b = rng.standard_normal((64, 3))
    qa, qb = golden.quantize(a, "mxsf", axis=1), golden.quantize(b, "mxsf", axis=0)
    assert qa.modes.any() and not qa.modes.all()
    ref = [[sum(Fraction(float(u)) * Fraction(float(v)) for u, v in
                zip(qa.dequantize()[i], qb.dequantize()[:, j])) for j in range(3)]
           for i in range(4)]
    out = golden.gemm(qa, qb)
    assert np.array_equal(out, np.array([[float(v) for v in r] for r in ref]))
    # tiles: K blocks of 4 on a (8 x 4) and (4 x 8) on b
    ta = golden.quantize(a[:, :32].repeat(2, 0), golden.mxsf.mxsf_tile(8, 4))
    tb = golden.quantize(b[:32], golden.mxsf.mxsf_tile(4, 8))
    assert np.allclose(golden.gemm(ta, tb), ta.dequantize() @ tb.dequantize(), rtol=1e-12)


def test_torch_input():
    torch = pytest.importorskip("torch")
    x = torch.randn(3, 32, dtype=torch.float32)
    q = golden.quantize(x, "mxsf")
    assert (q.elements == golden.quantize(x.numpy(), "mxsf").elements).all()
