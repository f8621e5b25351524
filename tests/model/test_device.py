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


def test_device_spec_is_the_devices_formats_and_accumulation(acc):
    from mxhw.model.device import device_spec
    r = device_spec(acc).resolve("any.layer")
    assert (r.w, r.a, r.acc) == ("mxfp4_e2m1", "mxfp8_e4m3", "fixed(32,16)")


def test_layer_names_minilm_and_bad_layer(acc):
    from mxhw.model.device import device_spec, layer_names
    from mxhw.model.metrics import load_minilm
    q = quantize_model(load_minilm(), device_spec(acc))
    names = layer_names(q, 2)
    assert len(names) == 6 and all("encoder.layer.2." in n for n in names)
    with pytest.raises(SpecError, match=r"layer must be in 0\.\.5, not 6"):
        layer_names(q, 6)


def _minilm_slice(n_tokens=3, k=64, n=8):
    """A slice of MiniLM's layer-0 query projection (W[:n, :k], bias[:n]) and the real
    hidden states entering layer 0 for one sentence (first n_tokens tokens, first k
    features)."""
    from mxhw.model.metrics import load_minilm
    m = load_minilm()
    bert = m[0].auto_model
    tok = m.tokenize(["It is a truth universally acknowledged."])
    with torch.no_grad():
        h = bert.embeddings(input_ids=tok["input_ids"], token_type_ids=tok["token_type_ids"])
    full = bert.encoder.layer[0].attention.self.query
    lin = torch.nn.Linear(k, n)
    with torch.no_grad():
        lin.weight.copy_(full.weight[:n, :k])
        lin.bias.copy_(full.bias[:n])
    return torch.nn.Sequential(lin), h[0, :n_tokens, :k].clone()


@pytest.mark.compiled
def test_minilm_layer_slice_on_the_compiled_soc_equals_emulation():
    """A slice of a real MiniLM layer (weights and hidden states) through the compiled
    SoC simulation: equal to the fast and the reference (golden.gemm) emulation."""
    cfg = SoCConfig(rows=2, cols=2, fmt_a="mxfp8_e4m3", fmt_b="mxfp4_e2m1", max_k=64)
    dev = Accelerator.simulated(cfg, backend="compiled")
    from mxhw.model.device import device_spec
    net, x = _minilm_slice()
    spec = device_spec(dev)
    q = quantize_model(net, spec)
    want = q(x)
    ref = quantize_model(net, spec, mode="reference")(x)
    run_on_accelerator(q, dev)
    got = q(x)
    np.testing.assert_array_equal(got.numpy(), ref.numpy())
    np.testing.assert_array_equal(got.numpy(), want.numpy())
    assert not torch.equal(got, net(x))  # quantisation really happened
