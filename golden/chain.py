"""Golden twin of a chain of linear layers run on the SoC (``docs/isa.md``).

A layer is ``golden.gemm(x, w, acc)`` on MX operands (``x`` (M, K) blocked along K,
``w`` (K, N) blocked along K) under the device's fixed-point accumulation; with an output
format the fixed-point results are re-quantised along N (blocks of 32) as the device's
activation path (:class:`mxhw.dequant.Requantizer`, ``in_kind="fixed"``) does: the OCP
floor scale, elements RNE, saturating, which is ``golden.quantize`` on the exact values
``v * 2**-frac_bits`` (those values are exact in float64: the accumulator is at most 53
bits wide). The result is the next layer's ``x``.

A GEMV layer (the SoC's BitMoD unit run by a program's GEMV instruction) has ``w`` a
:class:`~mxhw.golden.bitserial.BitModInt` of shape ``(N, K)`` (its rows are the output
features): each row of ``x`` is one ``y = W x`` of :func:`mxhw.golden.gemv_unit.gemv_fixed`
(the unit's per-block floor and saturation; MXFP8 activations aligned exactly,
:func:`~mxhw.golden.gemv_unit.exact_align_width`), and the same re-quantisation follows.
"""

from __future__ import annotations

import numpy as np

from .arith import Accumulation, gemm
from .bitserial import BitModInt
from .quantize import MXArray, quantize

__all__ = ["linear", "chain", "gemv_rows"]


def gemv_rows(x: MXArray, q: BitModInt, acc: Accumulation):
    """``x @ W^T`` on the GEMV unit, one :func:`~mxhw.golden.gemv_unit.gemv_fixed` per row of
    ``x`` ((M, K) blocked along axis 1; ``q`` (N, K)): float64 (M, N)."""
    from .gemv_unit import exact_align_width, gemv_fixed
    if not isinstance(x, MXArray) or len(x.shape) != 2 or x.axis != 1 or x.modes is not None:
        raise ValueError(f"x must be an (M, K) MXArray blocked along axis 1 without block "
                         f"modes, not {x!r}")
    if q.codes.shape[1] != x.shape[1]:
        raise ValueError(f"inner dimensions differ: x is {x.shape}, the GEMV weights (N, K) "
                         f"are {q.codes.shape}")
    aw = exact_align_width(x.fmt.name) if x.fmt.element.kind == "fp" else None
    rows = [gemv_fixed(q, MXArray(x.fmt, (x.shape[1],), 0, x.elements[m], x.scales[m], None),
                       acc, aw) for m in range(x.shape[0])]
    return np.stack(rows) if rows else np.zeros((0, q.codes.shape[0]))


def _check(x, w, acc):
    if not isinstance(acc, Accumulation) or acc.mode != "fixed" or acc.width > 53:
        raise ValueError(f"acc must be a fixed-point accumulation of at most 53 bits "
                         f"(golden.fixed(...)), not {acc!r}")
    if isinstance(w, BitModInt):
        return          # a GEMV layer: gemv_rows checks the shapes
    if not isinstance(x, MXArray) or not isinstance(w, MXArray):
        raise TypeError(f"x and w must be MXArrays, not {type(x).__name__} and "
                        f"{type(w).__name__}")
    if len(x.shape) != 2 or len(w.shape) != 2 or x.axis != 1 or w.axis != 0:
        raise ValueError(f"x must be (M, K) blocked along axis 1 and w (K, N) blocked along "
                         f"axis 0, not {x.shape} axis {x.axis} and {w.shape} axis {w.axis}")
    if x.shape[1] != w.shape[0]:
        raise ValueError(f"inner dimensions differ: x is {x.shape}, w is {w.shape}")


def linear(x: MXArray, w: MXArray, acc: Accumulation, out_fmt=None):
    """One layer: ``x @ w`` under ``acc`` (float64, exact fixed-point values); with
    ``out_fmt`` (a block format name) those values re-quantised along N: an
    :class:`~mxhw.golden.MXArray` blocked along axis 1. ``w`` a ``BitModInt`` (N, K): the
    GEMV unit's layer (:func:`gemv_rows`)."""
    _check(x, w, acc)
    y = gemv_rows(x, w, acc) if isinstance(w, BitModInt) else gemm(x, w, acc)
    if out_fmt is None:
        return y
    return quantize(y, out_fmt, axis=1)


def chain(x: MXArray, layers, acc: Accumulation):
    """Layers one after another: ``layers`` is a sequence of ``(w, out_fmt)``; every
    ``out_fmt`` but the last must be a format (the next layer's ``x``). Returns the last
    layer's result (an MXArray, or float64 values for ``out_fmt=None``)."""
    layers = list(layers)
    for i, (w, out_fmt) in enumerate(layers):
        if out_fmt is None and i != len(layers) - 1:
            raise ValueError(f"layer {i} has out_fmt=None but a layer follows it: only the "
                             f"last layer's results may stay fixed-point")
        x = linear(x, w, acc, out_fmt)
    return x
