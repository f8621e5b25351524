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
from .base import balanced_sum

__all__ = ["exact_ints", "rom", "int_width", "magnitudes", "rne_code"]


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


def magnitudes(fmt, n=None):
    """The exact integers of the non-negative finite codes ``0 .. n-1`` of ``fmt`` (``n``:
    default half the codes, the ones below the sign bit), checked ascending: a larger
    code is a larger value, which :func:`rne_code` relies on. Codes that are NaN/Inf must
    all lie above the finite ones."""
    vals = exact_ints(fmt)
    n = len(vals) // 2 if n is None else n
    mags = [v for v in vals[:n] if v is not None]
    assert all(v is None for v in vals[len(mags):n]), (fmt, "NaN/Inf below a finite code")
    assert all(a < b for a, b in zip(mags, mags[1:])), (fmt, "codes not ascending")
    return mags


def rne_code(m, mags, lhs, lshift, tshift, name):
    """The code that rounds ``y`` to nearest, ties to even, saturating, on the value set
    ``mags`` (ascending exact integers): ``2*y = (lhs << lshift) / 2**tshift`` for an
    integer ``lhs``. The code is the number of thresholds ``T_c = mags[c] + mags[c+1]``
    (twice the midpoint of neighbours) that ``2*y`` passes: ``2*y > T_c``, or equal and
    ``c + 1`` even (the tie goes to the even code). Above the largest value: the largest
    code (saturation)."""
    lhs = lhs << lshift
    passed = [(lhs > ((a + b) << tshift)) | ((lhs == ((a + b) << tshift)) if c % 2 else 0)
              for c, (a, b) in enumerate(zip(mags, mags[1:]))]
    code = Signal(range(len(mags)), name=name)
    m.d.comb += code.eq(balanced_sum(passed) if passed else 0)
    return code
