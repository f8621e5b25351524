"""ANT (Guo et al., MICRO 2022; clevercool/ANT-Quantization): flint value tables and the
per-tensor type selection.

* ``flint4``: signed 4-bit flint, values {0, +-0.25, +-0.5, +-0.75, +-1, +-1.5, +-2, +-4}
  (x4: {0, +-1, +-2, +-3, +-4, +-6, +-8, +-16}, the list BitMoD's code uses for its ANT
  baseline; docs/FORMATS.md). Code layout (ours, not ANT's first-one bit encoding): sign (bit 3)
  + 3-bit magnitude index in ascending order; the -0 code (1000) is unused (NaN).
* ``flint4_u``: unsigned 4-bit flint, x8 values {0..7, 8, 10, 12, 14, 16, 24, 32, 64}
  stored divided by 8; code = index in ascending order.
* ``pot4``: 4-bit power of two, {0, +-2**-6 .. +-2**0}; sign + 3-bit index, -0 unused.
* ``flint8``: signed 8-bit flint, 128 magnitudes {0, 2**-6 .. 64} (:func:`flint_values`
  with 7 value bits), sign (bit 7) + 7-bit ascending magnitude index, -0 code (0x80) unused.
* ``flint8_u``: unsigned 8-bit flint, 256 values {0, 2**-7 .. 128} (8 value bits), code =
  index in ascending order.

The flint value sets come from ANT's generic b-bit generator, ``Quantizer.flint_value`` in
``ant_quantization/antquant/quant_modules.py`` of clevercool/ANT-Quantization, which
:func:`flint_values` re-implements: with ``B`` value bits (``bits - 1`` when signed), zero;
for ``i = 0 .. B-1`` the exponent ``-(i+1)`` with ``B - (i+2)`` mantissa bits (none once
that is negative); the exponent 0 with ``B - 2`` mantissa bits; for ``i = 1 .. B-2`` the
exponent ``i`` with ``B - (i+2)`` mantissa bits; and the top value ``2**(B-1)``. ANT then
multiplies the grid by ``10 / max`` (``convert_tensor``), a constant the absmax scale
absorbs, so golden keeps the generator's values. With 3 and 4 value bits the generator gives
exactly the published ``flint4`` and ``flint4_u`` lists (tested).

Selection (:func:`select`): ANT picks each tensor's type among int, flint, power-of-two and
float by least squared error. Golden: one block = the whole (flattened) tensor, an FP16
absmax scale per candidate, RNE onto the candidate's grid, the candidate with the least
exact squared error, ties in the order int (``sint4``), flint (``flint4``), PoT (``pot4``),
float (``fp4_e2m1``). (ANT also searches the clipping scale; golden uses absmax only.)

At 8 bits (``select(x, bits=8)``) golden chooses between int (``sint8``) and flint
(``flint8``) by the same rule, ties to int. This is golden's choice, not ANT's: ANT's
released code does not search at more than 6 bits (``Quantizer._init_quant_para`` sets the
type to int when ``bit > 6``), and its 8-bit PoT (``pot_value``: 2**0 .. 2**126) and float
grids are not meaningful candidates, so they are left out.
"""

from __future__ import annotations


from . import formats as _f
from .params import check_choice, check_int
from .pergroup import FP16, int_element
from .quantize import MXArray, quantize, to_numpy

__all__ = ["FLINT4", "FLINT4_U", "POT4", "FLINT8", "FLINT8_U", "flint_values", "ant_format",
           "select"]

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


def flint_values(bits: int, signed: bool = True) -> tuple:
    """The non-negative values of ANT's ``bits``-bit flint type, ascending (zero first).

    A re-implementation of ``Quantizer.flint_value(exp_base=0)`` in
    ``ant_quantization/antquant/quant_modules.py`` (clevercool/ANT-Quantization): with
    ``B = bits - 1`` value bits when ``signed`` (``bits`` otherwise) it lists ``2**B``
    magnitudes; the signed type adds their negatives (the code layout is golden's, see the
    module doc). The values are exact binary fractions; ANT's final ``10 / max`` rescaling
    is left out (the absmax scale absorbs it).
    """
    check_int("flint_values: bits", bits, 3, 12)
    B = bits - 1 if signed else bits
    vals = [0.0]
    # negative exponents -1 .. -B: exponent -(i+1) is coded with i+2 bits (first-one
    # prefix), leaving B-(i+2) mantissa bits; none left for the last one(s)
    for i in range(B):
        man = B - (i + 2)
        if man >= 0:
            vals += [2.0 ** -(i + 1) * (1 + j / 2 ** man) for j in range(2 ** man)]
    # exponent 0: 2-bit prefix, B-2 mantissa bits
    vals += [1 + j / 2 ** (B - 2) for j in range(2 ** (B - 2))]
    # positive exponents 1 .. B-2: exponent i with B-(i+2) mantissa bits
    for i in range(1, B - 1):
        man = B - (i + 2)
        vals += [2.0 ** i * (1 + j / 2 ** man) for j in range(2 ** man)]
    # the top value
    vals.append(2.0 ** (B - 1))
    # ANT sorts the grid (convert_tensor); the 2**B values are distinct
    return tuple(sorted(vals))


FLINT8 = _signed("flint8", flint_values(8),
                 doc="ANT signed 8-bit flint: magnitudes from ANT's generic flint generator "
                     "(quant_modules.py Quantizer.flint_value, 7 value bits): 0, 2**-6 .. 64; "
                     "sign + ascending 7-bit magnitude index, -0 code unused.")
FLINT8_U = _f.register(_f.table_format(
    "flint8_u", flint_values(8, signed=False),
    doc="ANT unsigned 8-bit flint (quant_modules.py Quantizer.flint_value, 8 value bits): "
        "0, 2**-7 .. 128; code = ascending index."))


def ant_format(n: int, bits: int = 4) -> _f.BlockFormat:
    """The ANT selection over a tensor of ``n`` values as one block (unregistered).

    ``bits=4``: int, flint, PoT, float (``sint4``, ``flint4``, ``pot4``, ``fp4_e2m1``);
    ``bits=8``: int, flint (``sint8``, ``flint8``); see the module doc.
    """
    check_int("ant_format: bits", bits)
    check_choice("ant_format: bits", bits, (4, 8))
    check_int("ant_format: n", n, 1)
    if bits == 4:
        cands = (int_element(4), FLINT4, POT4, _f.get("fp4_e2m1"))
        what = "int, flint, PoT, float"
    else:
        cands = (int_element(8), FLINT8)
        what = "int, flint"
    return _f.BlockFormat(
        name=f"ant{bits}_n{n}", candidates=cands, scale=FP16, block=n, scale_rule="absmax",
        doc=f"ANT per-tensor type selection ({what}; FP16 absmax scale).")


def select(x, bits: int = 4) -> MXArray:
    """ANT's per-tensor type choice: quantise the flattened tensor as one block.

    Returns an :class:`MXArray` of shape ``(x.size,)``; ``modes[0]`` indexes
    ``fmt.candidates`` (0 int, 1 flint, 2 PoT, 3 float; at ``bits=8``: 0 int, 1 flint);
    ``dequantize().reshape(x.shape)`` restores the shape.
    """
    a = to_numpy(x).reshape(-1)
    return quantize(a, ant_format(a.size, bits), axis=0)
