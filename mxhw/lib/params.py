"""The one set of parameter checks every component uses.

The checks themselves live in :mod:`mxhw.golden.params` (golden validates its own
parameters with them); this module adds the hardware's: ``clog2`` and ``pipeline``.
"""

from ..golden.params import check_bool, check_choice, check_int, check_number, check_pow2

__all__ = ["check_int", "check_bool", "check_choice", "check_pow2", "check_number",
           "check_pipeline", "clog2"]


def clog2(n):
    """``ceil(log2(n))`` for an integer ``n >= 1`` (0 for 1)."""
    check_int("n", n, 1)
    return (n - 1).bit_length()


def check_pipeline(value, hi, name="pipeline"):
    """A ``pipeline`` parameter: the number of register stages, 0 (combinational) to
    ``hi``."""
    return check_int(name, value, 0, hi)
