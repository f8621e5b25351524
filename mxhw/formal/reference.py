"""Independently written references for the proofs: decode tables as ROMs and exact
integer arithmetic, each small enough to read on one screen.

The only thing taken from the design side is the *specification*: golden's decode table
(``fmt.table``, the value of every code as a float) and ``fmt.lsb_exp``. A code's exact
integer is ``value * 2**-lsb_exp``, checked to be an integer here (so no rounding hides).
"""

from __future__ import annotations

import math
from fractions import Fraction

from amaranth.hdl import Signal, signed

from ..formats import element_format

__all__ = ["exact_ints", "rom", "int_width"]


def exact_ints(fmt):
    """Per code: the exact integer ``value * 2**-lsb_exp``, or ``None`` (NaN / Inf)."""
    fmt = element_format(fmt)
    out = []
    for v in fmt.table:
        v = float(v)
        if not math.isfinite(v):
            out.append(None)
            continue
        x = Fraction(v) / Fraction(2) ** fmt.lsb_exp
        assert x.denominator == 1, (fmt.name, v)
        out.append(int(x))
    return out


def int_width(values):
    """Signed width holding every integer of ``values`` (``None`` ignored)."""
    vals = [v for v in values if v is not None] or [0]
    return max(max(v.bit_length() for v in vals), 1) + 1


def rom(m, fmt, code, name):
    """A ROM in ``m``: ``(value, nonfinite)`` of ``code`` (a ``Switch`` over every code)."""
    vals = exact_ints(fmt)
    value = Signal(signed(int_width(vals)), name=f"{name}_int")
    nonfinite = Signal(name=f"{name}_nf")
    with m.Switch(code):
        for c, v in enumerate(vals):
            with m.Case(c):
                if v is None:
                    m.d.comb += nonfinite.eq(1)
                else:
                    m.d.comb += value.eq(v)
    return value, nonfinite
