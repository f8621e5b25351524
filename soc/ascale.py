"""The output-stationary GEMM unit's A-scale entries: one definition of their layout, used
by the gateware (:mod:`mxhw.soc.gemm`, :mod:`mxhw.soc.outpath`) and the host
(:mod:`mxhw.soc.driver`, :mod:`mxhw.soc.layers`).

A word of the A-scale region (``soc/PROTOCOL.md``) holds, for one K block of one A tile,
one entry per row, row 0 in the low bits: the block's scale code (``fmt.scale.bits``)
and, for a format with element modes per block (MXSF: ``fmt.mode_bits`` = 1), the
block's mode above it. For every other format an entry is the scale code alone (the
layout of formats without modes is unchanged).
"""

from __future__ import annotations

from amaranth import Cat

__all__ = ["entry_bits", "moded", "pack_entries", "unpack_entries", "split_entries",
           "join_entries"]


def entry_bits(fmt) -> int:
    """Bits of one row's A-scale entry: the scale code and the mode (if any)."""
    return fmt.scale.bits + fmt.mode_bits


def moded(fmt) -> bool:
    """``fmt`` has element modes per block (MXSF): its A-scale entries carry them."""
    return fmt.mode_bits > 0


def pack_entries(scales, modes, fmt):
    """The entries (NumPy int64, shape of ``scales``) of scale codes ``scales`` and
    block modes ``modes`` (None when ``fmt`` has none)."""
    import numpy as np
    scales = np.asarray(scales, dtype=np.int64)
    if not moded(fmt):
        return scales
    if modes is None or np.shape(modes) != scales.shape:
        raise ValueError(f"{fmt.name} A scales need one mode per block ({scales.shape}), "
                         f"not {None if modes is None else np.shape(modes)}")
    return scales | (np.asarray(modes, dtype=np.int64) << fmt.scale.bits)


def unpack_entries(entries, fmt):
    """``(scales, modes)`` of NumPy ``entries`` (``modes`` None when ``fmt`` has none)."""
    import numpy as np
    entries = np.asarray(entries, dtype=np.int64)
    sb = fmt.scale.bits
    scales = entries & ((1 << sb) - 1)
    if not moded(fmt):
        return scales, None
    return scales, (entries >> sb) & ((1 << fmt.mode_bits) - 1)


def split_entries(bits, fmt, rows):
    """Gateware: the ``rows`` scale codes and (MXSF) modes of an A-scale word ``bits``
    (a Value): ``(Cat of the scales, Cat of the modes or None)``, row 0 low in each."""
    w, sb = entry_bits(fmt), fmt.scale.bits
    scales = Cat(*[bits[w * i:w * i + sb] for i in range(rows)])
    if not moded(fmt):
        return scales, None
    return scales, Cat(*[bits[w * i + sb:w * (i + 1)] for i in range(rows)])


def join_entries(scales, modes):
    """Gateware: an A-scale word of per-row ``scales`` and ``modes`` (sequences of
    Values; ``modes`` None for a format without modes)."""
    if modes is None:
        return Cat(*scales)
    return Cat(*[Cat(s, md) for s, md in zip(scales, modes)])
