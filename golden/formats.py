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
Point Specification (OFP8) for the OCP formats; see ``FORMATS.md`` of the project for the
others.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .params import check_int

__all__ = [
    "ElementFormat", "BlockFormat", "ROUNDING_MODES", "SCALE_RULES",
    "fp_format", "int_format", "table_format", "pow2_scale_format", "binary32_format",
    "BINARY32",
    "register", "get", "names", "element_names", "block_names",
]

#: Rounding modes understood by :meth:`ElementFormat.encode`.
#: ``"rne"``: round to nearest, ties to even (the OCP and IEEE default);
#: ``"rna"``: round to nearest, ties away from zero (microxcaling's default);
#: ``"rtz"``: truncation (round toward zero);
#: ``"floor"``: round toward minus infinity (MASE's ``floor`` mantissa cast).
ROUNDING_MODES = ("rne", "rna", "rtz", "floor")

#: Scale rules understood by the block quantiser (see :class:`BlockFormat`).
#: ``"minmax"``: asymmetric, with a zero point (see :class:`BlockFormat`).
SCALE_RULES = ("ocp_floor", "ceil_pow2", "absmax", "minmax")

_KINDS = ("fp", "int", "table", "pow2", "binary32")
_ENCODE_CHUNK = 1 << 16  # values per chunk in ElementFormat.encode
_SPECIALS = ("none", "ieee", "fn")


@dataclass(frozen=True, eq=False)
class ElementFormat:
    """Descriptor of an element (or scale) format.

    Build instances with :func:`fp_format`, :func:`int_format`, :func:`table_format`,
    :func:`pow2_scale_format` or :func:`binary32_format`; they validate their arguments.

    Parameters
    ----------
    name : str
        Registry name, e.g. ``"fp8_e4m3"``.
    kind : str
        ``"fp"`` (sign, exponent, mantissa fields, subnormals), ``"int"`` (two's complement
        with an implicit scale ``2**-frac_bits``), ``"pow2"`` (unsigned biased exponent only,
        like E8M0), ``"table"`` (codes index an explicit value table) or ``"binary32"``
        (IEEE 754 single precision; the code is the float32 bit pattern as an unsigned
        32-bit integer; no decode table, conversions through NumPy float32, RNE only).
    bits : int
        Total code width.
    exp_bits, man_bits, bias : int
        Field widths and exponent bias (``fp``; ``pow2`` uses ``exp_bits == bits`` and
        ``bias``).
    special : str
        Inf/NaN encoding for ``fp``: ``"none"`` (all codes finite), ``"ieee"`` (exponent
        all ones: mantissa 0 is Inf, others NaN; OFP8 E5M2) or ``"fn"`` (only S.1...1.1...1
        is NaN, no Inf; OFP8 E4M3).  ``pow2`` formats use ``"fn"`` for a NaN all-ones code.
    frac_bits : int
        ``int``: the code ``c`` means ``c * 2**-frac_bits``.
    symmetric : bool
        ``int``: the encoder clamps to ``+-(2**(bits-1) - 1)`` and never produces the most
        negative code (which still decodes).
    values : tuple of float
        ``table``: the value of every code, NaN for unused codes.
    doc : str
        Where the format comes from and the choices made where its source is silent.
    """

    name: str
    kind: str
    bits: int
    exp_bits: int = 0
    man_bits: int = 0
    bias: int = 0
    special: str = "none"
    frac_bits: int = 0
    symmetric: bool = False
    values: tuple = ()
    doc: str = field(default="", repr=False)

    # ---- derived facts -------------------------------------------------------------
    @property
    def n_codes(self) -> int:
        """Number of codes, ``2**bits``."""
        return 1 << self.bits

    @property
    def signed(self) -> bool:
        """True if the format has negative values."""
        if self.kind == "binary32":
            return True
        return self.kind != "pow2" and bool(np.any(self.finite_values < 0))

    @cached_property
    def table(self) -> np.ndarray:
        """Decode table: float64 array, ``table[code]`` is the code's exact value.

        Raises ValueError for ``binary32`` (2**32 codes): use :meth:`decode`.
        """
        if self.kind == "binary32":
            raise ValueError(f"{self.name} has 2**32 codes and no decode table; use "
                             f"decode() / encode()")
        t = _build_table(self)
        t.setflags(write=False)
        return t

    @cached_property
    def finite_values(self) -> np.ndarray:
        """Sorted distinct finite values (``-0`` and ``+0`` are one value)."""
        t = self.table
        return np.unique(t[np.isfinite(t)] + 0.0)

    @property
    def max_normal(self) -> float:
        """Largest finite value."""
        if self.kind == "binary32":
            return float(np.finfo(np.float32).max)
        return float(self.finite_values[-1])

    @property
    def max_magnitude(self) -> float:
        """Largest magnitude the encoder produces (``max|grid|``; for value tables with an
        extra negative value, e.g. BitMoD's EA-, larger than :attr:`max_normal`)."""
        if self.kind == "binary32":
            return self.max_normal
        v = self._encode_tables[0]
        return float(max(abs(v[0]), abs(v[-1])))

    @property
    def min_value(self) -> float:
        """Smallest (most negative) finite value."""
        if self.kind == "binary32":
            return -self.max_normal
        return float(self.finite_values[0])

    @property
    def min_subnormal(self) -> float:
        """Smallest positive value (the smallest subnormal for ``fp``, the step for ``int``)."""
        if self.kind == "binary32":
            return 2.0 ** -149
        v = self.finite_values
        return float(v[v > 0][0])

    @property
    def min_normal(self) -> float | None:
        """Smallest positive normal value (``fp``, ``binary32``); ``None`` for other kinds."""
        if self.kind not in ("fp", "binary32"):
            return None
        return 2.0 ** (1 - self.bias)

    @property
    def emax(self) -> int:
        """``floor(log2(max_normal))``: the exponent of the largest power of two in range.

        This is OCP's ``emax_elem`` used by the block scale rule (8 for E4M3, 0 for INT8).
        """
        return math.frexp(self.max_normal)[1] - 1

    @cached_property
    def lsb_exp(self) -> int:
        """Exponent ``e`` of the coarsest grid ``2**e`` on which every finite value lies.

        Every finite value is ``int_significand * 2**lsb_exp``: the exact fixed-point form
        the reference arithmetic (and the hardware) uses.
        """
        v = self.finite_values
        v = np.abs(v[v != 0])
        if v.size == 0:
            return 0
        e = 0
        while not np.all(np.ldexp(v, -e) == np.round(np.ldexp(v, -e))):
            e -= 1
        while np.all(np.ldexp(v, -(e + 1)) == np.round(np.ldexp(v, -(e + 1)))):
            e += 1
        return e

    @cached_property
    def int_table(self) -> np.ndarray:
        """Integer significand of every code: ``table == int_table * 2**lsb_exp``.

        Non-finite codes hold 0; use :attr:`nonfinite_mask` to tell them apart.
        """
        t = self.table
        fin = np.isfinite(t)
        scaled = np.ldexp(t[fin], -self.lsb_exp)
        if scaled.size and np.abs(scaled).max() >= 2.0**63:
            # wide formats (E8M0 spans 2**254): exact Python ints
            out = np.zeros(self.n_codes, dtype=object)
            out[fin] = [int(v) for v in scaled]
        else:
            out = np.zeros(self.n_codes, dtype=np.int64)
            out[fin] = scaled.astype(np.int64)
        out.setflags(write=False)
        return out

    @cached_property
    def nonfinite_mask(self) -> np.ndarray:
        """Boolean per code: the code decodes to NaN or +-Inf."""
        m = ~np.isfinite(self.table)
        m.setflags(write=False)
        return m

    @property
    def has_nan(self) -> bool:
        return self.kind in ("fp", "binary32") and self.special in ("ieee", "fn") or (
            self.kind == "pow2" and self.special == "fn")

    @property
    def has_inf(self) -> bool:
        return self.kind in ("fp", "binary32") and self.special == "ieee"

    @property
    def nan_code(self) -> int | None:
        """The canonical (positive) NaN code, or ``None``."""
        if not self.has_nan:
            return None
        if self.kind == "pow2":
            return self.n_codes - 1
        if self.special == "fn":
            return (1 << (self.bits - 1)) - 1
        return (((1 << self.exp_bits) - 1) << self.man_bits) | (1 << (self.man_bits - 1))

    @property
    def inf_code(self) -> int | None:
        """The +Inf code, or ``None``."""
        if not self.has_inf:
            return None
        return ((1 << self.exp_bits) - 1) << self.man_bits

    @property
    def sign_bit(self) -> int | None:
        """Bit index of the sign for ``fp`` and ``int`` formats, else ``None``."""
        return self.bits - 1 if self.kind in ("fp", "int", "binary32") else None

    @cached_property
    def _zero_codes(self) -> tuple[int, int]:
        """(+0 code, code for a negative value that rounds to zero)."""
        t = self.table
        z = np.flatnonzero(t == 0)
        if z.size == 0:  # no zero (E8M0)
            return None, None
        pos = int(z[0])
        neg = pos
        for c in z:
            if np.signbit(t[c]):
                neg = int(c)
        return pos, neg

    @cached_property
    def _encode_tables(self):
        """Sorted distinct finite values, their codes, and midpoints between neighbours."""
        t = self.table
        vals = self.finite_values
        if self.kind == "int" and self.symmetric:
            vals = vals[1:]  # the most negative code decodes but is never produced
        codes = np.empty(vals.size, dtype=np.int64)
        for i, v in enumerate(vals):
            if v == 0:
                codes[i] = self._zero_codes[0]
            else:
                # the lowest code with that value: unique for fp/int; tables pick the first
                codes[i] = int(np.flatnonzero(t == v)[0])
        mids = (vals[:-1] + vals[1:]) / 2  # exact: neighbours are short dyadic numbers
        return vals, codes, mids

    # ---- conversion ----------------------------------------------------------------
    def decode(self, codes) -> np.ndarray:
        """Exact float64 values of integer ``codes`` (any shape)."""
        codes = np.asarray(codes)
        if codes.dtype.kind not in "iu":
            raise TypeError(f"codes must be integers, not {codes.dtype}")
        if codes.size and (codes.min() < 0 or codes.max() >= self.n_codes):
            raise ValueError(
                f"{self.name} codes must lie in [0, {self.n_codes - 1}]; got values in "
                f"[{codes.min()}, {codes.max()}]")
        if self.kind == "binary32":
            # the code is the bit pattern: reinterpret as float32, widen exactly to float64
            # (a signalling NaN pattern widens to a quiet NaN: still NaN)
            with np.errstate(invalid="ignore"):
                return codes.astype(np.uint32).view(np.float32).astype(np.float64)
        return self.table[codes]

    def encode(self, values, rounding: str = "rne", saturate: bool = True) -> np.ndarray:
        """Codes (int64, same shape) of the nearest representable values.

        Parameters
        ----------
        values : array_like of float
            Converted to float64 first (exact for float16/32/bfloat16 inputs).
        rounding : {"rne", "rna", "rtz", "floor"}
            Round to nearest ties-to-even (ties pick the even code, which for ``fp``
            and ``int`` is the even significand), nearest ties-away-from-zero, or toward zero.
        saturate : bool
            True (the OCP MX default): a value beyond the largest finite magnitude, Inf
            included, becomes +-max with its sign. False (OFP8's non-saturating mode, only
            for formats with Inf or NaN): a value that rounds beyond +-max becomes +-Inf
            where the format has Inf, else NaN; +-Inf input likewise.

        NaN input gives the NaN code (sign kept); a format without NaN raises ValueError.
        A value that rounds to zero keeps its sign where the format has a negative zero.
        """
        if rounding not in ROUNDING_MODES:
            raise ValueError(f"rounding must be one of {ROUNDING_MODES}, not {rounding!r}")
        if not saturate and not (self.has_inf or self.has_nan):
            raise ValueError(
                f"saturate=False needs a format with Inf or NaN; {self.name} has neither")
        x = np.asarray(values, dtype=np.float64)
        if not self.has_nan and np.isnan(x).any():
            raise ValueError(f"{self.name} has no NaN encoding; cannot encode NaN inputs")
        if self.kind == "binary32":
            return self._encode_binary32(x, rounding, saturate)
        # in cache-sized chunks: the same result, several times faster on large tensors
        flat = np.ascontiguousarray(x).reshape(-1)
        out = np.empty(flat.size, dtype=np.int64)
        for s in range(0, flat.size, _ENCODE_CHUNK):
            out[s:s + _ENCODE_CHUNK] = self._encode_flat(flat[s:s + _ENCODE_CHUNK], rounding,
                                                         saturate)
        return out.reshape(x.shape)

    def _encode_flat(self, x, rounding, saturate):
        vals, codes, mids = self._encode_tables
        n = vals.size
        nan = np.isnan(x)
        any_nan = bool(nan.any())
        xs = np.where(nan, 0.0, x) if any_nan else x
        if rounding == "floor":
            # toward -inf: the largest value <= x; below the lowest value, the lowest
            idx = np.clip(np.searchsorted(vals, xs, side="right") - 1, 0, n - 1)
        elif rounding == "rtz":
            # toward zero: the largest value <= x for x >= 0, the smallest >= x for x < 0;
            # beyond the ends, the end value (saturation)
            idx = np.where(xs >= 0, np.searchsorted(vals, xs, side="right") - 1,
                           np.searchsorted(vals, xs, side="left"))
            idx = np.clip(idx, 0, n - 1)
        else:
            # nearest: the number of midpoints below x (a tie counts as not below, i.e.
            # picks the lower neighbour, then is settled below); +-Inf and values beyond
            # the ends land on the end values (saturation)
            idx = np.searchsorted(mids, xs, side="left")
            j = np.minimum(idx, n - 2)
            t = np.flatnonzero(mids[j] == xs)
            if t.size:
                k = j[t]
                if rounding == "rne":
                    up = (codes[k + 1] & 1) == 0     # the even code
                else:  # rna
                    up = vals[k + 1] > 0             # away from zero
                idx[t] = k + up
        out = codes[idx]
        # signed zero
        zpos, zneg = self._zero_codes
        if zneg != zpos:
            zi = int(np.flatnonzero(vals == 0)[0])
            out = np.where((idx == zi) & np.signbit(xs), zneg, out)
        if not saturate:
            out = np.where(self._overflows(xs, rounding), self._overflow_code(xs), out)
        if any_nan:
            nc = self.nan_code
            sign = (1 << (self.bits - 1)) if self.kind == "fp" else 0
            out = np.where(nan, np.where(np.signbit(x), nc | sign, nc), out)
        return out

    def _encode_binary32(self, x, rounding, saturate):
        """IEEE 754 binary32 encode: NumPy's float64 -> float32 cast, which rounds to
        nearest, ties to even (subnormals included) and overflows to +-Inf; the code is the
        float32 bit pattern. ``saturate=True`` replaces +-Inf results (overflow or Inf input)
        by +-max (0x7F7FFFFF with the sign), like the table encoder; NaN input gives the
        canonical quiet NaN 0x7FC00000 with the input's sign."""
        if rounding != "rne":
            raise ValueError(f"{self.name} encodes with rounding 'rne' only, not {rounding!r}")
        with np.errstate(over="ignore"):
            f = x.astype(np.float32)
        if saturate:
            f = np.where(np.isinf(f), np.copysign(np.finfo(np.float32).max, f), f)
            f = f.astype(np.float32)
        codes = np.ascontiguousarray(f).view(np.uint32).astype(np.int64)
        nan = np.isnan(x)
        if nan.any():
            sign = np.where(np.signbit(x), 1 << 31, 0)
            codes = np.where(nan, self.nan_code | sign, codes)
        return codes

    def _overflows(self, x, rounding):
        """Where a value rounds beyond +-max (non-saturating conversion)."""
        vmax = self.max_normal
        if rounding in ("rtz", "floor"):
            return np.isinf(x) if rounding == "rtz" else (x == np.inf) | (x < self.min_value)
        # the value one step past max in the top binade, and the parity its code would have
        step = 2.0 ** (self.emax - self.man_bits) if self.kind == "fp" else 2.0 ** -self.frac_bits
        mid = vmax + step / 2
        max_code = int(self._encode_tables[1][-1])
        if rounding == "rne" and (max_code & 1) == 0:
            return np.abs(x) > mid  # a tie stays at the (even) max
        return np.abs(x) >= mid

    def _overflow_code(self, x):
        sign = np.where(np.signbit(x), 1 << (self.bits - 1), 0)
        if self.has_inf:
            return self.inf_code | sign
        return self.nan_code | sign

    def __repr__(self):
        return f"ElementFormat({self.name!r})"


def _build_table(f: ElementFormat) -> np.ndarray:
    codes = np.arange(f.n_codes, dtype=np.int64)
    if f.kind == "fp":
        m_mask = (1 << f.man_bits) - 1
        e_mask = (1 << f.exp_bits) - 1
        man = codes & m_mask
        exp = (codes >> f.man_bits) & e_mask
        sign = np.where((codes >> (f.bits - 1)) & 1, -1.0, 1.0)
        sub = exp == 0
        sig = np.where(sub, man, man | (1 << f.man_bits)).astype(np.float64)
        e = np.where(sub, 1, exp) - f.bias - f.man_bits
        t = sign * np.ldexp(sig, e)
        if f.special == "ieee":
            top = exp == e_mask
            t = np.where(top & (man == 0), sign * np.inf, t)
            t = np.where(top & (man != 0), np.nan, t)
        elif f.special == "fn":
            t = np.where((exp == e_mask) & (man == m_mask), np.nan, t)
        return t
    if f.kind == "int":
        signed = np.where(codes >= f.n_codes // 2, codes - f.n_codes, codes)
        return np.ldexp(signed.astype(np.float64), -f.frac_bits)
    if f.kind == "pow2":
        t = np.ldexp(1.0, codes - f.bias)
        if f.special == "fn":
            t[-1] = np.nan
        return t
    return np.array(f.values, dtype=np.float64)


# ---- constructors (validated) ----------------------------------------------------------

def fp_format(name, exp_bits, man_bits, bias=None, special="none", doc=""):
    """A sign/exponent/mantissa format with subnormals. ``bias`` defaults to
    ``2**(exp_bits-1) - 1``."""
    check_int("exp_bits", exp_bits, 1, 11)
    check_int("man_bits", man_bits, 0, 23)
    if bias is None:
        bias = (1 << (exp_bits - 1)) - 1
    check_int("bias", bias, -1024)
    if special not in _SPECIALS:
        raise ValueError(f"special must be one of {_SPECIALS}, not {special!r}")
    if special == "fn" and man_bits == 0:
        raise ValueError("special='fn' needs at least one mantissa bit")
    bits = 1 + exp_bits + man_bits
    if bits > 16:
        raise ValueError(f"fp formats up to 16 bits have decode tables; {name} has {bits}")
    return ElementFormat(name=name, kind="fp", bits=bits, exp_bits=exp_bits,
                         man_bits=man_bits, bias=bias, special=special, doc=doc)


def int_format(name, bits, frac_bits=0, symmetric=True, doc=""):
    """Two's complement ``bits``-bit integer meaning ``code * 2**-frac_bits``."""
    check_int("bits", bits, 2, 16)
    check_int("frac_bits", frac_bits, -64, 64)
    return ElementFormat(name=name, kind="int", bits=bits, frac_bits=frac_bits,
                         symmetric=bool(symmetric), doc=doc)


def table_format(name, values, doc=""):
    """A format whose ``2**bits`` codes index ``values`` (NaN marks an unused code)."""
    values = tuple(float(v) for v in values)
    n = len(values)
    if n < 2 or n & (n - 1):
        raise ValueError(f"values must have a power-of-two length >= 2, not {n}")
    fin = [v for v in values if math.isfinite(v)]
    if 0.0 not in fin:
        raise ValueError(f"{name}: a value table must contain 0")
    if any(math.isinf(v) for v in values):
        raise ValueError(f"{name}: value tables hold finite values or NaN (unused), not Inf")
    return ElementFormat(name=name, kind="table", bits=n.bit_length() - 1, values=values,
                         doc=doc)


def binary32_format(name="fp32", doc=""):
    """IEEE 754 binary32 (kind ``"binary32"``): 1 sign, 8 exponent, 23 mantissa bits, bias
    127, subnormals, Inf and NaN. The code is the float32 bit pattern (0 .. 2**32 - 1)."""
    return ElementFormat(name=name, kind="binary32", bits=32, exp_bits=8, man_bits=23,
                         bias=127, special="ieee", doc=doc)


def pow2_scale_format(name, bits=8, bias=127, nan=True, doc=""):
    """An unsigned biased power-of-two scale (E8M0): code c means ``2**(c - bias)``."""
    check_int("bits", bits, 1, 16)
    return ElementFormat(name=name, kind="pow2", bits=bits, exp_bits=bits, bias=bias,
                         special="fn" if nan else "none", doc=doc)


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
