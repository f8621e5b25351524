"""Shared-exponent alignment: an MXFP block to a block of fixed-point integers (MXFP -> BFP).

Golden twin of :class:`mxhw.dequant.Aligner`.

The semantics, exactly (``F = out_width - 2`` fractional bits):

* Every finite element of the floating-point format ``fmt`` is
  ``(-1)**s * sig * 2**(e - man_bits)`` with ``sig`` the significand with its hidden bit
  and ``e`` its unbiased exponent (``1 - bias`` for subnormals and zeros).
* The **reference exponent** ``shared_exp`` of a block is the largest ``e`` over its
  *non-zero finite* elements; a block with no such element (all zeros and/or non-finite)
  gets the format's smallest exponent ``1 - bias``.
* Output ``i`` is a signed ``out_width``-bit integer ``q_i`` with LSB weight
  ``2**(shared_exp - F)`` (times the block scale): the element with the reference exponent
  has ``|q| in [2**F, 2**(F+1))`` before rounding, so every value fits.
* Rounding acts on the magnitude (sign-magnitude), then the sign is applied:
  ``"truncate"`` drops the bits below the LSB (toward zero, so ``-x`` aligns to ``-q(x)``);
  ``"rne"`` rounds to nearest, ties to an even ``q`` (guard bit and sticky OR of the rest).
* Saturation: RNE can carry the largest magnitude to ``2**(F+1)``, which does not fit; it
  saturates to ``2**(F+1) - 1`` (sign kept). Truncation never saturates.
* Non-finite elements (E4M3 NaN, E5M2 Inf/NaN) give ``q = 0``, take no part in the
  reference exponent, and set the block's ``nan`` flag (:func:`align_nan`); so does a NaN
  scale (E8M0 code 0xFF).
* The scale is passed through unchanged: the value of element ``i`` is (up to rounding)
  ``2**(scale - 127) * q_i * 2**(shared_exp - F)``.
"""

from __future__ import annotations

import numpy as np

from . import formats as _formats
from .formats import BlockFormat, ElementFormat
from .params import check_choice, check_int

__all__ = ["ALIGN_ROUNDING", "align_block", "align_nan", "element_parts", "align_format"]

#: Rounding modes of the aligner.
ALIGN_ROUNDING = ("truncate", "rne")


def align_format(fmt) -> ElementFormat:
    """The fp element format of ``fmt`` (an element or single-candidate block format, or a
    name); ``TypeError``/``ValueError`` otherwise."""
    if isinstance(fmt, str):
        fmt = _formats.get(fmt)
    if isinstance(fmt, BlockFormat):
        if len(fmt.candidates) != 1:
            raise ValueError(f"fmt must have one element format, not {len(fmt.candidates)} "
                             f"({fmt.name!r})")
        fmt = fmt.element
    if not isinstance(fmt, ElementFormat):
        raise TypeError(f"fmt must be a format name or descriptor, not {fmt!r}")
    if fmt.kind != "fp":
        raise ValueError(f"fmt must be a floating-point element format, not {fmt.name!r} "
                         f"(kind {fmt.kind!r})")
    return fmt


def element_parts(fmt, code):
    """``(sign, sig, e, finite)`` of one code (Python ints) as described in the module
    docstring."""
    code = int(code)
    man = code & ((1 << fmt.man_bits) - 1)
    ef = (code >> fmt.man_bits) & ((1 << fmt.exp_bits) - 1)
    sign = (code >> (fmt.bits - 1)) & 1
    sig = man | ((ef != 0) << fmt.man_bits)
    e = max(ef, 1) - fmt.bias
    finite = not bool(fmt.nonfinite_mask[code])
    return sign, sig, e, finite


def _round_shift(x, r, rounding):
    """``x >> r`` (``x >= 0``; ``r`` may be negative: exact left shift) rounded."""
    if r <= 0:
        return x << -r
    q = x >> r
    if rounding == "rne":
        rem = x & ((1 << r) - 1)
        half = 1 << (r - 1)
        if rem > half or (rem == half and q & 1):
            q += 1
    return q


def _check(fmt, out_width, rounding):
    fmt = align_format(fmt)
    check_int("out_width", out_width, 2)
    check_choice("rounding", rounding, ALIGN_ROUNDING)
    return fmt


def align_block(codes, fmt, out_width, rounding="truncate"):
    """Align blocks of element codes to their largest exponent.

    Parameters
    ----------
    codes : array_like of int, shape ``(..., k)``
        Element codes of ``fmt``; the last axis is the block.
    fmt : str, ElementFormat or BlockFormat
        An OCP floating-point element format (or the MX block format holding one).
    out_width : int
        Width of the two's-complement outputs, >= 2; ``out_width - 2`` fractional bits.
    rounding : "truncate" or "rne"

    Returns
    -------
    ints : np.ndarray of int64 (object for ``out_width > 62``), shape ``(..., k)``
        ``q_i`` as in the module docstring.
    shared_exp : np.ndarray of int64, shape ``(...)``
        The reference exponent (unbiased).
    """
    fmt = _check(fmt, out_width, rounding)
    codes = np.asarray(codes)
    F = out_width - 2
    lim = (1 << (F + 1)) - 1
    flat = codes.reshape(-1, codes.shape[-1]) if codes.ndim else codes.reshape(1, 1)
    ints = np.zeros(flat.shape, dtype=object)
    exps = np.zeros(flat.shape[0], dtype=np.int64)
    for b, block in enumerate(flat):
        parts = [element_parts(fmt, c) for c in block]
        es = [e for s, sig, e, fin in parts if fin and sig != 0]
        ref = max(es) if es else 1 - fmt.bias
        exps[b] = ref
        for i, (s, sig, e, fin) in enumerate(parts):
            if not fin:
                continue
            # value = sig * 2**(e - man_bits) = (sig * 2**(e - man_bits - ref + F)) LSBs
            q = _round_shift(sig, ref - e + fmt.man_bits - F, rounding)
            q = min(q, lim)
            ints[b, i] = -q if s else q
    dtype = np.int64 if out_width <= 62 else object
    return (ints.astype(dtype).reshape(codes.shape),
            exps.reshape(codes.shape[:-1]))


def align_nan(codes, fmt, scales=None):
    """Per block: True if an element code is non-finite or the E8M0 ``scales`` code (shape
    ``codes.shape[:-1]``) is NaN (0xFF)."""
    fmt = align_format(fmt)
    codes = np.asarray(codes)
    bad = fmt.nonfinite_mask[codes].any(axis=-1)
    if scales is not None:
        bad = bad | (np.asarray(scales) == 0xFF)
    return bad
