"""The golden twin of the arrays' NVFP4 GEMM: block-scaled sums in the array, the two FP32
per-tensor scales applied by the host.

The arrays (:mod:`mxhw.systolic`) take NVFP4 x NVFP4 (blocks of 16 along K). Per block
pair, the exact sum ``S`` of the exact FP4 x FP4 products is multiplied by the exact
product of the two FP8 E4M3 block scales (each ``int_table[code] * 2**lsb_exp``: a signed
significand of 4 bits times a power of two), and the result goes onto the accumulator grid
and into the accumulator exactly as :func:`golden.arith.gemm` does for power-of-two scales
(``fixed``: ``round_shift(S * sa * sb, -(E + frac_bits), rounding)``, then saturate or
wrap; a block with an E4M3 NaN scale code, 0x7F or 0xFF, makes the result NaN). That is
:func:`gemm` here. Only ``fixed`` accumulation (the arrays' NVFP4 datapath).

The per-tensor scales ``Ta``, ``Tb`` (``MXArray.tensor_scale``, float32) are *not* in the
array: the host (:func:`apply_tensor_scales`) multiplies each result by ``Ta * Tb`` in
float64: ``Ta * Tb`` is exact (two 24-bit significands), so the result is the exact
``Ta * Tb * C_block`` rounded once to float64 (``C_block`` the array's value, exact in
float64 for accumulators up to 53 bits). Refused: a per-tensor scale that is NaN or Inf.

``golden.arith.gemm`` itself still refuses NVFP4 (it would drop the per-tensor scales).
"""

from __future__ import annotations

import numpy as np

from .arith import Accumulation, block_dots, sum_blocks
from .nvfp4 import tensor_scale_value
from .quantize import MXArray

__all__ = ["gemm", "apply_tensor_scales", "gemm_scaled"]


def _check(a, b, acc):
    for name, x in (("a", a), ("b", b)):
        if not isinstance(x, MXArray) or x.fmt.codec != "nvfp4":
            raise ValueError(f"{name} must be an NVFP4 MXArray (golden.quantize(x, 'nvfp4'))")
    if not isinstance(acc, Accumulation) or acc.mode != "fixed":
        raise ValueError(f"the NVFP4 array GEMM accumulates in fixed point "
                         f"(golden.arith.fixed(...)), not {acc!r}")


def gemm(a: MXArray, b: MXArray, acc: Accumulation, return_raw: bool = False):
    """``C_block``: the arrays' NVFP4 result (block scales applied, per-tensor scales
    not), ``float64`` of shape (M, N) (``acc_int * 2**-frac_bits``; NaN where a NaN block
    was summed); with ``return_raw`` also the accumulator integers."""
    _check(a, b, acc)
    return sum_blocks(block_dots(a, b, fp_scales=True), acc, return_raw)


def apply_tensor_scales(c, a: MXArray, b: MXArray) -> np.ndarray:
    """The host's output step: ``Ta * Tb * c`` in float64 (one rounding)."""
    ta, tb = tensor_scale_value(a), tensor_scale_value(b)
    if not (np.isfinite(ta) and np.isfinite(tb)):
        raise ValueError(f"per-tensor scales must be finite, not {ta!r} and {tb!r}")
    return (ta * tb) * np.asarray(c, dtype=np.float64)


def gemm_scaled(a: MXArray, b: MXArray, acc: Accumulation) -> np.ndarray:
    """``Ta * Tb * C_block``: :func:`gemm` followed by :func:`apply_tensor_scales`."""
    return apply_tensor_scales(gemm(a, b, acc), a, b)
