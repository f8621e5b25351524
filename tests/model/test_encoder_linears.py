"""``mxhw.model.encoder``: every linear layer of all-MiniLM-L6-v2's encoder with its real
input (what ``python -m mxhw.bench sim --minilm-encoder`` runs on the simulated SoC).
Expectations from independent descriptions: ``mxhw.model.ffn``'s FFN weights and inputs,
and torch's own linear layers applied to the captured inputs."""

import numpy as np
import pytest

from mxhw.model.encoder import ATTENTION, encoder_inputs, encoder_linears
from mxhw.model.ffn import ffn_inputs, minilm_ffn

TEXTS = ["The accelerator runs the block.", "MX formats share a scale."]


@pytest.fixture(scope="module")
def minilm():
    from mxhw.model import load_minilm
    return load_minilm()


@pytest.mark.slow
def test_encoder_weights_and_inputs(minilm):
    import torch
    ws = encoder_linears(5, minilm)
    assert {k: v.shape for k, v in ws.items()} == {
        "Q": (384, 384), "K": (384, 384), "V": (384, 384), "O": (384, 384),
        "FFN_in": (384, 1536), "FFN_out": (1536, 384)}
    w1, w2 = minilm_ffn(5, minilm)
    assert np.array_equal(ws["FFN_in"], w1) and np.array_equal(ws["FFN_out"], w2)
    xs = encoder_inputs(TEXTS, minilm)
    assert sorted(xs) == sorted((i, n) for i in range(6) for n in [*ATTENTION, "FFN_in",
                                                                   "FFN_out"])
    for layer in (0, 3):
        assert np.array_equal(xs[(layer, "FFN_in")], ffn_inputs(TEXTS, layer, minilm))
        # Q, K and V read the same hidden states; FFN_out's input is GELU(FFN_in's output)
        assert np.array_equal(xs[(layer, "Q")], xs[(layer, "K")])
        assert np.array_equal(xs[(layer, "Q")], xs[(layer, "V")])
        blk = minilm[0].auto_model.encoder.layer[layer]
        with torch.no_grad():
            h = blk.intermediate(torch.from_numpy(xs[(layer, "FFN_in")]).float())
        assert np.allclose(xs[(layer, "FFN_out")], h.double().numpy(), atol=1e-5)
    cut = encoder_inputs(TEXTS, minilm, tokens=3)
    assert all(v.shape[0] == 3 for v in cut.values())
