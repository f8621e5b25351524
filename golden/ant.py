"""ANT (Guo et al., MICRO 2022; clevercool/ANT-Quantization): flint value tables and the
per-tensor type selection.

* ``flint4``: signed 4-bit flint, values {0, +-0.25, +-0.5, +-0.75, +-1, +-1.5, +-2, +-4}
  (x4: {0, +-1, +-2, +-3, +-4, +-6, +-8, +-16}, the list BitMoD's code uses for its ANT
  baseline; FORMATS.md). Code layout (ours, not ANT's first-one bit encoding): sign (bit 3)
  + 3-bit magnitude index in ascending order; the -0 code (1000) is unused (NaN).
* ``flint4_u``: unsigned 4-bit flint, x8 values {0..7, 8, 10, 12, 14, 16, 24, 32, 64}
  stored divided by 8; code = index in ascending order.
* ``pot4``: 4-bit power of two, {0, +-2**-6 .. +-2**0}; sign + 3-bit index, -0 unused.
* flint8 is NOT defined here: ANT's 8-bit flint follows its first-one exponent encoding,
  which we could not establish reliably from the sources at hand.

Selection (:func:`select`): ANT picks each tensor's type among int, flint, power-of-two and
float by least squared error. Golden: one block = the whole (flattened) tensor, an FP16
absmax scale per candidate, RNE onto the candidate's grid, the candidate with the least
exact squared error, ties in the order int (``sint4``), flint (``flint4``), PoT (``pot4``),
float (``fp4_e2m1``). (ANT also searches the clipping scale; golden uses absmax only.)
"""

from __future__ import annotations

import numpy as np

from . import formats as _f
from .pergroup import FP16, int_element
from .quantize import MXArray, quantize, to_numpy

__all__ = ["FLINT4", "FLINT4_U", "POT4", "ant_format", "select"]

_NAN = float("nan")


def _signed(name, mags, doc):
    vals = list(mags) + [_NAN] + [-m for m in mags[1:]]
    return _f.register(_f.table_format(name, vals, doc=doc))


FLINT4 = _signed("flint4", (0, .25, .5, .75, 1, 1.5, 2, 4),
                 doc="ANT signed 4-bit flint (MICRO 2022): {0, +-.25, +-.5, +-.75, +-1, "
                     "+-1.5, +-2, +-4}; sign + ascending magnitude index, -0 code unused.")
FLINT4_U = _f.register(_f.table_format(
    "flint4_u", [v / 8 for v in (*range(8), 8, 10, 12, 14, 16, 24, 32, 64)],
    doc="ANT unsigned 4-bit flint: x8 {0..7, 8, 10, 12, 14, 16, 24, 32, 64}, stored / 8."))
POT4 = _signed("pot4", (0, *(2.0 ** -k for k in range(6, -1, -1))),
               doc="4-bit power of two (ANT's PoT type): {0, +-2**-6 .. +-1}; -0 unused.")


def ant_format(n: int, bits: int = 4) -> _f.BlockFormat:
    """The ANT selection over a tensor of ``n`` values as one block (unregistered)."""
    if bits != 4:
        raise ValueError(f"ant_format: bits must be 4 (flint8 is not defined), not {bits!r}")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"ant_format: n must be a positive integer, not {n!r}")
    return _f.BlockFormat(
        name=f"ant4_n{n}", candidates=(int_element(4), FLINT4, POT4, _f.get("fp4_e2m1")),
        scale=FP16, block=n, scale_rule="absmax",
        doc="ANT per-tensor type selection (int, flint, PoT, float; FP16 absmax scale).")


def select(x, bits: int = 4) -> MXArray:
    """ANT's per-tensor type choice: quantise the flattened tensor as one block.

    Returns an :class:`MXArray` of shape ``(x.size,)``; ``modes[0]`` indexes
    ``fmt.candidates`` (0 int, 1 flint, 2 PoT, 3 float); ``dequantize().reshape(x.shape)``
    restores the shape.
    """
    a = to_numpy(x).reshape(-1)
    return quantize(a, ant_format(a.size, bits), axis=0)
