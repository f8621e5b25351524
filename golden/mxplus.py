"""MX+ (Lee et al., 2025): the block maximum re-uses its exponent bits as mantissa.

``mxfp4_plus``, ``mxfp6_plus``, ``mxfp8_plus``: the OCP MX formats ``mxfp4_e2m1``,
``mxfp6_e2m3``, ``mxfp8_e4m3`` (32 elements, E8M0 scale, OCP floor rule), with one change.
Under the floor rule the scaled block maximum ``|V_bm| / X`` lies in
``[2**emax, 2**(emax+1))``: its exponent is always ``emax`` and need not be stored. MX+
stores that one element (the *extended element*, BM) as the same ``b``-bit code
re-read as ``sign | f`` with ``k = b - 1`` fraction bits:

    value = (-1)**sign * 2**emax * (1 + f / 2**k),    f in [0, 2**k)

(``k`` = 3, 5, 7: FP4 BM is S1.3 in [4, 7.5], FP6 E2M3 BM S1.5 in [4, 7.875], FP8 E4M3
BM S1.7 in [256, 510]), and the block stores its position, ``index`` (5 bits for 32).
Storage: ``b + (8 + 5) / 32`` bits per value. Every other element is the plain MX code.

Golden's choices where the paper's description leaves one open:

* Index: the first position (lowest index) holding the largest ``|V|`` of the block
  (padding never wins: it is zero and lies after the real elements).
* BM rounding: RNE of ``|V_bm| / X`` on the extended grid, saturating at
  ``2**emax * (2 - 2**-k)`` (a carry out of the binade cannot change the stored exponent).
* A block whose scale code is 0 (``X = 2**-127``: all-zero blocks, and blocks whose
  maximum lies below ``2**(emax-126)``, where the floor exponent is clamped and the scaled
  maximum may fall below ``2**emax``) is stored and decoded as a plain MX block: the decoder
  ignores the index (stored as 0) when the scale code is 0.
* NaN/Inf: as the OCP formats in golden: a block with NaN or +-Inf gets the NaN scale
  (0xFF), element codes 0, index 0, and dequantises to NaN. The extended code has no NaN
  (the FP8 E4M3 NaN pattern S.1111.111 is the BM value ``2**8 * (1 + 127/128)``).
* Scale clamped high (``|V| >= 2**(128 + emax)``, float64 inputs only): the BM saturates
  to its largest value, the others as in plain MX.

Consequences (tested): the BM's error is never larger than plain MX's (its grid contains
the plain grid's top binade and it saturates no lower); every other element has exactly the
plain MX code; dequantise(quantise(v)) == v for every ``v`` whose BM lies on the extended
grid and whose other elements lie on the plain grid (at the same scale).

``golden.gemm`` multiplies MX+ exactly: the BM's value is ``(2**k + f) * 2**(emax - k)``,
on the element format's integer grid (``emax - k >= lsb_exp``).
"""

from __future__ import annotations

import numpy as np

from .quantize import MXArray, block_view, expand_blocks, quantize as _plain_quantize, unblock

__all__ = ["quantize", "element_values", "ext_bits", "ext_decode", "ext_encode",
           "bm_mask", "element_ints"]


def ext_bits(fmt) -> int:
    """``k``: fraction bits of the extended element."""
    return fmt.element.bits - 1


def ext_decode(fmt, codes) -> np.ndarray:
    """Values (without the block scale) of extended-element codes."""
    k, emax = ext_bits(fmt), fmt.element.emax
    codes = np.asarray(codes, dtype=np.int64)
    mag = np.ldexp(((1 << k) + (codes & ((1 << k) - 1))).astype(np.float64), emax - k)
    return np.where(codes >> k & 1, -mag, mag)


def ext_encode(fmt, scaled) -> np.ndarray:
    """Extended codes of scaled values ``V / X`` (RNE, saturating into the top binade)."""
    k, emax = ext_bits(fmt), fmt.element.emax
    scaled = np.asarray(scaled, dtype=np.float64)
    f = np.rint(np.ldexp(np.abs(scaled), k - emax)) - (1 << k)  # rint: ties to even
    f = np.clip(f, 0, (1 << k) - 1).astype(np.int64)
    return np.where(np.signbit(scaled), f | (1 << k), f)


def bm_mask(mx: MXArray) -> np.ndarray:
    """Boolean per element: it is stored in the extended encoding."""
    blk = expand_blocks(mx.index, mx.fmt, mx.shape, mx.axis)
    live = expand_blocks(mx.scales != 0, mx.fmt, mx.shape, mx.axis)
    pos = np.indices(mx.shape)[mx.axis] % mx.fmt.block
    return live & (pos == blk)


def element_values(mx: MXArray) -> np.ndarray:
    """Decoded elements without their scales, the extended ones included."""
    m = bm_mask(mx)
    return np.where(m, ext_decode(mx.fmt, mx.elements), mx.fmt.element.decode(mx.elements))


def element_ints(mx: MXArray, lsb: int) -> tuple[np.ndarray, np.ndarray]:
    """``(ints, mask)``: the extended elements as integers on the grid ``2**lsb`` and the
    mask of their positions (for golden.arith)."""
    k, emax = ext_bits(mx.fmt), mx.fmt.element.emax
    m = bm_mask(mx)
    c = mx.elements
    ints = ((1 << k) + (c & ((1 << k) - 1))) << (emax - k - lsb)
    return np.where(c >> k & 1, -ints, ints), m


def quantize(x: np.ndarray, fmt, axis: int) -> MXArray:
    """MX+ quantisation of float64 ``x`` (already checked, ``axis`` normalised)."""
    plain = _plain_quantize(x, _base(fmt), axis)
    xb, grid = block_view(np.where(np.isfinite(x), x, 0.0), fmt, axis)
    idx = np.abs(xb).argmax(axis=-1)  # first position of the largest magnitude
    sb, _ = block_view(expand_blocks(plain.scales, fmt, x.shape, axis).astype(np.float64),
                       fmt, axis)
    scode = sb[..., 0].astype(np.int64)
    live = (scode != 0) & (scode != fmt.scale.nan_code)
    idx = np.where(live, idx, 0)
    codes, _ = block_view(plain.elements.astype(np.float64), fmt, axis)
    codes = codes.astype(np.int64)
    v = np.take_along_axis(xb, idx[..., None], axis=-1)[..., 0]
    scaled = np.ldexp(v, -(scode - fmt.scale.bias))  # exact (V / X, X = 2**(code - 127))
    ext = ext_encode(fmt, scaled)
    cur = np.take_along_axis(codes, idx[..., None], axis=-1)[..., 0]
    np.put_along_axis(codes, idx[..., None], np.where(live, ext, cur)[..., None], axis=-1)
    index = idx
    if fmt.block is not None and not isinstance(fmt.block, tuple):
        index = np.moveaxis(index, -1, axis)
    return MXArray(fmt=fmt, shape=tuple(x.shape), axis=axis,
                   elements=np.ascontiguousarray(unblock(codes, fmt, x.shape, axis)),
                   scales=plain.scales,
                   index=np.ascontiguousarray(np.asarray(index, np.int64).reshape(grid)))


def _base(fmt):
    from . import formats as F
    return F.get({"fp4_e2m1": "mxfp4_e2m1", "fp6_e2m3": "mxfp6_e2m3",
                  "fp8_e4m3": "mxfp8_e4m3"}[fmt.element.name])
