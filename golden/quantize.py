"""Block quantisation: float tensors to :class:`MXArray` and back.

One algorithm serves every :class:`~.formats.BlockFormat`:

1. Cut the tensor into blocks (``fmt.block`` values along ``axis``, 2-D tiles over the
   last two axes, or, for a per-tensor format (``fmt.block is None``), the whole tensor as
   one block). A length that is not a multiple of the block is padded with zeros for
   the computation; zeros change no block maximum, so the real elements' codes are those
   of the unpadded algorithm, and the padding is dropped from the result.
2. For each candidate element format, compute the block's scale by ``fmt.scale_rule`` and
   encode ``V / X`` with ``fmt.rounding``, saturating.
3. With several candidates, keep per block the one with the smallest squared error
   ``sum((V - X * P)**2)``: compared in float64, and exactly (Fractions) where two
   candidates' errors are within a small relative margin; exact ties go to the first.

NaN and Inf (OCP v1.0 leaves Inf open; we take the safe choice): a block that contains NaN
or +-Inf gets the scale's NaN code, and its element codes are 0; it dequantises to NaN.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from . import formats as _formats
from .formats import BlockFormat, ElementFormat

__all__ = ["MXArray", "quantize", "to_numpy", "scale_exponents", "block_view", "unblock"]


def to_numpy(x) -> np.ndarray:
    """A float64 NumPy copy of a NumPy array, a torch tensor (any float dtype) or a list."""
    if type(x).__module__.startswith("torch"):
        import torch  # optional dependency, only when given a tensor
        x = x.detach().to(device="cpu", dtype=torch.float64).numpy()
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiu":
        # ml_dtypes (bfloat16, float8...) are kind 'V'; they cast exactly to float64
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"cannot quantise an array of dtype {arr.dtype}") from None
    return np.array(arr, dtype=np.float64)


@dataclass(frozen=True, eq=False)
class MXArray:
    """A quantised tensor: integer codes of scales and elements.

    Attributes
    ----------
    fmt : BlockFormat
    shape : tuple
        Shape of the original tensor (and of :attr:`elements`).
    axis : int
        The quantised axis (non-negative). For 2-D tile formats: the last axis. For
        per-tensor formats: the ``axis`` given (it does not affect the codes).
    elements : np.ndarray of int64, shape ``shape``
        One code per value, unpacked.
    scales : np.ndarray of int64
        One scale code per block: ``shape`` with the blocked axis (axes) divided by the
        block size, rounded up; for a per-tensor format, shape ``(1,) * ndim`` (one code,
        broadcastable against the tensor).
    modes : np.ndarray of int64 or None
        Index into ``fmt.candidates`` per block (same shape as ``scales``); ``None`` when
        the format has a single candidate.
    zeros : np.ndarray of int64 or None
        Zero-point code per block (same shape as ``scales``) for formats with a
        ``zero_point`` (``"minmax"`` rule); ``None`` otherwise.
    """

    fmt: BlockFormat
    shape: tuple
    axis: int
    elements: np.ndarray
    scales: np.ndarray
    modes: np.ndarray | None = None
    zeros: np.ndarray | None = None

    def scale_values(self) -> np.ndarray:
        """Decoded scales (float64, NaN for a NaN scale), shape of :attr:`scales`.

        A signed-integer scale format (kind ``"int"``, MASE-style) holds the exponent
        ``e``; its scale value is ``2**e``.
        """
        if self.fmt.scale.kind == "int":
            return np.ldexp(1.0, self.fmt.scale.decode(self.scales).astype(np.int64))
        return self.fmt.scale.decode(self.scales)

    def element_values(self) -> np.ndarray:
        """Decoded elements without their scales (float64), shape :attr:`shape`."""
        if self.modes is None:
            return self.fmt.element.decode(self.elements)
        modes = expand_blocks(self.modes, self.fmt, self.shape, self.axis)
        out = np.empty(self.shape, dtype=np.float64)
        for i, c in enumerate(self.fmt.candidates):
            sel = modes == i
            out[sel] = c.decode(self.elements[sel])
        return out

    def dequantize(self) -> np.ndarray:
        """The values the codes stand for: ``scale * element``, float64, shape :attr:`shape`.

        Exact: every product of a decoded scale and a decoded element is a float64.
        """
        x = expand_blocks(self.scale_values(), self.fmt, self.shape, self.axis)
        if self.zeros is not None:
            z = expand_blocks(self.fmt.zero_point.decode(self.zeros), self.fmt, self.shape,
                              self.axis)
            return x * (self.element_values() - z)
        return x * self.element_values()


def _norm_axis(axis, ndim):
    if not isinstance(axis, (int, np.integer)):
        raise TypeError(f"axis must be an integer, not {axis!r}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} is out of range for a {ndim}-D tensor")
    return int(axis) % ndim


def block_view(x: np.ndarray, fmt: BlockFormat, axis: int) -> tuple[np.ndarray, tuple]:
    """Pad and reshape ``x`` into ``(..., n_blocks..., block_size)``.

    Returns the blocked array and the shape of the scales (block grid). A per-tensor
    format gives ``(1, x.size)`` and the grid ``(1,) * x.ndim``.
    """
    if fmt.block is None:
        return x.reshape(1, x.size), (1,) * x.ndim
    if isinstance(fmt.block, tuple):
        if x.ndim < 2:
            raise ValueError(f"{fmt.name} has 2-D tile blocks; it needs a tensor of >= 2 dims")
        r, c = fmt.block
        *lead, m, n = x.shape
        mb, nb = -(-m // r), -(-n // c)
        pad = [(0, 0)] * len(lead) + [(0, mb * r - m), (0, nb * c - n)]
        xp = np.pad(x, pad)
        xb = xp.reshape(*lead, mb, r, nb, c)
        xb = np.moveaxis(xb, -3, -2).reshape(*lead, mb, nb, r * c)
        return xb, (*lead, mb, nb)
    k = fmt.block
    xm = np.moveaxis(x, axis, -1)
    n = xm.shape[-1]
    nb = -(-n // k)
    xp = np.pad(xm, [(0, 0)] * (xm.ndim - 1) + [(0, nb * k - n)])
    xb = xp.reshape(*xm.shape[:-1], nb, k)
    grid = list(x.shape)
    grid[axis] = nb
    return xb, tuple(grid)


def unblock(xb: np.ndarray, fmt: BlockFormat, shape: tuple, axis: int) -> np.ndarray:
    """Inverse of :func:`block_view`: drop padding and restore ``shape``."""
    if fmt.block is None:
        return xb.reshape(shape)
    if isinstance(fmt.block, tuple):
        r, c = fmt.block
        *lead, mb, nb, _ = xb.shape
        x = np.moveaxis(xb.reshape(*lead, mb, nb, r, c), -2, -3).reshape(*lead, mb * r, nb * c)
        return x[..., :shape[-2], :shape[-1]]
    moved = [s for i, s in enumerate(shape) if i != axis] + [shape[axis]]
    x = xb.reshape(*xb.shape[:-2], -1)[..., :shape[axis]]
    return np.moveaxis(x.reshape(moved), -1, axis)


def expand_blocks(per_block: np.ndarray, fmt: BlockFormat, shape: tuple, axis: int):
    """Broadcast one value per block back to every element position of ``shape``."""
    per_block = np.asarray(per_block)
    if fmt.block is None:
        return np.array(np.broadcast_to(per_block.reshape((1,) * len(shape)), shape))
    if isinstance(fmt.block, tuple):
        r, c = fmt.block
        e = np.repeat(np.repeat(per_block, r, axis=-2), c, axis=-1)
        return e[..., :shape[-2], :shape[-1]]
    e = np.repeat(per_block, fmt.block, axis=axis)
    return np.take(e, np.arange(shape[axis]), axis=axis)


def scale_exponents(amax: np.ndarray, elem: ElementFormat, fmt: BlockFormat) -> np.ndarray:
    """Unbiased power-of-two scale exponents (int64) for block maxima ``amax`` (> 0)."""
    m, e = np.frexp(amax)  # amax = m * 2**e, m in [0.5, 1): floor(log2 amax) = e - 1
    floor_log2 = e.astype(np.int64) - 1
    if fmt.scale_rule == "ocp_floor":
        return floor_log2 - elem.emax
    # ceil_pow2: smallest X = 2**s with amax / X < 2**(emax+1), i.e. amax <= 2**(s+emax+1)
    ceil_log2 = np.where(m == 0.5, floor_log2, floor_log2 + 1)
    return ceil_log2 - elem.emax - 1


def _scale_range(scale: ElementFormat):
    """(min, max) unbiased exponent a power-of-two scale format can hold."""
    if scale.kind == "pow2":
        top = scale.n_codes - (2 if scale.special == "fn" else 1)
        return -scale.bias, top - scale.bias
    # a signed integer exponent (MASE-style): code is the exponent in two's complement
    half = 1 << (scale.bits - 1)
    return -half, half - 1


def _encode_exponent(scale: ElementFormat, e: np.ndarray) -> np.ndarray:
    if scale.kind == "pow2":
        return e + scale.bias
    return np.where(e < 0, e + scale.n_codes, e)


def _ratio_scale(span, elem, fmt):
    """Scale codes and values of ``span / max_elem`` per block, RNE (saturating) in the
    scale format; a block whose ``span`` is 0 gets scale 1.0. Raises ValueError if a scale
    of a nonzero block underflows to zero."""
    scale = fmt.scale
    xval = np.where(span > 0, span / elem.max_magnitude, 1.0)
    scodes = scale.encode(xval, rounding="rne", saturate=True)
    sval = scale.decode(scodes)
    if np.any(sval[span > 0] <= 0):
        raise ValueError(f"{fmt.name}: a block scale underflowed to zero in {scale.name}")
    return scodes, np.where(sval > 0, sval, 1.0)


def _quantize_candidate(xb, amax, elem, fmt):
    """Scale codes, scale values and element codes for one candidate element format."""
    scale = fmt.scale
    if fmt.scale_rule == "minmax":
        lo = np.minimum(xb.min(axis=-1), 0.0)
        hi = np.maximum(xb.max(axis=-1), 0.0)
        span = hi - lo
        scodes, sval = _ratio_scale(span, elem, fmt)
        zcodes = fmt.zero_point.encode(-lo / sval, rounding="rne", saturate=True)
        zval = fmt.zero_point.decode(zcodes)
        codes = elem.encode(xb / sval[..., None] + zval[..., None], rounding=fmt.rounding,
                            saturate=True)
        return scodes, sval, codes, zcodes
    if fmt.scale_rule == "absmax":
        # the quotient in float64 (RNE), then RNE (saturating) to the scale format; an
        # all-zero block gets scale 1.0. For a binary32 scale (per-tensor FP8) this is
        # float32(amax / max_elem), the float64 -> float32 cast of NumPy.
        scodes, sval = _ratio_scale(amax, elem, fmt)
        # x / scale in float64 (RNE), then encoded RNE below: for short scales (FP16,
        # binary32) a float64 quotient equals an element rounding midpoint only if the exact
        # quotient does, so this is one RNE rounding of the exact x / scale
        scaled = xb / sval[..., None]
    else:
        lo, hi = _scale_range(scale)
        se = np.where(amax > 0, scale_exponents(np.where(amax > 0, amax, 1.0), elem, fmt), lo)
        se = np.clip(se, lo, hi)
        scodes = _encode_exponent(scale, se)
        sval = np.ldexp(1.0, se)
        scaled = np.ldexp(xb, -se[..., None])  # exact unless it underflows below 2**-1022
        # keep the sign of a tiny value that underflowed to zero (matters to "floor")
        lost = (scaled == 0) & (xb != 0)
        if lost.any():
            scaled = np.where(lost, np.copysign(5e-324, xb), scaled)
    codes = elem.encode(scaled, rounding=fmt.rounding, saturate=True)
    return scodes, sval, codes, None


#: Relative margin under which two float64 block errors are re-compared exactly. The
#: float64 sum of n squared differences is within about (n + 2) * 2**-53 relative of the
#: exact sum, far below this margin for any block size we use.
_TIE_MARGIN = 1e-9


def _exact_sq_err(x, y) -> Fraction:
    """Exact ``sum((x - y)**2)`` of two float64 vectors, as a Fraction."""
    return sum(((Fraction(float(a)) - Fraction(float(b))) ** 2 for a, b in zip(x, y)),
               Fraction(0))


def _exact_less(err, best_err, xb, sval, vals, best_y):
    """Per block: is the candidate's squared error strictly below the best so far?

    Decided in float64 where the two errors differ by more than :data:`_TIE_MARGIN`
    (relative), and exactly (Fractions over the float64 inputs and the exact dequantised
    values) where they are closer, so that ties and near-ties follow the exact errors.
    """
    better = err < best_err
    hi = np.maximum(err, best_err)
    close = np.abs(err - best_err) <= _TIE_MARGIN * hi
    y = sval[..., None] * vals  # exact: power-of-two or short scales times short values
    # both reproduce the block exactly (e.g. all-zero blocks): a true tie, no Fractions
    close &= ~((hi == 0) & (xb == y).all(axis=-1) & (xb == best_y).all(axis=-1))
    idx = np.argwhere(close)
    if idx.size:
        for i in map(tuple, idx):
            better[i] = _exact_sq_err(xb[i], y[i]) < _exact_sq_err(xb[i], best_y[i])
    return better


def quantize(x, fmt, axis: int = -1) -> MXArray:
    """Quantise ``x`` (NumPy array, torch tensor or nested list) to the block format ``fmt``.

    Parameters
    ----------
    x : array_like or torch.Tensor
        Any shape and float dtype.
    fmt : str or BlockFormat
        A block format name (``"mxfp4"``) or descriptor.
    axis : int
        The axis blocks run along. Ignored by 2-D tile formats (they tile the last two axes);
        checked and recorded but without effect for per-tensor formats (one block).

    Raises ValueError for a 0-d tensor, and for an empty tensor with a per-tensor format.
    """
    fmt = _formats.get(fmt)
    if not isinstance(fmt, BlockFormat):
        raise TypeError(f"quantize needs a block format, not the element format {fmt.name!r}; "
                        f"block formats: {', '.join(_formats.block_names())}")
    x = to_numpy(x)
    if x.ndim == 0:
        raise ValueError("cannot quantise a 0-d tensor; give at least one axis")
    if isinstance(fmt.block, tuple):
        axis = x.ndim - 1
    else:
        axis = _norm_axis(axis, x.ndim)
    if fmt.per_tensor and x.size == 0:
        raise ValueError(f"{fmt.name} has one scale per tensor; cannot quantise an empty "
                         f"tensor of shape {x.shape}")
    xb, grid = block_view(x, fmt, axis)
    bad = ~np.isfinite(xb).all(axis=-1)
    xb = np.where(bad[..., None], 0.0, xb)
    amax = np.abs(xb).max(axis=-1)

    best = None
    for i, elem in enumerate(fmt.candidates):
        scodes, sval, codes, zcodes = _quantize_candidate(xb, amax, elem, fmt)
        if len(fmt.candidates) == 1:
            best = (scodes, codes, None)
            break
        err = ((xb - sval[..., None] * elem.decode(codes)) ** 2).sum(axis=-1)
        if best is None:
            best = [scodes, codes, np.zeros(amax.shape, dtype=np.int64), err,
                    sval[..., None] * elem.decode(codes)]
            continue
        better = _exact_less(err, best[3], xb, sval, elem.decode(codes), best[4])
        best[0] = np.where(better, scodes, best[0])
        best[1] = np.where(better[..., None], codes, best[1])
        best[2] = np.where(better, i, best[2])
        best[3] = np.where(better, err, best[3])
        best[4] = np.where(better[..., None], sval[..., None] * elem.decode(codes), best[4])
    scodes, codes, modes = best[0], best[1], best[2]

    if bad.any():
        if not fmt.scale.has_nan:
            raise ValueError(f"{fmt.name}: input has NaN/Inf but scale {fmt.scale.name} "
                             f"has no NaN code")
        scodes = np.where(bad, fmt.scale.nan_code, scodes)
        codes = np.where(bad[..., None], 0, codes)
    elements = unblock(codes, fmt, x.shape, axis)

    def to_grid(per_block):
        # per-block arrays come in block_view's order (blocked axis last): move it back
        a = np.asarray(per_block, dtype=np.int64)
        if fmt.block is not None and not isinstance(fmt.block, tuple):
            a = np.moveaxis(a, -1, axis)
        return np.ascontiguousarray(a.reshape(grid))

    return MXArray(fmt=fmt, shape=tuple(x.shape), axis=axis,
                   elements=np.ascontiguousarray(elements, dtype=np.int64),
                   scales=to_grid(scodes),
                   modes=None if modes is None else to_grid(modes),
                   zeros=None if fmt.zero_point is None else to_grid(
                       np.where(bad, 0, zcodes) if bad.any() else zcodes))
