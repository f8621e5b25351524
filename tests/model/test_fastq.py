"""mxhw.model.fastq (torch activation quantiser) against golden.quantize, bit for bit."""

import re

import numpy as np
import pytest
import torch
from hypothesis import given

from mxhw import golden
from mxhw.model import fastq
from mxhw.model.quant import MXLinear, block_accumulate, fast_supported
from support.hyp import budget
from support.model import activations, golden_linear, linear_from


@budget(120)
@given(activations())
def test_dequantized_equals_golden(case):
    x, fmt = case
    try:
        want = golden.quantize(x, fmt, axis=1).dequantize()
    except ValueError as e:  # e.g. an FP16 group scale underflows: the same error
        with pytest.raises(ValueError, match=re.escape(str(e))):
            fastq.dequantized(torch.from_numpy(x), fmt)
        return
    got = fastq.dequantized(torch.from_numpy(x), fmt).numpy()
    np.testing.assert_array_equal(got, want)


def test_supported_formats():
    for f in ["mxfp8_e4m3", "mxfp4", "mxint8", "mxint4_mase", "mxsf", "mxfp8_e4m3_rceil"]:
        assert fastq.supported(f), f
    # binary32 / FP16 scales, zero points, tiles, codecs go to golden
    for f in ["fp8_e4m3_pt", "bitmod_fp4", "int4_g128_asym", "mxsf_tile"]:
        assert not fastq.supported(f), f


def test_nan_and_inf_blocks_go_to_golden():
    x = np.random.default_rng(0).standard_normal((3, 64))
    x[0, 3], x[2, 40] = np.nan, -np.inf
    want = golden.quantize(x, "mxfp8_e4m3", axis=1).dequantize()
    got = fastq.dequantized(torch.from_numpy(x), "mxfp8_e4m3").numpy()
    np.testing.assert_array_equal(got, want)  # NaN == NaN position-wise here
    assert np.isnan(got[0, :32]).all() and np.isfinite(got[1]).all()


def test_dequantized_needs_a_2d_tensor():
    with pytest.raises(ValueError, match=r"2-D tensor, not shape \(64,\)"):
        fastq.dequantized(torch.zeros(64), "mxfp8_e4m3")


def test_fast_supported_bound():
    assert fast_supported("mxfp8_e4m3", "mxfp4", 64, "fp32")
    assert fast_supported("mxsf", "mxint8", 32, "fixed(32,16)")
    assert not fast_supported("mxfp8_e4m3", "mxfp4", 48, "fp32")          # K % 32
    assert not fast_supported("mxfp8_e5m2", "mxfp8_e5m2", 32, "fp32")     # > 2**53
    assert not fast_supported("mxfp8_e4m3", "mxfp4", 32, "fixed(60,16)")  # wide register
    assert not fast_supported("fp8_e4m3_pt", "mxfp4", 32, "fp32")         # binary32 scale


def test_fast_layer_does_not_call_golden(monkeypatch):
    """The fast path really is the torch one (a regression here is a 10x slowdown)."""
    rng = np.random.default_rng(4)
    W = rng.standard_normal((6, 96))
    x = rng.standard_normal((5, 96))
    want = golden_linear(x, W, "mxfp8_e4m3", "mxfp4", "fp32")
    m = MXLinear(linear_from(W), "mxfp4", "mxfp8_e4m3", "fp32")

    def boom(*a, **k):
        raise AssertionError("golden called on the fast path")
    monkeypatch.setattr(golden, "quantize", boom)
    monkeypatch.setattr(golden, "gemm", boom)
    np.testing.assert_array_equal(m.gemm(torch.from_numpy(x)).numpy(), want.numpy())


def test_block_accumulate_wrap_beyond_int64_returns_none():
    x = torch.full((1, 32), 2.0 ** 40, dtype=torch.float64)
    w = torch.full((32, 1), 2.0 ** 20, dtype=torch.float64)
    assert block_accumulate(x, w, 32, golden.fixed(62, 0, "wrap", "floor")) is None
