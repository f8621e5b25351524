"""Element formats: :class:`ElementFormat`, its decode table and exact encoder, and the
validated constructors (:func:`fp_format`, :func:`int_format`, :func:`table_format`,
:func:`pow2_scale_format`, :func:`binary32_format`). Reach them through
:mod:`mxhw.golden.formats` (the module doc there says what a format is).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .params import check_int

__all__ = ["ElementFormat", "ROUNDING_MODES", "fp_format", "int_format", "table_format",
           "pow2_scale_format", "binary32_format"]

#: Rounding modes understood by :meth:`ElementFormat.encode`.
#: ``"rne"``: round to nearest, ties to even (the OCP and IEEE default);
#: ``"rna"``: round to nearest, ties away from zero (microxcaling's default);
#: ``"rtz"``: truncation (round toward zero);
#: ``"floor"``: round toward minus infinity (MASE's ``floor`` mantissa cast).
ROUNDING_MODES = ("rne", "rna", "rtz", "floor")

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
