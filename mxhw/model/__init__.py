"""mxhw.model: PyTorch models on the accelerator's arithmetic (issue #30).

>>> from mxhw.model import quantize_model, Spec, evaluate
>>> q = quantize_model(model, {"default": {"w": "mxfp4", "a": "mxfp8_e4m3", "acc": "fp32"}})

See docs/model.md.
"""

from .spec import LayerSpec, Spec, SpecError, parse_acc, bits_per_value
from .quant import MXLinear, quantize_model, fast_gemm, gemm_supported, run_on_accelerator

__all__ = ["LayerSpec", "Spec", "SpecError", "parse_acc", "bits_per_value", "MXLinear",
           "quantize_model", "fast_gemm", "gemm_supported", "run_on_accelerator",
           "load_minilm", "evaluate", "sensitivity", "search", "lut_table",
           "run_layer_on_device", "device_spec"]


def __getattr__(name):
    if name in ("load_minilm", "evaluate", "embed", "default_corpus"):
        from . import metrics as _e
        return getattr(_e, name)
    if name in ("run_layer_on_device", "device_spec"):
        from . import device as _d
        return getattr(_d, name)
    if name in ("sensitivity", "search", "lut_table", "plot_pareto"):
        from . import mixed as _s
        return getattr(_s, name)
    raise AttributeError(name)
