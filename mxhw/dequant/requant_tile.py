"""Tile output of the re-quantiser (:class:`~mxhw.dequant.Requantizer` with ``mxsf_tile``):
a 2-D tile of ``r x c`` values shares one scale and one mode, so it is quantised as one
block of ``r * c`` values by the same datapath; this module maps the tile format to that
block format and a tensor to the stream of tile blocks and back.

**Element order.** A tile enters as one block in row-major order within the tile: element
``j`` of the block is the tile's row ``j // c``, column ``j % c``. Tiles are taken row-major
over the tile grid of the last two axes (the order of ``golden.quantize``'s scales and
modes, shape ``(..., M / r, N / c)``), which is what :func:`tile_blocks` gives.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..golden.quantize import block_view, unblock
from ..lib.params import check_int
from .requant_logic import is_mxsf

__all__ = ["tile_block_format", "tile_blocks", "untile"]


def tile_block_format(fmt, k=None):
    """``(block_fmt, tile)``: for a 2-D MXSF tile format (``fmt.block == (r, c)``) the same
    format with 1-D blocks of ``r * c`` elements (named ``<name>_blk``) and ``(r, c)``;
    any other format is returned as it is, with ``tile`` ``None``. ``k`` (the
    re-quantiser's deprecated block size), if given, must be ``r * c`` (ValueError)."""
    if not isinstance(getattr(fmt, "block", None), tuple):
        return fmt, None
    if not is_mxsf(fmt):
        raise ValueError(f"fmt: the re-quantiser takes 2-D tiles of MXSF only (mxsf_tile, "
                         f"golden.mxsf.mxsf_tile(r, c)), not {fmt.name!r}")
    r, c = fmt.block
    if k is not None:
        check_int("k", k, 1)
        if k != r * c:
            raise ValueError(f"k must be the tile size of {fmt.name}, {r} x {c} = {r * c} "
                             f"elements (one tile per block), not {k}")
    return dataclasses.replace(fmt, name=f"{fmt.name}_blk", block=r * c), (r, c)


def _tile_of(fmt):
    _, tile = tile_block_format(fmt)
    if tile is None:
        raise ValueError(f"fmt must be a 2-D tile format such as 'mxsf_tile', not "
                         f"{getattr(fmt, 'name', fmt)!r}")
    return tile


def tile_blocks(x, fmt):
    """The re-quantiser's input blocks for the tensor ``x`` (``(..., M, N)``, ``M`` and
    ``N`` multiples of the tile ``(r, c)`` of ``fmt``): an array ``(tiles, r * c)``, tiles
    row-major over the tile grid, each tile's elements row-major (see the module doc)."""
    r, c = _tile_of(fmt)
    x = np.asarray(x)
    if x.ndim < 2 or x.shape[-2] % r or x.shape[-1] % c:
        raise ValueError(f"tensor of shape {x.shape} is not made of whole {r} x {c} tiles "
                         f"of {fmt.name} (its last two axes must be multiples of {r}, {c})")
    xb, _ = block_view(x, fmt, -1)
    return xb.reshape(-1, r * c)


def untile(blocks, fmt, shape):
    """Inverse of :func:`tile_blocks`: per-element values of the blocks (``(tiles, r * c)``,
    e.g. the re-quantiser's element codes) placed back into a tensor of ``shape``."""
    r, c = _tile_of(fmt)
    grid = (*shape[:-2], shape[-2] // r, shape[-1] // c)
    return unblock(np.asarray(blocks).reshape(*grid, r * c), fmt, tuple(shape), -1)
