"""Transposed quantised tensors and the three GEMMs of a training step.

A training step of a linear layer ``Y = X W`` needs three products: ``Y = X W`` (forward),
``dX = dY W^T`` (input gradient) and ``dW = X^T dY`` (weight gradient). With 2-D tile
formats (``mxsf_tile``: one scale and one mode per 8 x 4 tile) one quantised copy of each
of X, W and dY serves all three: :attr:`MXArray.T <golden.quantize.MXArray.T>` re-indexes
the same codes, scales and modes.

How a transposed tile is expressed: **the block shape is swapped** in the format
descriptor. ``q.T`` of a ``(..., M, N)`` array on ``(r, c)`` tiles is a ``(..., N, M)``
array on ``(c, r)`` tiles (:func:`transposed_format`: ``mxsf_tile`` 8 x 4 becomes
``mxsf_tile(4, 8)``, named ``mxsf_tile4x8``), whose codes are exactly those that quantising
the transposed float tensor with the swapped tile gives (``docs/FORMATS.md``, MXSF tiles).
No orientation flag: a transposed array is an ordinary :class:`MXArray`, and every golden
function (``dequantize``, ``gemm``) takes it as it is.

1-D block formats (``mxfp8_e4m3``: 32 values along one axis) have no exact transpose: the
blocks would have to run along the other axis. ``.T`` refuses them (:class:`TransposeError`);
:func:`requantize_transposed` is the explicit alternative: dequantise, transpose,
quantise along the new axis. Per-tensor formats (one scale) transpose exactly.

:func:`matmul` is the golden twin of the driver contract ``op(a) @ op(b)`` with
``transpose_a`` / ``transpose_b``; :func:`training_gemms` computes the three products from
one quantised copy of X, W and dY.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from . import formats as _formats
from .arith import EXACT, Accumulation, gemm
from .formats import BlockFormat
from .quantize import MXArray, quantize

__all__ = ["TransposeError", "transposed_format", "transpose", "requantize_transposed",
           "matmul", "training_gemms"]


class TransposeError(ValueError):
    """A quantised tensor whose blocks do not survive transposition (1-D blocks)."""


#: descriptor -> descriptor of the swapped tile, both ways, so ``T.T`` is the original
_TRANSPOSED: dict = {}


def _refuse(fmt: BlockFormat, axis=None):
    where = "" if axis is None else f" along axis {axis}"
    raise TransposeError(
        f"{fmt.name} has 1-D blocks of {fmt.block}{where}: a transpose would need the blocks "
        f"along the other axis, which is a re-quantisation, not a re-indexing; use "
        f"golden.requantize_transposed(q) (dequantise, transpose, quantise along the new "
        f"axis), or a 2-D tile format such as 'mxsf_tile' whose .T is exact")


def transposed_format(fmt) -> BlockFormat:
    """The format of a transposed array of ``fmt``: the tile shape swapped.

    ``(r, c)`` tiles give ``(c, r)`` tiles (``mxsf_tile`` -> ``mxsf_tile(4, 8)``; an MXSF
    tile family member comes from :func:`golden.mxsf.mxsf_tile`, any other tile format is
    the same descriptor with the block swapped and ``"_T"`` added to, or removed from, its
    name). Square tiles and per-tensor formats are their own transpose. The result is
    cached: ``transposed_format(transposed_format(f)) is f``. Raises
    :class:`TransposeError` for 1-D block formats.
    """
    fmt = _formats.get(fmt)
    if not isinstance(fmt, BlockFormat):
        raise TypeError(f"transposed_format takes a block format, not {fmt!r}")
    if fmt.block is None:
        return fmt
    if isinstance(fmt.block, int):
        _refuse(fmt)
    r, c = fmt.block
    if r == c:
        return fmt
    t = _TRANSPOSED.get(fmt)
    if t is None:
        from .mxsf import mxsf_tile
        family = mxsf_tile(r, c)
        if fmt.name == family.name and fmt.candidates == family.candidates:
            t = mxsf_tile(c, r)
        else:
            name = fmt.name[:-2] if fmt.name.endswith("_T") else fmt.name + "_T"
            t = _formats.registered(name)
            if t is None or t.block != (c, r):
                t = dataclasses.replace(fmt, name=name, block=(c, r))
        _TRANSPOSED[fmt] = t
        _TRANSPOSED[t] = fmt
    return t


def _swap(a):
    return None if a is None else np.ascontiguousarray(np.swapaxes(a, -1, -2))


def transpose(q: MXArray) -> MXArray:
    """``q`` with its last two axes swapped, exactly: the same element codes, scale codes,
    modes (and zero points), re-indexed; the format's tile shape swapped
    (:func:`transposed_format`). This is :attr:`MXArray.T`.

    Raises :class:`TransposeError` for 1-D block formats (see
    :func:`requantize_transposed`) and ValueError for a 1-D tensor.
    """
    if not isinstance(q, MXArray):
        raise TypeError(f"transpose takes an MXArray, not {type(q)!r}")
    nd = len(q.shape)
    if nd < 2:
        raise ValueError(f"cannot transpose a {nd}-D MXArray of shape {q.shape}; it needs "
                         f"two axes")
    if isinstance(q.fmt.block, int):
        _refuse(q.fmt, q.axis)
    fmt = transposed_format(q.fmt)
    axis = {nd - 1: nd - 2, nd - 2: nd - 1}.get(q.axis, q.axis)
    if isinstance(q.fmt.block, tuple):
        axis = nd - 1  # tile formats record the last axis
    shape = (*q.shape[:-2], q.shape[-1], q.shape[-2])
    return MXArray(fmt=fmt, shape=shape, axis=axis, elements=_swap(q.elements),
                   scales=_swap(q.scales), modes=_swap(q.modes), zeros=_swap(q.zeros))


def requantize_transposed(q: MXArray, axis: int | None = None) -> MXArray:
    """The transpose of ``q`` by re-quantisation: dequantise, swap the last two axes,
    quantise again.

    For a 1-D block format the new blocks run along ``axis`` of the transposed tensor,
    by default ``q.axis`` (the same position, so the same operand role: a GEMM's B
    quantised along its rows, the K axis, gives B^T quantised along its rows, the new K
    axis). Tile formats are quantised with :func:`transposed_format` (``axis`` has no
    effect); their values then equal those of ``q.T``, though a block whose values both
    MXSF modes hold exactly may change its mode code. The double quantisation is the
    cost 1-D formats pay for a transposed operand.
    """
    if not isinstance(q, MXArray):
        raise TypeError(f"requantize_transposed takes an MXArray, not {type(q)!r}")
    if len(q.shape) < 2:
        raise ValueError(f"cannot transpose a {len(q.shape)}-D MXArray of shape {q.shape}")
    x = np.swapaxes(q.dequantize(), -1, -2)
    if isinstance(q.fmt.block, int):
        return quantize(x, q.fmt, axis=q.axis if axis is None else axis)
    return quantize(x, transposed_format(q.fmt), axis=-1 if axis is None else axis)


def matmul(a: MXArray, b: MXArray, acc: Accumulation = EXACT, transpose_a: bool = False,
           transpose_b: bool = False):
    """``op(a) @ op(b)`` under ``acc``, where ``op(x)`` is ``x.T`` if its flag is set.

    The golden twin of the driver's ``Accelerator.matmul(..., transpose_a, transpose_b)``:
    each operand is quantised once in its stored orientation and read transposed; a
    transposed operand must be in a tile (or per-tensor) format.
    """
    for name, flag in (("transpose_a", transpose_a), ("transpose_b", transpose_b)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be True or False, not {flag!r}")
    return gemm(a.T if transpose_a else a, b.T if transpose_b else b, acc)


def training_gemms(x: MXArray, w: MXArray, dy: MXArray, acc: Accumulation = EXACT):
    """The three GEMMs of a linear layer's training step from one quantised copy each of
    ``x`` (M x K), ``w`` (K x N) and ``dy`` (M x N), in a tile format.

    Returns ``(y, dx, dw)``: ``y = x @ w`` (M x N), ``dx = dy @ w.T`` (M x K) and
    ``dw = x.T @ dy`` (K x N), each :func:`golden.gemm` under ``acc``. With ``mxsf_tile``
    (8 x 4) operands, the K blocks are 4 (forward: X's tile columns against half a W
    tile's rows), 4 (input gradient) and 8 (weight gradient).
    """
    return gemm(x, w, acc), gemm(dy, w.T, acc), gemm(x.T, dy, acc)
