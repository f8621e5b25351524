"""Golden twins of the bit-serial (BitMoD-style) datapath.

BitMoD (Chen et al., HPCA 2025; docs/FORMATS.md) streams every weight through one bit-serial
PE. This module defines, bit-exactly, what the mxhw bit-serial datapath computes.

Unified weight representation
-----------------------------
Every supported weight type (BitMoD FP4 / FP3 with their extra value, plain INTn, MXINT
mantissas) maps each code to **one signed integer** ``w`` with ``value = w * 2**lsb_exp``
(``lsb_exp`` fixed per type family: -1 for the BitMoD FP4 family, 0 otherwise). Two views
of that integer are golden:

(a) the BitMoD *term* view, :func:`terms` / :func:`booth_radix4`: FP4/FP3 values (extras
    included) are sums of at most two signed powers of two; INT8 / INT6 are 4 / 3 radix-4
    Booth digits in {0, +-1, +-2};
(b) the plain bit-serial *two's complement* view, :func:`serial_bits`: ``w`` as an
    ``nbits``-bit two's-complement word streamed one bit per cycle, MSB or LSB first.

**The mxhw PE implements view (b)** (the issue asks for a weight one bit per cycle with
the precision a run-time input): ``nbits`` cycles per weight, for every type. The bits each
type needs are :attr:`WeightType.bits` (BitMoD FP3 family: 4, BitMoD FP4 family: 5 or 6,
INTn / MXINTn: n); the engine runs a whole GEMV at one precision, the widest of the
family (:func:`family_bits`). View (a) is the golden reference for a term-serial PE
(BitMoD's own: 2 cycles per FP3/FP4 weight) and is tested here, not built.

Integer group scale (our choice; BitMoD's released code keeps FP16 group scales)
-----------------------------------------------------------------------------
The bit-serial dequantiser multiplies a group's integer partial sum by an **unsigned
integer group scale** of ``scale_bits`` bits (8 by default). :func:`quantize_int_scale`
defines it: per output row ``r`` one shared power-of-two exponent ``row_exp[r]``; the real
scale of group ``g`` is ``scale_int[r, g] * 2**row_exp[r]``, with
``scale_int in [1, 2**scale_bits - 1]``.
Per group and per candidate type, the absmax scale ``max|w| / max|grid|`` (BitMoD's rule,
computed in float64) is formed; ``row_exp`` is the smallest exponent for which the row's
largest such scale (over groups and candidates) rounds (RNE) to at most
``2**scale_bits - 1``; every candidate's scale is then rounded RNE to that grid (at least
1), weights round to the nearest grid value (ties to even code order, saturating), and the
candidate with the smallest squared error wins (ties to the first in the family order
ER+, ER-, EA+, EA-). A tensor's value is then
``W[r, k] = scale_int[r, g] * 2**row_exp[r] * w_int[r, k] * 2**lsb_exp``.

Hardware arithmetic
-------------------
* :func:`pe_dot` -- the PE: exact integer dot product, wrapped to ``acc_width`` bits
  (two's complement); :func:`pe_dot_serial` emulates the PE's cycle-by-cycle shift-and-add
  and is tested equal to it.
* :func:`dequant` -- the dequantiser: ``sum(sum_g * scale_g)`` accumulated, each product
  formed one scale bit per cycle MSB first (``out = (out << 1) + (sum & scale_bit)``),
  wrapped to ``acc_width``.
* :func:`gemv` -- ``y_int[r] = sum_g scale_int[r, g] * sum_{k in g} w_int[r, k] * x[k]``
  (INT8 activations), exact (the engine's accumulators are sized so nothing wraps).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .params import check_int

__all__ = [
    "WeightType", "WEIGHT_TYPES", "FAMILIES", "weight_type", "family", "family_bits",
    "weight_ints", "terms", "booth_radix4", "serial_bits", "from_serial_bits",
    "pe_dot", "pe_dot_serial", "dequant", "dequant_serial", "BitModInt",
    "quantize_int_scale", "gemv", "wrap",
]


def wrap(v: int, width: int) -> int:
    """``v`` as a ``width``-bit two's-complement number."""
    m = 1 << width
    v = int(v) % m
    return v - m if v >= m >> 1 else v


def _min_bits(values) -> int:
    """Smallest two's-complement width holding every integer in ``values``."""
    n = 1
    while not all(-(1 << (n - 1)) <= v < (1 << (n - 1)) for v in values):
        n += 1
    return n


@dataclass(frozen=True)
class WeightType:
    """One weight data type as the bit-serial datapath sees it: code ``c`` of
    ``code_bits`` bits stands for ``ints[c] * 2**lsb_exp`` (``values[c]``)."""

    name: str
    code_bits: int      # width of a code
    ints: tuple         # ints[code]: the signed integer the code maps to
    lsb_exp: int

    @property
    def bits(self) -> int:
        """Two's-complement bits the serial form of this type needs (the PE's precision)."""
        return _min_bits(self.ints)

    @property
    def values(self) -> tuple:
        return tuple(float(np.ldexp(i, self.lsb_exp)) for i in self.ints)

    @property
    def max_abs(self) -> float:
        return max(abs(v) for v in self.values)


# BitMoD grids (docs/FORMATS.md). FP4: codes are E2M1 sign-magnitude; the -0 code (1000) holds
# the extra value. FP3: code = sign bit (MSB) + 2-bit magnitude index into {0, 1, 2, 4};
# the -0 code (100) holds the extra value.
_FP4_MAG = (0, 1, 2, 3, 4, 6, 8, 12)          # E2M1 magnitudes x 2 (0, .5, 1, 1.5, 2, 3, 4, 6)
_FP3_MAG = (0, 1, 2, 4)
_EXTRAS = (("er_pos", +1, "er"), ("er_neg", -1, "er"), ("ea_pos", +1, "ea"),
           ("ea_neg", -1, "ea"))


def _bitmod_type(fam, suffix, sign, kind):
    if fam == "fp4":
        mag, extra, lsb = _FP4_MAG, {"er": 10, "ea": 16}[kind], -1   # 5 and 8, x 2
    else:
        mag, extra, lsb = _FP3_MAG, {"er": 3, "ea": 6}[kind], 0
    ints = list(mag) + [-m for m in mag]
    ints[len(mag)] = sign * extra                 # the -0 code
    return WeightType(f"bitmod_{fam}_{suffix}", (2 * len(mag) - 1).bit_length(),
                      tuple(ints), lsb)


def _int_type(name, n):
    return WeightType(name, n, tuple(c - (1 << n) if c >> (n - 1) else c
                                     for c in range(1 << n)), 0)


WEIGHT_TYPES: dict[str, WeightType] = {}
for _fam in ("fp4", "fp3"):
    for _suffix, _sign, _kind in _EXTRAS:
        _t = _bitmod_type(_fam, _suffix, _sign, _kind)
        WEIGHT_TYPES[_t.name] = _t
for _n in range(2, 9):
    # plain symmetric INTn (the most negative code still decodes) and MXINTn mantissas:
    # both are n-bit two's complement; the block/group scale is applied outside the PE
    WEIGHT_TYPES[f"int{_n}"] = _int_type(f"int{_n}", _n)
    WEIGHT_TYPES[f"mxint{_n}"] = _int_type(f"mxint{_n}", _n)

#: Per-group type candidates (order = tie-break order, as BitMoD's code).
FAMILIES: dict[str, tuple] = {
    "bitmod_fp4": tuple(f"bitmod_fp4_{s}" for s, _, _ in _EXTRAS),
    "bitmod_fp3": tuple(f"bitmod_fp3_{s}" for s, _, _ in _EXTRAS),
    **{f"int{n}": (f"int{n}",) for n in range(2, 9)},
}


def weight_type(name) -> WeightType:
    """The :class:`WeightType` called ``name`` (a descriptor passes through)."""
    if isinstance(name, WeightType):
        return name
    try:
        return WEIGHT_TYPES[name]
    except (KeyError, TypeError):
        raise KeyError(f"unknown weight type {name!r}; known: {', '.join(WEIGHT_TYPES)}") \
            from None


def family(name) -> tuple:
    """The candidate types (descriptors) of the family ``name``."""
    try:
        return tuple(WEIGHT_TYPES[t] for t in FAMILIES[name])
    except (KeyError, TypeError):
        raise KeyError(f"unknown family {name!r}; known: {', '.join(FAMILIES)}") from None


def family_bits(name) -> int:
    """The serial precision a GEMV over the family ``name`` runs at (its widest type)."""
    return max(t.bits for t in family(name))


def weight_ints(types, codes) -> np.ndarray:
    """Signed integers (int64) of ``codes``; ``types`` is one type or an array of type
    names / descriptors broadcastable to ``codes``."""
    codes = np.asarray(codes, dtype=np.int64)
    tarr = np.asarray(types, dtype=object)
    tarr = np.broadcast_to(tarr, codes.shape)
    out = np.empty(codes.shape, dtype=np.int64)
    for idx in np.ndindex(codes.shape):
        t = weight_type(tarr[idx])
        c = int(codes[idx])
        if not 0 <= c < (1 << t.code_bits):
            raise ValueError(f"{t.name} codes must lie in [0, {(1 << t.code_bits) - 1}], "
                             f"not {c}")
        out[idx] = t.ints[c]
    return out


# ---- view (a): terms -----------------------------------------------------------------------

def terms(w: int) -> list[tuple[int, int]]:
    """``w`` (an integer) as signed power-of-two terms ``[(sign, exp), ...]``,
    ``w = sum(sign * 2**exp)``, fewest terms (canonical signed digit form), largest first.

    Every BitMoD FP4/FP3 integer (extras 5, 8, 3, 6 included) has at most 2 terms.
    """
    w = int(w)
    out = []
    e = 0
    while w:
        if w & 1:
            d = 2 - (w & 3)          # +1 if w = 1 mod 4, -1 if w = 3 mod 4 (NAF)
            out.append((d, e))
            w -= d
        w >>= 1
        e += 1
    return out[::-1]


def booth_radix4(w: int, nbits: int) -> list[int]:
    """Radix-4 Booth digits of the ``nbits``-bit two's-complement ``w`` (``nbits`` even),
    least significant first: ``w = sum(d[i] * 4**i)``, ``d[i] in {-2, -1, 0, 1, 2}``,
    ``nbits // 2`` digits (INT8: 4, INT6: 3)."""
    if nbits % 2 or nbits < 2:
        raise ValueError(f"radix-4 Booth needs an even width >= 2, not {nbits}")
    if not -(1 << (nbits - 1)) <= w < (1 << (nbits - 1)):
        raise ValueError(f"{w} does not fit in {nbits} bits")
    u = w & ((1 << nbits) - 1)
    bit = lambda i: (u >> i) & 1 if i >= 0 else 0  # noqa: E731
    return [-2 * bit(2 * i + 1) + bit(2 * i) + bit(2 * i - 1) for i in range(nbits // 2)]


# ---- view (b): two's complement bits -------------------------------------------------------

def serial_bits(w: int, nbits: int, msb_first: bool = True) -> list[int]:
    """The ``nbits`` bits of ``w`` in two's complement, in streaming order."""
    if not -(1 << (nbits - 1)) <= w < (1 << (nbits - 1)):
        raise ValueError(f"{w} does not fit in {nbits} bits")
    bits = [(w >> i) & 1 for i in range(nbits)]
    return bits[::-1] if msb_first else bits


def from_serial_bits(bits, msb_first: bool = True) -> int:
    """Inverse of :func:`serial_bits`."""
    b = list(bits)[::-1] if msb_first else list(bits)
    return sum(x << i for i, x in enumerate(b)) - (b[-1] << len(b))


# ---- the PE ----------------------------------------------------------------------------------

def _check_prec(nbits, weights):
    if not 2 <= nbits:
        raise ValueError(f"precision must be >= 2, not {nbits}")
    lo, hi = -(1 << (nbits - 1)), (1 << (nbits - 1)) - 1
    w = np.asarray(weights, dtype=np.int64)
    if w.size and (w.min() < lo or w.max() > hi):
        raise ValueError(f"weights must fit in {nbits} bits ([{lo}, {hi}]); got values in "
                         f"[{w.min()}, {w.max()}]")


def pe_dot(acts, weights, nbits: int, acc_width: int) -> int:
    """The bit-serial PE's result for one operation: ``sum(acts * weights)`` wrapped to
    ``acc_width`` bits. ``weights`` must fit in ``nbits`` bits (the run-time precision)."""
    _check_prec(nbits, weights)
    a = [int(v) for v in np.ravel(acts)]
    w = [int(v) for v in np.ravel(weights)]
    if len(a) != len(w):
        raise ValueError(f"acts and weights differ in length ({len(a)} vs {len(w)})")
    return wrap(sum(x * y for x, y in zip(a, w)), acc_width)


def pe_dot_serial(acts, weights, nbits: int, acc_width: int, lanes: int = 1,
                  msb_first: bool = True) -> int:
    """:func:`pe_dot` computed as the PE does: ``lanes`` weights per beat, one weight bit per
    cycle, shift-and-add (MSB first: ``p = 2p +- t``; LSB first: ``p += +-t << k``; the
    sign bit subtracts), each beat's ``p`` added to the accumulator."""
    _check_prec(nbits, weights)
    a = [int(v) for v in np.ravel(acts)]
    w = [int(v) for v in np.ravel(weights)]
    acc = 0
    for s in range(0, len(a), lanes):
        ab, wb = a[s:s + lanes], w[s:s + lanes]
        streams = [serial_bits(x, nbits, msb_first) for x in wb]
        p = 0
        for k in range(nbits):
            t = sum(x for x, bits in zip(ab, streams) if bits[k])
            sign_bit = k == 0 if msb_first else k == nbits - 1
            if msb_first:
                p = 2 * p + (-t if sign_bit else t)
            else:
                p += (-t if sign_bit else t) << k
        acc = wrap(acc + p, acc_width)
    return acc


# ---- the dequantiser -----------------------------------------------------------------------

def dequant(sums, scales, acc_width: int) -> int:
    """``sum(sums[g] * scales[g])`` wrapped to ``acc_width`` bits (scales unsigned)."""
    return wrap(sum(int(s) * int(c) for s, c in zip(sums, scales)), acc_width)


def dequant_serial(sums, scales, scale_width: int, acc_width: int) -> int:
    """:func:`dequant` as the hardware does it: per group, ``out = 0`` and for each scale bit,
    MSB first, ``out = (out << 1) + (sum if scale_bit else 0)``; then ``acc += out``."""
    acc = 0
    for s, c in zip(sums, scales):
        c = int(c)
        if not 0 <= c < (1 << scale_width):
            raise ValueError(f"scale {c} does not fit in {scale_width} unsigned bits")
        out = 0
        for i in reversed(range(scale_width)):
            out = (out << 1) + (int(s) if (c >> i) & 1 else 0)
        acc = wrap(acc + out, acc_width)
    return acc


# ---- BitMoD with integer group scales ------------------------------------------------------

@dataclass(frozen=True)
class BitModInt:
    """A weight matrix quantised with integer group scales (see the module doc), in groups
    of ``group`` columns of the family ``family``; the array fields are int64."""

    family: str
    group: int
    scale_bits: int
    codes: np.ndarray       # (rows, cols): element codes
    types: np.ndarray       # (rows, cols // group): index into FAMILIES[family]
    scale_int: np.ndarray   # (rows, cols // group): in [1, 2**scale_bits - 1]
    row_exp: np.ndarray     # (rows,)

    @property
    def type_names(self) -> np.ndarray:
        """Per-group type names, (rows, groups)."""
        names = np.array(FAMILIES[self.family], dtype=object)
        return names[self.types]

    @property
    def lsb_exp(self) -> int:
        return family(self.family)[0].lsb_exp

    def weight_ints(self) -> np.ndarray:
        """``w_int`` (rows, cols)."""
        t = np.repeat(self.type_names, self.group, axis=1)
        return weight_ints(t, self.codes)

    def dequantize(self) -> np.ndarray:
        """Exact float64 weights."""
        s = np.repeat(self.scale_int, self.group, axis=1).astype(np.float64)
        e = (self.row_exp[:, None] + self.lsb_exp)
        return np.ldexp(s * self.weight_ints(), e)


def _nearest_codes(t: WeightType, v: np.ndarray) -> np.ndarray:
    """Codes of the grid values nearest to ``v`` (saturating; ties to the smaller value)."""
    vals = np.array(t.values)
    order = np.argsort(vals, kind="stable")
    sv = vals[order]
    mids = (sv[:-1] + sv[1:]) / 2
    idx = np.searchsorted(mids, v, side="left")
    return order[idx]


def quantize_int_scale(w, family_name: str = "bitmod_fp4", group: int = 128,
                       scale_bits: int = 8) -> BitModInt:
    """Quantise ``w`` (rows x cols, cols a multiple of ``group``) per group of ``group``
    along the columns, with integer group scales (module doc). Ties between grid points go
    to the smaller value (a documented choice of ours)."""
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 2:
        raise ValueError(f"w must be 2-D, not of shape {w.shape}")
    check_int("group", group, 1)
    if w.shape[1] % group:
        raise ValueError(f"group must be a positive integer dividing cols={w.shape[1]}, "
                         f"not {group!r}")
    check_int("scale_bits", scale_bits, 1, 16)
    if not np.isfinite(w).all():
        raise ValueError("w must be finite")
    cands = family(family_name)
    R, K = w.shape
    G = K // group
    wb = w.reshape(R, G, group)
    amax = np.abs(wb).max(-1)                                  # (R, G)
    fscale = np.stack([amax / t.max_abs for t in cands])       # (C, R, G)
    smax = (1 << scale_bits) - 1
    top = fscale.max(axis=(0, 2))                              # (R,)
    row_exp = np.zeros(R, dtype=np.int64)
    for r in range(R):
        if top[r] == 0:
            row_exp[r] = 0
            continue
        e = int(np.frexp(top[r] / smax)[1]) - 2
        while np.round(np.ldexp(top[r], -e)) > smax:
            e += 1
        row_exp[r] = e
    best = None
    for i, t in enumerate(cands):
        si = np.clip(np.round(np.ldexp(fscale[i], -row_exp[:, None])), 1, smax).astype(np.int64)
        sval = np.ldexp(si.astype(np.float64), row_exp[:, None])
        codes = _nearest_codes(t, wb / sval[..., None])
        err = ((wb - sval[..., None] * np.array(t.values)[codes]) ** 2).sum(-1)
        if best is None:
            best = [si, codes, np.zeros((R, G), np.int64), err]
            continue
        better = err < best[3]
        best[0] = np.where(better, si, best[0])
        best[1] = np.where(better[..., None], codes, best[1])
        best[2] = np.where(better, i, best[2])
        best[3] = np.where(better, err, best[3])
    si, codes, types, _ = best
    return BitModInt(family_name, group, scale_bits, codes.reshape(R, K).astype(np.int64),
                     types, si, row_exp)


def gemv(q: BitModInt, x) -> list[int]:
    """The engine's result: ``y_int[r] = sum_g scale_int[r, g] * sum_{k in g}
    w_int[r, k] * x[k]`` (exact Python ints). ``x``: integer activations (INT8 in the
    engine). The real product is ``y_int[r] * 2**(row_exp[r] + lsb_exp)`` times the
    activations' own scale."""
    x = [int(v) for v in np.ravel(x)]
    wi = q.weight_ints()
    R, K = wi.shape
    if len(x) != K:
        raise ValueError(f"x has {len(x)} values, W has {K} columns")
    out = []
    for r in range(R):
        y = 0
        for g in range(K // q.group):
            s = sum(int(wi[r, k]) * x[k] for k in range(g * q.group, (g + 1) * q.group))
            y += int(q.scale_int[r, g]) * s
        out.append(y)
    return out
