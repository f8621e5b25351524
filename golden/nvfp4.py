"""NVFP4: FP4 E2M1 elements, blocks of 16, FP8 E4M3 block scales, an FP32 tensor scale.

The quantiser is torchao's (``torchao.prototype.mx_formats.nvfp4_tensor``:
``nvfp4_quantize(x, 16, per_tensor_amax_to_scale(max|x|))``), step by step in IEEE
float32 arithmetic (NumPy ``float32``: RNE, subnormals kept, as torch on CPU):

1. ``x`` is rounded to float32 (RNE; exact for float32 and bfloat16 inputs).
2. Per-tensor scale ``T = RN32(amax_t / 2688)`` with ``amax_t = max|x|`` over the finite
   values and ``2688 = 448 * 6`` (E4M3 max times E2M1 max). Stored as its float32 bits in
   :attr:`MXArray.tensor_scale`.
3. Per block of 16 (along ``axis``, zero padded): ``b = RN32(amax_b / 6)``,
   ``s = RN32(b / T)``, block scale code ``S = E4M3_RNE(clamp(s, 2**-6, 448))`` (the lower
   clamp is E4M3's smallest normal, torchao's ``E4M3_EPS``), value ``sv``.
4. ``total = RN32(T * sv)`` (float32 product: *not* exact), element code
   ``E2M1_RNE(clamp(RN32(x / total), -6, 6))``.

Dequantise is exact in float64: ``T * sv * element`` (24 + 4 + 2 significant bits). The
quantiser divides by ``RN32(T * sv)`` and the decoder multiplies by the exact ``T * sv``: the
two differ in the last float32 place at most; golden keeps torchao's codes (bit for bit)
and the exact meaning of those codes.

Choices where torchao yields NaN codes or none (documented in docs/FORMATS.md; torchao
produces NaN block scales and garbage element codes in these cases):

* a block containing NaN or +-Inf: block scale code 0x7F (E4M3 NaN), its elements code 0,
  dequantising to NaN; the per-tensor scale is computed over the finite values only;
* no finite nonzero value (an all-zero tensor): ``T = 0.0`` (torchao's too), block scale
  code 0x08 (``2**-6``, torchao's code for a zero block), elements 0: dequantises to 0;
* a nonzero ``amax_t`` whose ``T`` underflows to 0 (``amax_t < 2688 * 2**-150``): ValueError.

``golden.gemm`` does not take NVFP4 (an E4M3 block scale is not a power of two); it raises
(dequantise and multiply in float64 instead: products of two NVFP4 values are exact there).
"""

from __future__ import annotations

import numpy as np

from .quantize import MXArray, block_view, unblock

__all__ = ["quantize", "tensor_scale_value", "TENSOR_DIVISOR"]

#: ``F8E4M3_MAX * F4_E2M1_MAX`` of torchao's ``per_tensor_amax_to_scale``.
TENSOR_DIVISOR = np.float32(448.0 * 6.0)
_NAN32 = 0x7FC00000


def tensor_scale_value(mx: MXArray) -> float:
    """The FP32 per-tensor scale of an NVFP4 MXArray, as a float64 (NaN for a NaN code)."""
    return float(np.array(mx.tensor_scale, dtype=np.int64).astype(np.uint32)
                 .view(np.float32).reshape(-1)[0])


def quantize(x: np.ndarray, fmt, axis: int) -> MXArray:
    """NVFP4 quantisation of float64 ``x`` (already checked, ``axis`` normalised)."""
    elem, scale = fmt.element, fmt.scale
    x32 = x.astype(np.float32)
    xb, grid = block_view(x32, fmt, axis)
    bad = ~np.isfinite(xb).all(axis=-1)
    xb = np.where(bad[..., None], np.float32(0), xb)
    amax_t = np.abs(xb).max() if xb.size else np.float32(0)
    t = np.float32(amax_t) / TENSOR_DIVISOR
    if amax_t > 0 and t == 0:
        raise ValueError(f"{fmt.name}: the per-tensor scale of max|x| = {float(amax_t)!r} "
                         f"underflows float32")
    amax_b = np.abs(xb).max(axis=-1)
    six = np.float32(elem.max_magnitude)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = (amax_b / six) / t if t > 0 else np.zeros_like(amax_b)
    s = np.clip(np.where(np.isnan(s), np.float32(0), s), np.float32(2.0 ** -6),
                np.float32(scale.max_magnitude))
    scodes = scale.encode(s.astype(np.float64), rounding="rne", saturate=True)
    sval = scale.decode(scodes).astype(np.float32)
    total = t * sval
    with np.errstate(divide="ignore", invalid="ignore"):
        data = np.where(total[..., None] > 0, xb / np.where(total > 0, total, 1)[..., None],
                        np.float32(0))
    data = np.clip(data, -six, six)
    codes = elem.encode(data.astype(np.float64), rounding=fmt.rounding, saturate=True)
    if bad.any():
        scodes = np.where(bad, scale.nan_code, scodes)
        codes = np.where(bad[..., None], 0, codes)
    scodes = np.asarray(scodes, dtype=np.int64)
    if fmt.block is not None and not isinstance(fmt.block, tuple):
        scodes = np.moveaxis(scodes, -1, axis)
    tbits = int(np.float32(t).view(np.uint32))
    return MXArray(fmt=fmt, shape=tuple(x.shape), axis=axis,
                   elements=np.ascontiguousarray(unblock(codes, fmt, x.shape, axis),
                                                 dtype=np.int64),
                   scales=np.ascontiguousarray(scodes.reshape(grid)),
                   tensor_scale=np.full((1,) * x.ndim, tbits, dtype=np.int64))
