"""Golden twin of the SoC's BitMoD GEMV unit (:class:`mxhw.soc.gemv.GemvUnit`).

``y = W x`` with

* ``W`` (rows x cols) a :class:`golden.bitserial.BitModInt` (integer group scales, a
  per-row power-of-two exponent, per-group types of one family: ``bitmod_fp4``,
  ``bitmod_fp3``, ``int4``, ``int3``), in groups of a multiple of :data:`BLOCK` columns;
* ``x`` (cols,) an MX vector (an :class:`golden.MXArray` of a block format with
  :data:`BLOCK`-element blocks and E8M0 scales): MXINT8, whose element codes are the
  integers the unit multiplies, or an MX floating-point format (MXFP8 E4M3, ...) whose
  blocks the shared-exponent aligner (:func:`golden.align.align_block`, truncating) turns
  into integers of ``align_width`` bits with one exponent per block.

The result rule (the GEMM unit's ``golden.fixed(width, frac)``, saturating, floor): per
activation block ``b`` (32 columns) and row ``r`` the exact integer

    ``t[r, b] = scale_int[r, g(b)] * sum_{k in b} w_int[r, k] * x_int[k]``

weighs ``2**e[r, b]`` with ``e[r, b] = row_exp[r] + lsb_exp + x_exp[b]`` (``x_exp[b]``:
the block's E8M0 scale minus 127, plus the element LSB exponent, plus for an aligned
block its shared exponent minus ``align_width - 2``); it is put on the result grid
``2**-frac`` by an arithmetic right shift (floor) or an exact left shift, and added to the
row's ``width``-bit register, which saturates after every block, in block order. A block
whose scale is NaN (E8M0 0xFF) or with a non-finite element makes the row NaN (the unit's
special flag). Since ``t[r, b] * 2**e[r, b]`` is exactly the block's share of
``W_dequantised @ x_dequantised``, the result is that product's per-block floor sum,
saturated: exactly ``floor(W_deq @ x_deq * 2**frac)`` when every block's share lies on the
grid and no saturation occurs (the tests check both statements independently).
"""

from __future__ import annotations

import numpy as np

from .align import align_block, align_format
from .arith import Accumulation
from .bitserial import BitModInt
from .params import check_int
from .quantize import MXArray

__all__ = ["BLOCK", "FAMILIES", "exact_align_width", "activation_ints", "block_terms",
           "gemv_fixed"]

#: activation block (and weight sub-group) size of the unit
BLOCK = 32
#: the weight families the unit maps (order = the FORMATS register's family bits)
FAMILIES = ("bitmod_fp4", "bitmod_fp3", "int4", "int3")


def exact_align_width(fmt) -> int:
    """The aligner output width at which every element of the floating-point format
    ``fmt`` aligns exactly (no bit dropped): ``man_bits + 2`` plus the exponent span
    (the smallest subnormal of a block whose largest element has the top exponent lands
    on the LSB)."""
    f = align_format(fmt)
    lo = 1 - f.bias
    hi = max(int(np.frexp(abs(v))[1]) - 1 for v in f.table if np.isfinite(v) and v != 0)
    return f.man_bits + 2 + (hi - lo)


def _check_vector(x):
    if not isinstance(x, MXArray):
        raise TypeError(f"x must be a golden.MXArray (an MX vector), not {type(x).__name__}")
    if len(x.shape) != 1:
        raise ValueError(f"x must be 1-D, not of shape {x.shape}")
    if x.fmt.block_size != BLOCK or x.modes is not None or len(x.fmt.candidates) != 1:
        raise ValueError(f"x must be an MX format with blocks of {BLOCK} and one element "
                         f"format, not {x.fmt.name!r}")
    if x.fmt.scale.name != "e8m0":
        raise ValueError(f"x must have E8M0 scales, not {x.fmt.scale.name} ({x.fmt.name!r})")


def activation_ints(x: MXArray, align_width: int | None = None):
    """``(x_int, x_exp, nan)`` of the MX vector ``x``: the integers (int64, (cols,)) the
    unit multiplies, each block's exponent (int64, (blocks,)): ``x[k] = x_int[k] *
    2**x_exp[k // 32]``, and each block's NaN flag (bool, (blocks,)).

    MXINT8 (an integer element): ``x_int`` are the element integers. A floating-point
    element: the blocks are aligned by :func:`golden.align.align_block` to
    ``align_width``-bit integers (truncating; exact at :func:`exact_align_width`)."""
    _check_vector(x)
    el = x.fmt.element
    codes = np.asarray(x.elements, dtype=np.int64).reshape(-1, BLOCK)
    scales = np.asarray(x.scales, dtype=np.int64)
    nan = scales == x.fmt.scale.nan_code
    if el.kind == "fp":
        if align_width is None:
            raise ValueError(f"align_width is needed for floating-point activations "
                             f"({x.fmt.name!r}; exact: exact_align_width)")
        check_int("align_width", align_width, 2, 62)
        ints, sexp = align_block(codes, el, align_width, "truncate")
        nan = nan | el.nonfinite_mask[codes].any(axis=-1)
        x_exp = scales - 127 + sexp - (align_width - 2)
    else:
        if align_width is not None:
            raise ValueError(f"align_width applies to floating-point activations, not "
                             f"{x.fmt.name!r}")
        ints = el.int_table[codes]
        x_exp = scales - 127 + el.lsb_exp
    return ints.reshape(-1).astype(np.int64), x_exp.astype(np.int64), nan


def _check_weights(q, cols):
    if not isinstance(q, BitModInt):
        raise TypeError(f"q must be a golden.bitserial.BitModInt, not {type(q).__name__}")
    if q.family not in FAMILIES:
        raise ValueError(f"q.family must be one of {', '.join(FAMILIES)}, not {q.family!r}")
    if q.group % BLOCK:
        raise ValueError(f"q.group must be a multiple of {BLOCK} (the activation block), "
                         f"not {q.group}")
    if q.codes.shape[1] != cols:
        raise ValueError(f"W has {q.codes.shape[1]} columns, x has {cols} values")


def block_terms(q: BitModInt, x: MXArray, align_width: int | None = None):
    """``(t, e, nan)``: the exact block terms ``t[r, b]`` (Python ints, object array
    (rows, blocks)), their exponents ``e[r, b]`` and the blocks' NaN flags (module doc)."""
    x_int, x_exp, nan = activation_ints(x, align_width)
    _check_weights(q, len(x_int))
    wi = q.weight_ints()
    R, K = wi.shape
    nb = K // BLOCK
    prods = wi.astype(object) * x_int.astype(object)[None, :]
    sums = prods.reshape(R, nb, BLOCK).sum(axis=-1)
    scales = np.repeat(q.scale_int, q.group // BLOCK, axis=1).astype(object)
    t = scales * sums
    e = (q.row_exp[:, None] + q.lsb_exp + x_exp[None, :]).astype(np.int64)
    return t, e, nan


def gemv_fixed(q: BitModInt, x: MXArray, acc: Accumulation, align_width: int | None = None,
               return_raw: bool = False):
    """The unit's result: float64 ``(rows,)``, NaN where a block is NaN (module doc);
    ``acc`` must be ``golden.fixed(width, frac)`` (saturating, floor). With
    ``return_raw``: also the register integers (object array) the unit's result words
    hold."""
    if not isinstance(acc, Accumulation) or acc.mode != "fixed" \
            or acc.overflow != "saturate" or acc.rounding != "floor":
        raise ValueError(f"acc must be golden.fixed(width, frac) (saturating, floor), not "
                         f"{acc!r}")
    t, e, nan = block_terms(q, x, align_width)
    W, F = acc.width, acc.frac_bits
    lo, hi = -(1 << (W - 1)), (1 << (W - 1)) - 1
    R, nb = t.shape
    reg = np.zeros(R, dtype=object)
    for r in range(R):
        v = 0
        for b in range(nb):
            sh = int(e[r, b]) + F
            term = int(t[r, b])
            v = min(max(v + (term << sh if sh >= 0 else term >> -sh), lo), hi)
        reg[r] = v
    val = np.array([float(np.ldexp(float(v), -F)) for v in reg], dtype=np.float64)
    if nan.any():
        val[:] = np.nan
    return (val, reg) if return_raw else val

