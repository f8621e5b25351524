"""Weight types of the bit-serial units (:class:`~mxhw.pe.WeightMapper`,
:class:`~mxhw.pe.BitSerialGEMV`): names checked against golden's registry.

Golden twin: :data:`mxhw.golden.bitserial.WEIGHT_TYPES`.
"""

from ..golden import bitserial as _golden

__all__ = ["check_weight_types", "is_twos_complement"]


def check_weight_types(types, name="types"):
    """``(names, descriptors)`` of a sequence of weight type names
    (``golden.bitserial.WEIGHT_TYPES``); ``TypeError``/``ValueError`` otherwise."""
    if isinstance(types, str) or not hasattr(types, "__iter__"):
        raise TypeError(f"{name} must be a sequence of weight type names, not {types!r}")
    types = tuple(types)
    if not types:
        raise ValueError(f"{name} must name at least one weight type")
    for t in types:
        if not isinstance(t, str) or t not in _golden.WEIGHT_TYPES:
            raise ValueError(f"unknown weight type {t!r}; known: "
                             f"{', '.join(_golden.WEIGHT_TYPES)}")
    return types, [_golden.weight_type(t) for t in types]


def is_twos_complement(desc):
    """The weight type ``desc``'s codes are plain ``code_bits``-bit two's complement."""
    n = desc.code_bits
    return desc.ints == tuple(c - (1 << n) if c >> (n - 1) else c for c in range(1 << n))
