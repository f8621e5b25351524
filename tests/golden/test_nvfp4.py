"""NVFP4 (golden.nvfp4) against torchao's nvfp4_quantize + per_tensor_amax_to_scale.

Expectations: torchao's codes (per-tensor FP32 scale bits, E4M3 block scale codes, FP4
element codes) on float32 inputs: random, adversarial (block maxima at powers of two and
just below/above, at 6 * 2**k, zeros, float32 subnormals), and Hypothesis-drawn operands.
Dequantise: checked exactly against Fractions of the decoded codes (golden's existing
E4M3/E2M1 element formats decode them).
"""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, strategies as st

from support.formats import adversarial_blocks, torchao_nvfp4
from support.hyp import budget

from mxhw import golden
from mxhw.golden import formats as F


def _check(x):
    q = golden.quantize(x.astype(np.float64), "nvfp4", axis=-1)
    t_ref, s_ref, e_ref = torchao_nvfp4(x)
    assert int(q.tensor_scale.reshape(-1)[0]) == t_ref
    np.testing.assert_array_equal(q.scales, s_ref)
    np.testing.assert_array_equal(q.elements, e_ref)
    return q


def test_descriptor():
    f = F.get("nvfp4")
    assert f.block == 16 and f.element.name == "fp4_e2m1" and f.scale.name == "fp8_e4m3"
    assert f.bits_per_value == 4 + 8 / 16
    assert f.bits_per_value_for(1 << 20) == 4.5 + 32 / (1 << 20)


def test_random_equals_torchao():
    rng = np.random.default_rng(36)
    for k in (-40, -3, 0, 5, 60):
        x = rng.standard_normal((8, 256)) * np.exp2(rng.integers(-6, 6, (8, 1)) + k)
        _check(x.astype(np.float32))


def test_adversarial_equals_torchao():
    rng = np.random.default_rng(5)
    for rep in range(4):
        x = adversarial_blocks(rng, 64, 16, 6.0).reshape(16, 64)
        _check(x)


@st.composite
def tensors(draw):
    """2-D float32 tensors (rows x 16k): values sign * 24-bit significand * 2**e drawn,
    with zeros, one or more blocks scaled far below the tensor maximum."""
    r, k = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    e0 = draw(st.integers(-60, 60))
    vals = draw(st.lists(st.one_of(st.just(0.0), st.tuples(
        st.booleans(), st.integers(1, (1 << 24) - 1), st.integers(-40, 0)).map(
            lambda t: (-1.0 if t[0] else 1.0) * t[1] * 2.0 ** (t[2] - 24))),
        min_size=r * 16 * k, max_size=r * 16 * k))
    x = np.array(vals).reshape(r, 16 * k) * 2.0 ** e0
    top = draw(st.sampled_from([1.0, 1.0 - 2 ** -24, 1.5, 6.0, 6.0 * (1 - 2 ** -24), 7.0]))
    x.reshape(-1)[draw(st.integers(0, x.size - 1))] = top * 2.0 ** e0
    return x.astype(np.float32)


@budget(40)
@given(x=tensors())
def test_drawn_equals_torchao_and_dequantise_exact(x):
    q = _check(x)
    t = Fraction(float(np.array(q.tensor_scale.reshape(-1)[0], np.uint32).view(np.float32)))
    sv = F.get("fp8_e4m3").decode(q.scales)
    ev = F.get("fp4_e2m1").decode(q.elements)
    d = q.dequantize()
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            assert Fraction(d[i, j]) == t * Fraction(sv[i, j // 16]) * Fraction(ev[i, j])


def test_axis_and_padding():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((40, 3)).astype(np.float32)
    q0 = golden.quantize(x, "nvfp4", axis=0)
    xp = np.zeros((48, 3), np.float32)
    xp[:40] = x
    _, s_ref, e_ref = torchao_nvfp4(np.ascontiguousarray(xp.T))
    np.testing.assert_array_equal(q0.scales, s_ref.T)
    np.testing.assert_array_equal(q0.elements, e_ref.T[:40])


def test_zero_and_nonfinite_choices():
    q = golden.quantize(np.zeros((2, 16)), "nvfp4")
    assert (q.tensor_scale == 0).all() and (q.scales == 0x08).all()
    assert (q.elements == 0).all() and (q.dequantize() == 0).all()
    x = np.ones((1, 48))
    x[0, 3], x[0, 20] = np.nan, -np.inf
    q = golden.quantize(x, "nvfp4")
    assert list(q.scales[0]) == [0x7F, 0x7F, q.scales[0, 2]]
    d = q.dequantize()
    assert np.isnan(d[0, :32]).all() and np.allclose(d[0, 32:], 1.0, rtol=2 ** -20)


def test_tensor_scale_underflow_raises():
    with pytest.raises(ValueError, match="underflows"):
        golden.quantize(np.full((1, 16), 2.0 ** -149), "nvfp4")


def test_gemm_refuses_nvfp4():
    a = golden.quantize(np.ones((2, 32)), "nvfp4", axis=1)
    b = golden.quantize(np.ones((32, 2)), "nvfp4", axis=0)
    with pytest.raises(ValueError):
        golden.gemm(a, b)


def test_minilm_weights_equal_torchao():
    from support.formats import minilm_weights
    for name, w in minilm_weights().items():
        _check(w)


def test_compare_lists_the_new_formats(capsys):
    from mxhw.golden import compare
    assert compare.main(["--list"]) == 0
    out = capsys.readouterr().out
    for n in ("nvfp4", "mxfp4_plus", "mxfp6_plus", "mxfp8_plus", "mxfp8_e4m3_rceil",
              "mxfp4_e2m1_rceil", "mxint8_even", "mxfp6_e3m2_ceil"):
        assert f"\n{n}\t" in "\n" + out
