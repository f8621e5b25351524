"""Parameter checks shared by golden and the hardware generators (:mod:`mxhw.lib.params`).

Each raises ``TypeError`` for a value of the wrong type and ``ValueError`` for one out of
range, with a message naming the parameter, the value and what is allowed.
"""

__all__ = ["check_int", "check_bool", "check_choice", "check_pow2", "check_number"]


def check_int(name, value, lo=None, hi=None):
    """``value`` must be an int (not a bool) in ``[lo, hi]`` (``None``: unbounded)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        if hi is None:
            rng = f">= {lo}"
        elif lo is None:
            rng = f"<= {hi}"
        else:
            rng = f"in [{lo}, {hi}]"
        raise ValueError(f"{name} must be {rng}, not {value}")
    return value


def check_bool(name, value):
    """``value`` must be a bool."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, not {value!r}")
    return value


def check_choice(name, value, choices):
    """``value`` must be one of ``choices``."""
    if value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {allowed}, not {value!r}")
    return value


def check_pow2(name, value, lo=1, hi=None):
    """``value`` must be a power-of-two integer in ``[lo, hi]``."""
    check_int(name, value, lo, hi)
    if value & (value - 1):
        raise ValueError(f"{name} must be a power of two, not {value}")
    return value


def check_number(name, value, lo=None, hi=None):
    """``value`` must be a real number (int or float, not bool), finite, in ``[lo, hi]``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value \
            or value in (float("inf"), float("-inf")):
        raise TypeError(f"{name} must be a finite real number, not {value!r}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ValueError(f"{name} must be in [{lo}, {hi}], not {value}")
    return value
