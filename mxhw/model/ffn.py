"""A transformer FFN block's linear layers as ONE program on the device (issue #29).

all-MiniLM-L6-v2's encoder layer ``layer``: ``intermediate.dense`` (384 -> 1536) and
``output.dense`` (1536 -> 384). On the device the two run as one program
(:meth:`mxhw.soc.driver.Accelerator.program`): ``h = x @ W1`` re-quantised on chip to
the device's activation format (blocks of 32 along the 1536 features), then ``y = h @ W2``
as fixed-point results; no host traffic between them. The biases and the GELU between
the layers are not on the device (its activation path re-quantises; it has no
nonlinearity), so the program is the block's two matmuls with on-chip re-quantisation.
Golden twin: :func:`mxhw.golden.chain.chain` on the same operands.
"""

from __future__ import annotations

import numpy as np

__all__ = ["minilm_ffn", "ffn_inputs", "ffn_golden", "ffn_emulated", "run_ffn_program"]


def _layer(model, layer):
    enc = (model[0].auto_model if hasattr(model[0], "auto_model") else model[0].model).encoder
    n = len(enc.layer)
    if not isinstance(layer, int) or isinstance(layer, bool) or not 0 <= layer < n:
        raise ValueError(f"layer must be an encoder layer index in [0, {n - 1}], "
                         f"not {layer!r}")
    return enc.layer[layer]


def minilm_ffn(layer=0, model=None):
    """``(W1, W2)``: float64 ``(384, 1536)`` and ``(1536, 384)`` weights (``(K, N)``, the
    transposes of torch's ``intermediate.dense`` and ``output.dense`` weights) of MiniLM's
    encoder layer ``layer`` (``model``: a loaded MiniLM, else
    :func:`mxhw.model.load_minilm`, offline)."""
    from .metrics import load_minilm
    blk = _layer(load_minilm() if model is None else model, layer)
    w1 = blk.intermediate.dense.weight.detach().double().numpy().T.copy()
    w2 = blk.output.dense.weight.detach().double().numpy().T.copy()
    return w1, w2


def ffn_inputs(texts, layer=0, model=None):
    """The real inputs of the FFN block of encoder layer ``layer``: the hidden states that
    enter ``intermediate.dense`` while MiniLM embeds ``texts`` (float64, ``(tokens,
    384)``, every sentence's tokens, padding included)."""
    import torch
    from .metrics import load_minilm
    model = load_minilm() if model is None else model
    got = []
    hook = _layer(model, layer).intermediate.dense.register_forward_hook(
        lambda m, i, o: got.append(i[0].detach().reshape(-1, i[0].shape[-1])))
    try:
        with torch.no_grad():
            model.encode(list(texts), convert_to_numpy=True)
    finally:
        hook.remove()
    return torch.cat(got).double().numpy()


def ffn_golden(x, w1, w2, fmt_a, fmt_b, acc):
    """golden's result of the program: ``x`` quantised to ``fmt_a`` along K, the weights
    to ``fmt_b`` along K, ``x @ w1`` re-quantised to ``fmt_a``, then ``@ w2`` under
    ``acc`` (float64 fixed-point values)."""
    from .. import golden
    from ..golden.chain import chain
    qx = golden.quantize(np.asarray(x, dtype=np.float64), fmt_a, axis=1)
    return chain(qx, [(golden.quantize(w1, fmt_b, axis=0), fmt_a),
                      (golden.quantize(w2, fmt_b, axis=0), None)], acc)


def ffn_emulated(x, w1, w2, fmt_a, fmt_b, acc):
    """The same program in ``mxhw.model``'s emulation (:func:`mxhw.model.fast_gemm`, the
    vectorised twin of ``golden.gemm``; the re-quantisation by ``golden.quantize``):
    equal to :func:`ffn_golden`, and fast enough for the full block."""
    from .. import golden
    from .quant import fast_gemm
    qx = golden.quantize(np.asarray(x, dtype=np.float64), fmt_a, axis=1)
    h = fast_gemm(qx, golden.quantize(w1, fmt_b, axis=0), acc)
    h = golden.quantize(np.asarray(h, dtype=np.float64), fmt_a, axis=1)
    return np.asarray(fast_gemm(h, golden.quantize(w2, fmt_b, axis=0), acc),
                      dtype=np.float64)


def run_ffn_program(acc, x, w1, w2):
    """Upload ``x``, ``w1``, ``w2`` to ``acc`` (its formats; the device needs the
    activation path), run ``linear(linear(x, w1, fmt_a), w2, None)`` as one program and
    download the result. Returns ``(Y, cycles)``: ``acc.last_cycles`` of the program;
    the device tensors are freed."""
    cfg = acc.layer_caps()
    if cfg["out_fmt"] is None:
        raise ValueError("the FFN program needs a device built with the on-chip "
                         "activation path (SoCConfig out_fmt)")
    held = [acc.upload(x), acc.upload_weights(w1), acc.upload_weights(w2)]
    try:
        with acc.program():
            held.append(acc.linear(held[0], held[1], out_fmt=cfg["out_fmt"]))
            y = acc.linear(held[3], held[2], out_fmt=None)
        return acc.download(y), dict(acc.last_cycles)
    finally:
        for t in held:
            if not t.freed:
                acc.free(t)
