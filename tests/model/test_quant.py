"""MXLinear (fast and reference) against golden.gemm, bit for bit."""

import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st

from mxhw import golden
from mxhw.model import MXLinear, SpecError, fast_gemm, gemm_supported, quantize_model
from support.hyp import budget
from support.model import ACCS, PT_FORMATS, POW2_FORMATS, TinyMLP, golden_linear, \
    linear_from, operands


@budget(60)
@given(operands(), st.sampled_from(ACCS))
def test_fast_gemm_equals_golden(ops, acc):
    x, W, a, w = ops
    from mxhw.model.spec import parse_acc
    xq = golden.quantize(x, a, axis=1)
    wq = golden.quantize(W.T, w, axis=0)
    want = golden.gemm(xq, wq, parse_acc(acc))
    got = fast_gemm(xq, wq, parse_acc(acc))
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    assert np.array_equal(np.signbit(got), np.signbit(want))


@budget(30)
@given(operands(formats=POW2_FORMATS + PT_FORMATS), st.sampled_from(ACCS[:2]),
       st.booleans())
def test_mxlinear_fast_and_reference_equal_golden(ops, acc, with_bias):
    x, W, a, w = ops
    bias = np.linspace(-1, 1, W.shape[0]) if with_bias else None
    lin = linear_from(W, bias)
    want = golden_linear(x, W, a, w, acc)
    for mode in ("fast", "reference"):
        m = MXLinear(lin, w, a, acc, mode=mode)
        assert m.exact
        np.testing.assert_array_equal(m.gemm(torch.from_numpy(x)).numpy(), want.numpy())
        y = m(torch.from_numpy(x))
        exp = want.double() + (lin.bias.detach() if with_bias else 0)
        np.testing.assert_array_equal(y.numpy(), exp.numpy())


def test_forward_keeps_leading_dims_and_dtype():
    rng = np.random.default_rng(0)
    W = rng.standard_normal((5, 64)).astype(np.float32).astype(np.float64)
    m = MXLinear(linear_from(W, np.ones(5), dtype=torch.float32), "mxfp4", "mxfp8_e4m3", "fixed(32,16)")
    x = torch.randn(2, 3, 64)
    y = m(x)
    assert y.shape == (2, 3, 5) and y.dtype == torch.float32
    want = golden_linear(x.reshape(6, 64).double().numpy(), W, "mxfp8_e4m3", "mxfp4",
                         "fixed(32,16)")
    np.testing.assert_array_equal(y.reshape(6, 5).numpy(),
                                  (want.float() + torch.ones(5)).numpy())


@pytest.mark.parametrize("w", ["bitmod_fp4", "int4_g128", "int4_g128_asym", "mxsf_tile"])
def test_dequantise_path_for_formats_golden_gemm_cannot_multiply(w):
    rng = np.random.default_rng(1)
    W = rng.standard_normal((4, 128)).astype(np.float32).astype(np.float64)
    x = rng.standard_normal((3, 128)).astype(np.float32).astype(np.float64)
    m = MXLinear(linear_from(W, dtype=torch.float32), w, "mxfp8_e4m3")
    assert not m.exact and not gemm_supported("mxfp8_e4m3", w, 128)
    wh = golden.quantize(W.T, w, axis=0).dequantize().T
    xh = golden.quantize(x, "mxfp8_e4m3", axis=1).dequantize()
    want = xh @ wh.T  # float64; the layer multiplies in float32 (an emulation, not exact)
    np.testing.assert_allclose(m(torch.from_numpy(x).float()).numpy(), want, rtol=1e-5,
                               atol=1e-5)


def test_weight_only_is_float_matmul_of_dequantised_weights():
    rng = np.random.default_rng(2)
    W = rng.standard_normal((4, 64)).astype(np.float32).astype(np.float64)
    m = MXLinear(linear_from(W, dtype=torch.float32), "mxfp4")
    wh = golden.quantize(W.T, "mxfp4", axis=0).dequantize().T
    x = torch.randn(3, 64)
    np.testing.assert_allclose(m(x).numpy(), x.double().numpy() @ wh.T, rtol=1e-5, atol=1e-5)


def test_quantize_model_swaps_matched_layers_only():
    net = TinyMLP()
    q = quantize_model(net, {"fc2": "float",
                             "fc*": {"w": "mxfp4", "a": "mxfp8_e4m3", "acc": "fixed(32,16)"}})
    assert isinstance(q.fc1, MXLinear) and type(q.fc2) is torch.nn.Linear
    assert type(net.fc1) is torch.nn.Linear  # the original is untouched
    assert q.fc2 is not net.fc2 and q.fc2.weight is not net.fc2.weight  # a float layer: copied
    w0 = net.fc1.weight.detach().clone()
    with torch.no_grad():
        q.fc2.weight.add_(1.0)
    assert torch.equal(net.fc1.weight, w0) and not torch.equal(q.fc2.weight, net.fc2.weight)
    assert q(torch.randn(2, 32)).shape == (2, 3)
    q2 = quantize_model(net, {"default": {"w": "mxfp4"}})
    assert isinstance(q2.fc2, MXLinear)


def test_bad_arguments():
    lin = torch.nn.Linear(32, 2)
    with pytest.raises(SpecError, match="unknown .*weight format 'mxfp9'"):
        MXLinear(lin, "mxfp9")
    with pytest.raises(ValueError, match="mode must be"):
        MXLinear(lin, "mxfp4", mode="slow")
    with pytest.raises(SpecError, match="acc must be"):
        MXLinear(lin, "mxfp4", acc="fp16")
    with pytest.raises(TypeError, match="nn.Linear"):
        MXLinear(torch.nn.ReLU(), "mxfp4")
    with pytest.raises(TypeError, match="torch.nn.Module"):
        quantize_model("net", {"default": {"w": "mxfp4"}})
