"""all-MiniLM-L6-v2's encoder linear layers with their real inputs, for running them on
the device (issue #34's ``--minilm-encoder``).

Per encoder layer: the attention's ``query``, ``key``, ``value`` and ``output.dense``
(384 -> 384) and the FFN's ``intermediate.dense`` / ``output.dense`` (384 -> 1536 ->
384, :mod:`mxhw.model.ffn`). :func:`encoder_linears` gives their weights as ``(K, N)``
float64 arrays, :func:`encoder_inputs` the hidden states entering each while the float
model embeds sentences (one forward pass, hooks on every linear).
"""

from __future__ import annotations

from .ffn import _layer

__all__ = ["ATTENTION", "encoder_linears", "encoder_inputs"]

#: the attention's linear layers, by name -> attribute path in a BERT layer
ATTENTION = {"Q": "attention.self.query", "K": "attention.self.key",
             "V": "attention.self.value", "O": "attention.output.dense"}
_FFN = {"FFN_in": "intermediate.dense", "FFN_out": "output.dense"}


def _module(blk, path):
    for part in path.split("."):
        blk = getattr(blk, part)
    return blk


def encoder_linears(layer, model):
    """``{name: W}`` of encoder layer ``layer`` (Q, K, V, O, FFN_in, FFN_out): float64
    ``(K, N)`` weights, the transposes of torch's."""
    blk = _layer(model, layer)
    return {name: _module(blk, path).weight.detach().double().numpy().T.copy()
            for name, path in {**ATTENTION, **_FFN}.items()}


def encoder_inputs(texts, model, tokens=None):
    """``{(layer, name): X}``: the float64 ``(tokens, K)`` input of every linear layer of
    every encoder layer while ``model`` embeds ``texts`` (every sentence's tokens, padding
    included; the first ``tokens`` rows if given)."""
    import torch
    enc = (model[0].auto_model if hasattr(model[0], "auto_model") else model[0].model).encoder
    got, hooks = {}, []

    def hook(key):
        def grab(mod, inputs, output):
            x = inputs[0].detach()
            got.setdefault(key, []).append(x.reshape(-1, x.shape[-1]))
        return grab

    for i in range(len(enc.layer)):
        for name, path in {**ATTENTION, **_FFN}.items():
            hooks.append(_module(_layer(model, i), path).register_forward_hook(hook((i, name))))
    try:
        with torch.no_grad():
            model.encode(list(texts), convert_to_numpy=True)
    finally:
        for h in hooks:
            h.remove()
    out = {k: torch.cat(v).double().numpy() for k, v in got.items()}
    return {k: (v if tokens is None else v[:tokens]) for k, v in out.items()}
