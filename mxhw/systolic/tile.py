"""Tile-format operands (MX-SAFE ``mxsf_tile``) on the systolic arrays: the K blocks the
PEs see, and the operand feeder's view of a stored tile in either orientation.

A 2-D tile of ``r x c`` (one scale and one mode) on ``A`` (``M x K``) is, along the array's
K axis, a run of ``c`` elements whose scale and mode ``r`` rows share; on ``B``
(``K x N``) a run of ``r`` shared by ``c`` columns. ``golden.arith.gemm`` takes the K
blocks as the runs over which both operands' scales are constant: ``k = gcd(ka, kb)``
(``ka`` A's tile width or 1-D block, ``kb`` B's tile height or 1-D block), an exact block
dot per ``k`` elements and, under ``fixed`` accumulation, one rounding per K block. So the
PEs need nothing new: they take 1-D blocks of ``k`` (:func:`k_block_format`) whose scale
and mode the operand feeder replicates from the tile (:func:`k_blocks` is that feeder in
NumPy; :class:`~mxhw.systolic.tilefeed.TileFeeder` is it in hardware, reading one stored
tile row-wise or column-wise, so ``W`` and ``W^T`` come from the same stored codes).

Golden twin: :func:`mxhw.golden.tile.matmul` / :func:`mxhw.golden.arith.gemm` with tile
operands (a transposed operand is ``q.T``: the swapped tile, :func:`golden.tile.transposed_format`).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..formats import lookup_format
from ..golden.quantize import MXArray, expand_blocks

__all__ = ["is_tile", "tile_k", "k_block_format", "k_block_formats", "k_blocks"]

#: (format, k) -> its 1-D K-block descriptor, so equal requests give the same object
_K_FORMATS: dict = {}


def is_tile(fmt) -> bool:
    """Whether the block format ``fmt`` has 2-D tiles."""
    return isinstance(fmt.block, tuple)


def _k_extent(fmt, role):
    # the run of one scale along K: A's tile width, B's tile height, or the 1-D block
    if is_tile(fmt):
        return fmt.block[1] if role == "a" else fmt.block[0]
    return fmt.block


def tile_k(fmt_a, fmt_b) -> int:
    """The K block of ``A @ B`` with operands of ``fmt_a`` and ``fmt_b`` (names or block
    formats, at least one with 2-D tiles, the other tiled or 1-D): ``gcd`` of A's run
    along K (tile width) and B's (tile height), as ``golden.arith.gemm`` takes it."""
    fa = lookup_format(fmt_a, "fmt_a", "block")
    fb = lookup_format(fmt_b, "fmt_b", "block")
    for name, f in (("fmt_a", fa), ("fmt_b", fb)):
        if f.block is None:
            raise ValueError(f"{name}: {f.name} has one scale per tensor; the arrays take "
                             f"1-D blocks or 2-D tiles")
    return math.gcd(_k_extent(fa, "a"), _k_extent(fb, "b"))


def k_block_format(fmt, k):
    """The 1-D block format of ``k`` elements the PEs see for ``fmt`` (tiled or 1-D): the
    same element candidates, scale and rules, ``block = k``, named ``{name}_k{k}``."""
    fmt = lookup_format(fmt, "fmt", "block")
    if not is_tile(fmt) and fmt.block == k:
        return fmt
    key = (fmt, k)
    if key not in _K_FORMATS:
        _K_FORMATS[key] = dataclasses.replace(fmt, name=f"{fmt.name}_k{k}", block=k)
    return _K_FORMATS[key]


def k_block_formats(fmt_a, fmt_b):
    """``(fmt_a, fmt_b)`` as the arrays take them: unchanged when both have 1-D blocks;
    with a 2-D tile on either side, both as 1-D blocks of :func:`tile_k`
    (:func:`k_block_format`)."""
    fa = lookup_format(fmt_a, "fmt_a", "block")
    fb = lookup_format(fmt_b, "fmt_b", "block")
    if not (is_tile(fa) or is_tile(fb)):
        return fa, fb
    k = tile_k(fa, fb)
    return k_block_format(fa, k), k_block_format(fb, k)


def k_blocks(q: MXArray, role: str, k: int) -> MXArray:
    """Operand ``q`` (``role`` ``"a"``: ``M x K``, ``"b"``: ``K x N``; tiled or 1-D along
    K) as an :class:`MXArray` of 1-D blocks of ``k`` along K (:func:`k_block_format`): the
    same element codes, each K block's scale and mode that of the tile (or block) it lies
    in. ``k`` must divide the operand's run along K, and K. What the operand feeder
    serves (golden's GEMM of the result equals that of ``q``)."""
    if role not in ("a", "b"):
        raise ValueError(f"role must be 'a' or 'b', not {role!r}")
    if not isinstance(q, MXArray) or len(q.shape) != 2:
        raise TypeError(f"q must be a 2-D MXArray, not {q!r}")
    ax = 1 if role == "a" else 0
    run = _k_extent(q.fmt, role)
    if run is None or run % k or q.shape[ax] % k:
        raise ValueError(f"k = {k} must divide {q.fmt.name}'s run along K ({run}) and K = "
                         f"{q.shape[ax]}")
    if not is_tile(q.fmt) and q.axis != ax:
        raise ValueError(f"a 1-D operand {role!r} must be blocked along K (axis {ax})")

    def per_k_block(v):
        if v is None:
            return None
        full = expand_blocks(v, q.fmt, q.shape, q.axis)
        return np.ascontiguousarray(full[:, ::k] if ax == 1 else full[::k, :])

    return MXArray(k_block_format(q.fmt, k), q.shape, ax, q.elements,
                   per_k_block(q.scales), per_k_block(q.modes))
