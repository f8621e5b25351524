"""A MiniLM encoder layer's linear layers on an ``Accelerator`` (issue #30, item 5).

:func:`run_layer_on_device` quantises all-MiniLM-L6-v2 with the device's own formats and
accumulation (:func:`device_spec`), embeds sentences once in emulation and once with the
six ``nn.Linear`` layers of one encoder layer (query, key, value, attention output, FFN
in, FFN out) running their matmuls on the device through
:func:`mxhw.model.run_on_accelerator`; everything else (embeddings, softmax, LayerNorm,
GELU, the other layers, pooling) stays in PyTorch. The two embeddings must be equal bit
for bit: the device computes ``golden.gemm`` with ``fixed(acc_width, acc_frac)``, and so
does the emulation.

``python -m mxhw.model device --layer 0 --rows 4 --cols 4 [--backend compiled]`` prints
the figure (sentences, tokens, matmuls, MACs, equal or not, seconds).
"""

from __future__ import annotations

import time

import torch

from .quant import mx_layers, quantize_model, run_on_accelerator
from .spec import Spec, SpecError

__all__ = ["device_spec", "layer_names", "run_layer_on_device"]

#: the linear layers of one BERT encoder layer, as named under ``encoder.layer.<i>.``
LAYER_LINEARS = ("attention.self.query", "attention.self.key", "attention.self.value",
                 "attention.output.dense", "intermediate.dense", "output.dense")


def device_spec(acc_dev) -> Spec:
    """Every linear layer in the device's formats (``fmt_a`` activations, ``fmt_b``
    weights) and accumulation (``fixed(acc_width, acc_frac)``, saturating, floor)."""
    cfg = acc_dev.gemm_config()
    if not cfg["saturate"] or cfg["rne"]:
        raise SpecError("the device's accumulator wraps or rounds to nearest; a spec's "
                        "'fixed(W,F)' saturates and floors")
    return Spec.uniform(cfg["fmt_b"], cfg["fmt_a"],
                        f"fixed({cfg['acc_width']},{cfg['acc_frac']})")


def layer_names(qmodel, layer: int) -> list[str]:
    """Names of the MXLinear layers of encoder layer ``layer`` (six for MiniLM)."""
    tail = tuple(f"encoder.layer.{layer}.{n}" for n in LAYER_LINEARS)
    names = [n for n, _ in mx_layers(qmodel) if n.endswith(tail)]
    if len(names) != len(LAYER_LINEARS):
        n_layers = len({n.split("encoder.layer.")[1].split(".")[0]
                        for n, _ in mx_layers(qmodel) if "encoder.layer." in n})
        raise SpecError(f"layer must be in 0..{n_layers - 1}, not {layer!r}")
    return names


class _Count:
    """Counts the device's matmuls and their multiply-accumulates (wraps ``matmul``)."""

    def __init__(self, acc_dev):
        self.dev, self.calls, self.macs = acc_dev, 0, 0

    def __getattr__(self, name):
        return getattr(self.dev, name)

    def matmul(self, a, b, *args, **kwargs):
        self.calls += 1
        self.macs += a.shape[0] * a.shape[1] * b.shape[1]
        return self.dev.matmul(a, b, *args, **kwargs)


def run_layer_on_device(acc_dev, texts, layer: int = 0, model=None) -> dict:
    """Embed ``texts`` with MiniLM quantised to the device's formats, in emulation and
    with encoder layer ``layer``'s linear layers on ``acc_dev``; compare bit for bit.

    Returns ``equal`` (bool), ``max_abs_diff``, ``sentences``, ``tokens`` (rows of each
    matmul), ``matmuls`` and ``macs`` (on the device), ``seconds_emulated``,
    ``seconds_device``, ``layers`` (the names) and ``spec`` (its TOML).
    """
    from .metrics import embed, load_minilm
    texts = list(texts)
    if not texts:
        raise SpecError("run_layer_on_device needs at least one sentence")
    base = load_minilm() if model is None else model
    spec = device_spec(acc_dev)
    q = quantize_model(base, spec)
    names = layer_names(q, layer)
    t = time.time()
    want = embed(q, texts)
    t_emul = time.time() - t
    counted = _Count(acc_dev)
    run_on_accelerator(q, counted, names=names)
    try:
        t = time.time()
        got = embed(q, texts)
        t_dev = time.time() - t
    finally:
        run_on_accelerator(q, None, names=names)
    tokens = counted.macs // max(1, sum(m.in_features * m.out_features
                                        for n, m in mx_layers(q) if n in names))
    return {"equal": bool(torch.equal(got, want)),
            "max_abs_diff": float((got - want).abs().max()),
            "sentences": len(texts), "tokens": int(tokens), "matmuls": counted.calls,
            "macs": counted.macs, "seconds_emulated": round(t_emul, 2),
            "seconds_device": round(t_dev, 2), "layers": names, "spec": spec.to_toml()}
