"""Number-format descriptors: the single definition of every format in mxhw.

A format is data, not code. :class:`ElementFormat` describes one element type (floating
point, two's-complement integer, power-of-two scale, or an arbitrary value table); every
element format of those kinds yields the same three things:

* :attr:`ElementFormat.table` -- the full decode table, every code to its exact value
  (float64; NaN / +-Inf where the format has them);
* :meth:`ElementFormat.encode` -- value to code, by one generic, exact rounding routine over
  that table (round-to-nearest-even by default; ties-away-from-zero and truncation on
  request), saturating or not as the format's specification says;
* :meth:`ElementFormat.decode` -- code to value.

The one exception is the ``binary32`` kind (IEEE 754 single precision, the per-tensor FP32
scale of :data:`BINARY32`): 2**32 codes admit no decode table, so its code is the float32
bit pattern and :meth:`~ElementFormat.encode` / :meth:`~ElementFormat.decode` go through
NumPy ``float32`` (RNE); it has no :attr:`~ElementFormat.table` and serves as a scale only.

:class:`BlockFormat` pairs element format(s) with a scale format, a block shape and a scale
rule. OCP MX formats have one element format; formats that choose a data type per block
(MX-SAFE modes, BitMoD types, ANT's per-tensor type) list several *candidates*, and the
quantiser keeps, per block, the candidate with the smallest squared error (ties to the
first). New formats are new descriptors registered with :func:`register`, not new code paths.

Sources: OCP Microscaling Formats (MX) Specification v1.0 (2023-09) and OCP 8-bit Floating
Point Specification (OFP8) for the OCP formats; see ``docs/FORMATS.md`` of the project for
the others.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .element import (ROUNDING_MODES, ElementFormat, binary32_format, fp_format,
                      int_format, pow2_scale_format, table_format)
from .params import check_int

__all__ = [
    "ElementFormat", "BlockFormat", "ROUNDING_MODES", "SCALE_RULES",
    "fp_format", "int_format", "table_format", "pow2_scale_format", "binary32_format",
    "BINARY32",
    "register", "registered", "intern", "get", "names", "element_names", "block_names",
]

#: Scale rules understood by the block quantiser (see :class:`BlockFormat`).
#: ``"minmax"``: asymmetric, with a zero point (see :class:`BlockFormat`).
SCALE_RULES = ("ocp_floor", "ceil_pow2", "absmax", "minmax")


# ---- block formats ---------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class BlockFormat:
    """A block (microscaling) format: element format(s), a shared scale, a block shape.

    Parameters
    ----------
    name : str
    candidates : tuple of ElementFormat
        Element formats a block may use. One for OCP MX formats; several when the format
        chooses a data type per block (the choice is stored per block in
        :attr:`MXArray.modes`, ties to the first candidate).
    scale : ElementFormat
        Scale format (``e8m0`` for OCP).
    block : int or (int, int) or None
        Elements per block along the quantised axis (32 for OCP), a 2-D tile
        ``(rows, cols)`` over the last two axes, or ``None``: one block per tensor (a single
        scale for the whole tensor, whatever its shape; the quantiser's ``axis`` then has no
        effect on the codes).
    scale_rule : str
        ``"ocp_floor"``: OCP v1.0, ``X = 2**(floor(log2 amax) - emax_elem)`` clamped to
        the scale's range. ``"ceil_pow2"``: ``X = 2**(ceil(log2 amax) - emax_elem - 1)``
        (MASE-style). ``"absmax"``: ``X = amax / max_elem`` rounded to the scale format.
        With a ``binary32`` scale (the per-tensor FP8 formats) the quotient is computed in
        float64 (RNE) and then rounded RNE to float32; see :data:`FP8_E4M3_PT`.
        ``"minmax"``: asymmetric with a zero point (the usual LLM INTn baseline):
        ``lo = min(min V, 0)``, ``hi = max(max V, 0)``, ``X = (hi - lo) / max_elem`` rounded
        to the scale format, zero point ``Z = round(-lo / X)`` encoded in ``zero_point``,
        ``P = encode(V / X + Z)``; the value is ``X * (P - Z)``.
    rounding : str
        Element rounding, one of :data:`ROUNDING_MODES`.
    doc : str
        Source and choices.
    zero_point : ElementFormat or None
        Format of the per-block zero point (``"minmax"`` rule only).
    """

    name: str
    candidates: tuple
    scale: ElementFormat
    block: int | tuple = 32
    scale_rule: str = "ocp_floor"
    rounding: str = "rne"
    doc: str = field(default="", repr=False)
    zero_point: ElementFormat | None = None

    def __post_init__(self):
        if (self.scale_rule == "minmax") != (self.zero_point is not None):
            raise ValueError(f"{self.name}: scale_rule 'minmax' and a zero_point format go "
                             f"together; got scale_rule={self.scale_rule!r}, "
                             f"zero_point={self.zero_point!r}")
        if not self.candidates or not all(isinstance(c, ElementFormat) for c in self.candidates):
            raise TypeError(f"{self.name}: candidates must be a non-empty tuple of ElementFormat")
        if not isinstance(self.scale, ElementFormat):
            raise TypeError(f"{self.name}: scale must be an ElementFormat, not {self.scale!r}")
        if self.scale_rule not in SCALE_RULES:
            raise ValueError(f"scale_rule must be one of {SCALE_RULES}, not {self.scale_rule!r}")
        if self.rounding not in ROUNDING_MODES:
            raise ValueError(f"rounding must be one of {ROUNDING_MODES}, not {self.rounding!r}")
        b = self.block
        dims = b if isinstance(b, tuple) else (b,)
        if b is not None and (len(dims) not in (1, 2)
                              or not all(isinstance(d, int) and d >= 1 for d in dims)):
            raise ValueError(f"block must be a positive int, a pair of them or None "
                             f"(per tensor), not {b!r}")
        if self.scale_rule in ("ocp_floor", "ceil_pow2") and self.scale.kind not in ("pow2", "int"):
            raise ValueError(f"scale_rule {self.scale_rule!r} needs a power-of-two scale format")
        if self.scale.kind == "binary32" and self.scale_rule != "absmax":
            raise ValueError(f"a binary32 scale needs scale_rule 'absmax', not "
                             f"{self.scale_rule!r}")

    @property
    def element(self) -> ElementFormat:
        """The (first) element format."""
        return self.candidates[0]

    @property
    def per_tensor(self) -> bool:
        """True if the whole tensor is one block (``block is None``)."""
        return self.block is None

    @property
    def block_size(self) -> int | None:
        """Elements per block; ``None`` for a per-tensor format (the tensor's size)."""
        return math.prod(self.block) if isinstance(self.block, tuple) else self.block

    @property
    def mode_bits(self) -> int:
        """Bits that store the per-block choice among candidates."""
        return (len(self.candidates) - 1).bit_length()

    @property
    def bits_per_value(self) -> float:
        """Storage cost per element, scale and mode bits included.

        Raises ValueError for a per-tensor format, whose cost depends on the tensor's size:
        use :meth:`bits_per_value_for`.
        """
        if self.per_tensor:
            raise ValueError(f"{self.name} has one scale per tensor; its bits per value "
                             f"depend on the tensor size: use bits_per_value_for(n)")
        return self.bits_per_value_for(self.block_size)

    def bits_per_value_for(self, n: int) -> float:
        """Storage cost per element of a tensor of ``n`` values: for a per-tensor format,
        the element bits plus the scale (and mode) bits amortised over ``n``; for a block
        format, :attr:`bits_per_value` (``n`` only checked)."""
        check_int("n", n, 1)
        ebits = max(c.bits for c in self.candidates)
        zbits = self.zero_point.bits if self.zero_point is not None else 0
        per = n if self.per_tensor else self.block_size
        return ebits + (self.scale.bits + self.mode_bits + zbits) / per

    def __repr__(self):
        return f"BlockFormat({self.name!r})"


# ---- registry --------------------------------------------------------------------------

_REGISTRY: dict[str, ElementFormat | BlockFormat] = {}
_ALIASES: dict[str, str] = {}


def register(fmt, *aliases):
    """Add a descriptor (and aliases) to the registry; returns it."""
    if not isinstance(fmt, (ElementFormat, BlockFormat)):
        raise TypeError(f"can only register ElementFormat or BlockFormat, not {fmt!r}")
    for n in (fmt.name, *aliases):
        if n in _REGISTRY or n in _ALIASES:
            raise ValueError(f"format name {n!r} is already registered")
    _REGISTRY[fmt.name] = fmt
    for a in aliases:
        _ALIASES[a] = fmt.name
    return fmt


def registered(name):
    """The descriptor registered under exactly ``name`` (no alias), or ``None``."""
    return _REGISTRY.get(name)


def intern(fmt):
    """The registered descriptor of ``fmt``'s name, registering ``fmt`` if there is none
    (parametric families build their members on demand)."""
    return _REGISTRY.get(fmt.name) or register(fmt)


def get(name):
    """The descriptor registered as ``name`` (or an alias); a descriptor passes through."""
    if isinstance(name, (ElementFormat, BlockFormat)):
        return name
    if not isinstance(name, str):
        raise TypeError(f"format must be a name or a descriptor, not {name!r}")
    key = _ALIASES.get(name, name)
    try:
        return _REGISTRY[key]
    except KeyError:
        raise KeyError(f"unknown format {name!r}; known formats: {', '.join(names())}") from None


def names():
    """All registered names (aliases included), sorted."""
    return sorted([*_REGISTRY, *_ALIASES])


def element_names():
    return sorted(n for n, f in _REGISTRY.items() if isinstance(f, ElementFormat))


def block_names():
    return sorted([*(n for n, f in _REGISTRY.items() if isinstance(f, BlockFormat)),
                   *(a for a, n in _ALIASES.items() if isinstance(_REGISTRY[n], BlockFormat))])


# ---- OCP MX v1.0 -----------------------------------------------------------------------

FP8_E4M3 = register(fp_format(
    "fp8_e4m3", 4, 3, special="fn",
    doc="OFP8 E4M3 (OCP MX v1.0 element): bias 7, no Inf, NaN only at S.1111.111; "
        "max 448, min subnormal 2**-9. MX conversion saturates; OFP8 non-saturating "
        "conversion (saturate=False) sends overflow to NaN."))
FP8_E5M2 = register(fp_format(
    "fp8_e5m2", 5, 2, special="ieee",
    doc="OFP8 E5M2: bias 15, IEEE-style Inf (S.11111.00) and NaN; max 57344, min "
        "subnormal 2**-16. Non-saturating conversion sends overflow to Inf."))
FP6_E3M2 = register(fp_format(
    "fp6_e3m2", 3, 2, doc="OCP MX FP6 E3M2: bias 3, no Inf/NaN; max 28, min subnormal 2**-4."))
FP6_E2M3 = register(fp_format(
    "fp6_e2m3", 2, 3, doc="OCP MX FP6 E2M3: bias 1, no Inf/NaN; max 7.5, min subnormal 2**-3."))
FP4_E2M1 = register(fp_format(
    "fp4_e2m1", 2, 1, doc="OCP MX FP4 E2M1: bias 1, no Inf/NaN; values +-{0,.5,1,1.5,2,3,4,6}."))
INT8 = register(int_format(
    "int8", 8, frac_bits=6, symmetric=True,
    doc="OCP MX INT8 element: two's complement with implicit scale 2**-6 (code c means "
        "c/64). Code -128 decodes to -2.0; the encoder clamps symmetrically to +-127 as "
        "microxcaling does."))
E8M0 = register(pow2_scale_format(
    "e8m0", doc="OCP MX E8M0 scale: 2**(code-127) for codes 0..254, code 0xFF is NaN; "
                "no zero, sign or Inf."))


def _mx(name, elem, *aliases):
    return register(BlockFormat(
        name=name, candidates=(elem,), scale=E8M0, block=32, scale_rule="ocp_floor",
        doc=f"OCP MX v1.0 block: 32 {elem.name} elements sharing one E8M0 scale."), *aliases)


MXFP8_E4M3 = _mx("mxfp8_e4m3", FP8_E4M3)
MXFP8_E5M2 = _mx("mxfp8_e5m2", FP8_E5M2)
MXFP6_E3M2 = _mx("mxfp6_e3m2", FP6_E3M2)
MXFP6_E2M3 = _mx("mxfp6_e2m3", FP6_E2M3)
MXFP4_E2M1 = _mx("mxfp4_e2m1", FP4_E2M1, "mxfp4")
MXINT8 = _mx("mxint8", INT8)


# ---- per-tensor FP8 with an FP32 scale (the FP8 formats paper; OFP8) -------------------

BINARY32 = binary32_format("fp32", doc=(
    "IEEE 754 binary32 as a scale format: the code is the float32 bit pattern (uint32); "
    "encode is NumPy's float64 -> float32 cast (RNE), saturating to +-max by default. Not "
    "registered (its 2**32 codes have no decode table, and hardware takes no such element); "
    "reach it as golden.formats.BINARY32 or get('fp8_e4m3_pt').scale."))

_PT_DOC = (
    "Per-tensor FP8 {e} with one IEEE binary32 (FP32) scale for the whole tensor (the FP8 "
    "formats paper, Micikevicius et al. 2022; OFP8). One block = the whole tensor, whatever "
    "its shape (block=None; the quantiser's axis does not change the codes). Golden's rule, "
    "exactly: amax = max|x| over the tensor (float64, exact); scale = RNE_float32(amax / "
    "{m}) where the quotient is first computed in float64 (one RNE rounding) -- for float32 "
    "or narrower inputs this equals the correctly rounded float32 quotient, as float64 has "
    "more than 2*24+2 bits (Figueroa 1995); an all-zero tensor gets scale 1.0; an amax "
    "whose scale rounds to 0 raises ValueError; a scale beyond the "
    "float32 range saturates to float32 max. Element = RNE-saturating encode of x / scale, "
    "the quotient computed in float64 (RNE) and then encoded RNE to {e}: this double "
    "rounding equals one RNE rounding of the exact quotient, because a float64 quotient "
    "x/s of a float64 x and a float32 s lands exactly on an FP8 rounding midpoint only when "
    "the exact quotient does (tested). {sat} A tensor containing NaN or +-Inf gets the NaN "
    "scale code 0x7FC00000 (all elements code 0) and dequantises to NaN. The value is "
    "scale * element, exact in float64.")

FP8_E4M3_PT = register(BlockFormat(
    name="fp8_e4m3_pt", candidates=(FP8_E4M3,), scale=BINARY32, block=None,
    scale_rule="absmax",
    doc=_PT_DOC.format(e="E4M3", m=448, sat="E4M3 is OFP8's 'fn' variant: no Inf, the "
                                           "element saturates to +-448.")))
FP8_E5M2_PT = register(BlockFormat(
    name="fp8_e5m2_pt", candidates=(FP8_E5M2,), scale=BINARY32, block=None,
    scale_rule="absmax",
    doc=_PT_DOC.format(e="E5M2", m=57344, sat="E5M2 is IEEE-like (Inf, NaN), converted in "
                                              "OFP8's saturating mode: +-57344, never Inf.")))
