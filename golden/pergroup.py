"""Per-group integer formats (the usual LLM weight baselines) and the FP16 scale format.

* ``fp16``: IEEE 754 binary16 (sign, 5 exponent bits, 10 mantissa bits, bias 15, Inf/NaN),
  the group-scale format of BitMoD's released code and of the INTn baselines here.
* ``int{n}_g{group}`` (symmetric; :func:`int_group`): elements ``{-(2**(n-1)-1) ..
  2**(n-1)-1}`` (e.g. INT4 {-7..7}, INT3 {-3..3}, as BitMoD's code), group scale
  ``absmax / (2**(n-1)-1)`` rounded RNE to FP16, elements rounded RNE. The k-bit inference
  scaling-laws paper (Dettmers & Zettlemoyer 2023) is the source of "small groups help".
* ``int{n}_g{group}_asym`` (asymmetric; :func:`int_group` with ``symmetric=False``): the
  min/max baseline (GPTQ/AWQ style): ``lo = min(min w, 0)``, ``hi = max(max w, 0)``,
  scale ``(hi - lo) / (2**n - 1)`` in FP16 (RNE), an n-bit unsigned zero point
  ``round(-lo / scale)`` (RNE, clamped to [0, 2**n - 1]) per group, elements
  ``clamp(round(w / scale) + zero, 0, 2**n - 1)``; the value is ``scale * (q - zero)``.
  Scale and zero codes live in ``MXArray.scales`` / ``MXArray.zeros``.

Registered defaults: ``int2_g128`` .. ``int8_g128`` and their ``_asym`` twins; other group
sizes from :func:`int_group` (unregistered, same naming).
"""

from __future__ import annotations

from . import formats as _f
from .params import check_int

__all__ = ["FP16", "int_group", "int_element", "uint_element"]

FP16 = _f.register(_f.fp_format(
    "fp16", 5, 10, special="ieee",
    doc="IEEE 754 binary16: bias 15, Inf/NaN, max 65504, min normal 2**-14, min "
        "subnormal 2**-24. Used as a group scale (rounded RNE, saturating)."))


def int_element(n: int) -> _f.ElementFormat:
    """Symmetric n-bit integer element ``sint{n}`` (codes two's complement, frac 0)."""
    check_int("int_group: bits", n, 2, 8)
    return _f.intern(_f.int_format(
        f"sint{n}", n, frac_bits=0, symmetric=True,
        doc=f"Symmetric {n}-bit integer {{-{(1 << (n - 1)) - 1}..{(1 << (n - 1)) - 1}}} "
            f"(two's complement code; the most negative code decodes but is never made)."))


def uint_element(n: int) -> _f.ElementFormat:
    """Unsigned n-bit integer ``uint{n}`` (code c means c), as a value table."""
    check_int("int_group: bits", n, 2, 8)
    return _f.intern(_f.table_format(
        f"uint{n}", range(1 << n), doc=f"Unsigned {n}-bit integer 0..{(1 << n) - 1} (code = "
                                       f"value)."))


def int_group(bits: int, group: int = 128, symmetric: bool = True) -> _f.BlockFormat:
    """INT``bits`` with one FP16 scale (and, asymmetric, an n-bit zero point) per group of
    ``group`` values along the quantised axis. Registered defaults are returned as is."""
    check_int("int_group: bits", bits, 2, 8)
    check_int("int_group: group", group, 1)
    name = f"int{bits}_g{group}" + ("" if symmetric else "_asym")
    if _f.registered(name):
        return _f.registered(name)
    if symmetric:
        return _f.BlockFormat(
            name=name, candidates=(int_element(bits),), scale=FP16, block=group,
            scale_rule="absmax",
            doc=f"Symmetric INT{bits}, group {group}, FP16 absmax scale (RNE).")
    u = uint_element(bits)
    return _f.BlockFormat(
        name=name, candidates=(u,), scale=FP16, block=group, scale_rule="minmax",
        zero_point=u,
        doc=f"Asymmetric INT{bits} (min/max), group {group}, FP16 scale, {bits}-bit zero "
            f"point.")


for _n in range(2, 9):
    _f.register(int_group(_n, 128))
    _f.register(int_group(_n, 128, symmetric=False))
