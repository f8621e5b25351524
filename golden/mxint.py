"""MXINT{N}: block floating point with N-bit two's-complement elements, N = 2..8.

One descriptor family (:func:`mxint`), two variants (docs/FORMATS.md):

* OCP-style ``mxint{N}`` (default): E8M0 scale, OCP floor rule, element ``int{N}`` = N-bit
  two's complement with implicit scale ``2**-(N-2)`` (max ``(2**(N-1)-1) / 2**(N-2)``,
  emax 0), RNE, symmetric clamp to ``+-(2**(N-1)-1)``. ``mxint8`` is OCP MXINT8 (the
  registered ``mxint8`` is reused, with the OCP ``int8`` element).
* MASE-style ``mxint{N}_mase``: the reference behaviour docs/FORMATS.md describes for MASE's
  ``mxint_cast`` (DeepWok/mase ``mxint_operators``; that source was not re-read here):
  shared exponent ``e = ceil(log2 max|x|)`` clamped to the signed range of ``exp_bits``
  (8 by default) bits, ``[-2**(ew-1), 2**(ew-1)-1]``, stored as an ``exp_bits``-bit two's
  complement code (scale format ``sexp{ew}``, kind ``"int"``: its value is ``2**e``);
  mantissa ``m = clamp(floor(x / 2**e * 2**(N-1)), -2**(N-1), 2**(N-1)-1)``, i.e. a floor
  (toward minus infinity, not toward zero) onto the grid ``k * 2**-(N-1)``; the element
  ``mase_int{N}`` keeps the most negative code. As a descriptor: scale rule
  ``"ceil_pow2"`` (``X = 2**(ceil(log2 amax) - emax - 1)`` with the element's emax = -1 gives
  ``X = 2**ceil(log2 amax)``), rounding ``"floor"``. A block whose max is a power of two
  maps it to 1.0, which saturates to ``(2**(N-1)-1) / 2**(N-1)`` (MASE's clamp).
"""

from __future__ import annotations

from . import formats as _f
from .params import check_int

__all__ = ["mxint", "mxint_element", "mase_element", "exponent_scale"]


def _int(name, bits, frac_bits, symmetric, doc, lo=2, hi=8, what="bits"):
    """The registered two's-complement element ``name`` (made and registered on demand)."""
    check_int(f"mxint: {what}", bits, lo, hi)
    return _f.intern(_f.int_format(name, bits, frac_bits=frac_bits, symmetric=symmetric,
                                   doc=doc))


def mxint_element(bits: int) -> _f.ElementFormat:
    """OCP-style element ``int{bits}``: two's complement, implicit scale 2**-(bits-2)."""
    return _int(f"int{bits}", bits, bits - 2, True,
                f"MXINT{bits} element (OCP-style): {bits}-bit two's complement, code c "
                f"means c * 2**-{bits - 2}; the encoder clamps to +-{(1 << (bits - 1)) - 1}.")


def mase_element(bits: int) -> _f.ElementFormat:
    """MASE-style mantissa ``mase_int{bits}``: code c means c * 2**-(bits-1), full range."""
    return _int(f"mase_int{bits}", bits, bits - 1, False,
                f"MASE MXINT mantissa: {bits}-bit two's complement, c * 2**-{bits - 1}, "
                f"clamped to [-{1 << (bits - 1)}, {(1 << (bits - 1)) - 1}] (not symmetric).")


def exponent_scale(exp_bits: int = 8) -> _f.ElementFormat:
    """Signed ``exp_bits``-bit two's-complement exponent scale ``sexp{exp_bits}``."""
    return _int(f"sexp{exp_bits}", exp_bits, 0, False,
                f"Signed {exp_bits}-bit exponent (two's complement, unbiased): code e means "
                f"the scale 2**e (MASE-style shared exponent).", 2, 16, "exp_bits")


def mxint(bits: int, block: int = 32, style: str = "ocp", exp_bits: int = 8) -> _f.BlockFormat:
    """The MXINT``bits`` block format; registered defaults are returned as registered."""
    check_int("mxint: bits", bits, 2, 8)
    check_int("mxint: block", block, 1)
    if style not in ("ocp", "mase"):
        raise ValueError(f"mxint: style must be 'ocp' or 'mase', not {style!r}")
    if style == "ocp":
        name = f"mxint{bits}" + ("" if block == 32 else f"_b{block}")
        if _f.registered(name):
            return _f.registered(name)
        elem = _f.get("int8") if bits == 8 else mxint_element(bits)
        return _f.BlockFormat(
            name=name, candidates=(elem,), scale=_f.get("e8m0"), block=block,
            scale_rule="ocp_floor",
            doc=f"MXINT{bits}, OCP-style: {block} {elem.name} elements, E8M0 floor scale.")
    check_int("mxint: exp_bits", exp_bits, 2, 16)
    name = f"mxint{bits}_mase" + ("" if block == 32 else f"_b{block}") + (
        "" if exp_bits == 8 else f"_e{exp_bits}")
    if _f.registered(name):
        return _f.registered(name)
    return _f.BlockFormat(
        name=name, candidates=(mase_element(bits),), scale=exponent_scale(exp_bits),
        block=block, scale_rule="ceil_pow2", rounding="floor",
        doc=f"MXINT{bits}, MASE-style: {block} mase_int{bits} mantissas, signed "
            f"{exp_bits}-bit exponent e = ceil(log2 amax), floor cast (see golden.mxint).")


for _n in range(2, 9):
    if _n != 8:
        _f.register(mxint(_n))
    _f.register(mxint(_n, style="mase"))
