"""MXLinear layers on the simulated SoC equal the emulation (golden's numbers)."""

import numpy as np
import pytest
import torch

from mxhw.model import SpecError, quantize_model, run_on_accelerator
from mxhw.soc.driver import Accelerator
from mxhw.soc.top import SoCConfig
from support.model import TinyMLP

CFG = SoCConfig(rows=2, cols=2, fmt_a="mxfp8_e4m3", fmt_b="mxfp4_e2m1", max_k=32)
SPEC = {"default": {"w": "mxfp4", "a": "mxfp8_e4m3", "acc": "fixed(32,16)"}}


@pytest.fixture(scope="module")
def acc():
    return Accelerator.simulated(CFG)


def test_tiny_mlp_on_the_device_equals_emulation(acc):
    net = TinyMLP(h=4, n=2)
    x = torch.randn(2, 32, generator=torch.Generator().manual_seed(3))
    q = quantize_model(net, SPEC)
    want = q(x)                       # fast emulation
    ref = quantize_model(net, SPEC, mode="reference")(x)  # golden.gemm
    run_on_accelerator(q, acc)
    got = q(x)
    np.testing.assert_array_equal(got.numpy(), ref.numpy())
    np.testing.assert_array_equal(got.numpy(), want.numpy())
    run_on_accelerator(q, None)
    assert all(m.device is None for m in (q.fc1, q.fc2))


@pytest.mark.parametrize("spec, msg", [
    ({"default": {"w": "mxfp4"}}, "weight-only layers cannot run on the device"),
    ({"default": {"w": "mxfp6_e2m3", "a": "mxfp8_e4m3", "acc": "fixed(32,16)"}},
     "weight format mxfp6_e2m3 but the device was built for mxfp4_e2m1"),
    ({"default": {"w": "mxfp4", "a": "mxint8", "acc": "fixed(32,16)"}},
     "activation format mxint8 but the device was built for mxfp8_e4m3"),
    ({"default": {"w": "mxfp4", "a": "mxfp8_e4m3", "acc": "fp32"}},
     r"accumulation fp32 but the device accumulates in fixed\(32,16\)"),
])
def test_refuses_what_the_device_was_not_built_for(acc, spec, msg):
    q = quantize_model(TinyMLP(h=4, n=2), spec)
    with pytest.raises(SpecError, match=msg):
        run_on_accelerator(q, acc)
    assert all(m.device is None for m in (q.fc1, q.fc2))  # none attached


def test_refuses_k_beyond_max_k(acc):
    net = torch.nn.Sequential(torch.nn.Linear(64, 2))
    q = quantize_model(net, SPEC)
    with pytest.raises(SpecError, match="K = 64 exceeds the device's max_k = 32"):
        run_on_accelerator(q, acc)
