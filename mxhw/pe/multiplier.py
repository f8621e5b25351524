"""Exact element multiplier: the product of two MX element codes as a fixed-point integer."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed
from amaranth.lib import data
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..formats import _nonfinite, element_format, int_range, is_moded, layout_of, \
    lsb_shift, signed_width, unpack
from ..lib.params import check_pipeline

__all__ = ["ElementMultiplier", "product_width", "product_range", "LUT_MULTIPLY_BITS",
           "TABLE_MULTIPLY_BITS"]

#: Significand products whose narrower operand has at most this many bits are built as a
#: sum of shifted partial products (LUTs and carry chains); wider ones as a ``*`` that
#: synthesis maps to a DSP block (e.g. MXINT8's 8 x 8). An FP4/FP6/FP8 significand is 2-4
#: bits: a DSP block for it is slower than the LUTs and wastes the block.
LUT_MULTIPLY_BITS = 4


#: In :func:`multiply_sign_magnitude` (the sign-magnitude product the systolic PEs take),
#: sign-magnitude floating-point operands whose magnitude fields (the code without its sign
#: bit) have at most this many bits together (e.g. FP4 x FP4: 3 + 3) get the product's
#: magnitude as a table of the golden ``int_table`` products, one logic function of those
#: bits per output bit (a few LUTs deep), instead of the decode, the significand product
#: and the shift, whose small adders map to chained carry chains. (:func:`multiply`, a
#: signed product, does not: its signed significand product and shift are smaller on ECP5
#: than the table and a negation, 33 against 42 LUT4-eq. for FP4 x FP4.)
TABLE_MULTIPLY_BITS = 6


def _table_operand(fmt):
    """``fmt`` is a plain sign-magnitude FP element whose sign is its top bit."""
    return (fmt.kind == "fp" and not is_moded(fmt) and fmt.sign_bit == fmt.bits - 1)


def _table_pair(fmt_a, fmt_b):
    """The product of ``fmt_a`` and ``fmt_b`` elements is a table (see
    :data:`TABLE_MULTIPLY_BITS`)."""
    return (_table_operand(fmt_a) and _table_operand(fmt_b)
            and fmt_a.bits + fmt_b.bits - 2 <= TABLE_MULTIPLY_BITS)


def product_range(fmt_a, fmt_b):
    """``(min, max)`` over all finite code pairs of ``int_a * int_b`` (Python ints)."""
    (alo, ahi), (blo, bhi) = int_range(element_format(fmt_a, "fmt_a")), \
        int_range(element_format(fmt_b, "fmt_b"))
    corners = [alo * blo, alo * bhi, ahi * blo, ahi * bhi]
    return min(corners), max(corners)


def product_width(fmt_a, fmt_b):
    """Width of the signed exact product of elements of ``fmt_a`` and ``fmt_b``, derived
    from the extremes of the two formats' ``int_table``."""
    return signed_width(*product_range(fmt_a, fmt_b))


def multiply(m, fmt_a, a, fmt_b, b):
    """Combinational exact product logic in ``m``: returns ``(p, nonfinite)`` signals,
    ``p`` a ``signed(product_width)`` at ``2**(lsb_a + lsb_b)`` (0 when nonfinite): the
    :func:`multiply_parts` product shifted into place."""
    prod, shift, nonfinite = multiply_parts(m, fmt_a, a, fmt_b, b)
    p = Signal(signed(product_width(fmt_a, fmt_b)))
    m.d.comb += p.eq(prod << shift)
    return p, nonfinite


def multiply_parts(m, fmt_a, a, fmt_b, b, zero_nonfinite=True):
    """The exact product before its exponent shift: ``(prod, shift, nonfinite)`` signals
    with ``prod << shift`` the product at ``2**(lsb_a + lsb_b)``.

    ``prod`` is the signed product of the two significands
    (:func:`signed_significand_product`; 0 when ``nonfinite``, unless ``zero_nonfinite``
    is false: then it is unspecified there, for a caller that discards it), ``shift`` the
    sum of the operands' exponents on the LSB grid (unsigned). The sign is applied to the
    narrow significand product, before the shift: the wide fixed-point product is never
    negated. (:func:`decode_parts` then :func:`significand_product`: a caller may put a
    register between them.)"""
    ops, shift, nonfinite = decode_parts(m, fmt_a, a, fmt_b, b, zero_nonfinite)
    return significand_product(m, *ops), shift, nonfinite


def decode_parts(m, fmt_a, a, fmt_b, b, zero_nonfinite=True):
    """The first half of :func:`multiply_parts`, the codes decoded: ``(ops, shift,
    nonfinite)``, ``ops`` the :func:`significand_operands` whose
    :func:`significand_product` is ``prod``."""
    ua, ub = unpack(m, fmt_a, a), unpack(m, fmt_b, b)
    nonfinite = Signal()
    m.d.comb += nonfinite.eq(_nonfinite(ua) | _nonfinite(ub))
    ops = significand_operands(m, fmt_a, ua, a, fmt_b, ub, b,
                               nonfinite if zero_nonfinite else 0)
    sh = lsb_shift(ua) + lsb_shift(ub)
    shift = Signal(max(1, len(sh)), name="shift")
    m.d.comb += shift.eq(sh)
    return ops, shift, nonfinite


def _raw(code):
    return code.as_value() if isinstance(code, data.View) else code


def _signed_operand(fmt, u, code, flip):
    """The operand's significand with its sign (an ``int`` element: the code itself, no
    absolute value), negated where ``flip``."""
    if fmt.kind == "int" and not is_moded(fmt):
        v = _raw(code)[:fmt.bits].as_signed()
        return v if flip is None else Mux(flip, -v, v)
    neg = u.sign if flip is None else u.sign ^ flip
    return Mux(neg, -u.significand, u.significand)


def signed_significand_product(m, fmt_a, ua, a, fmt_b, ub, b, nonfinite):
    """The signed product of the two significands (``ua``, ``ub``: :func:`unpack` of the
    codes ``a``, ``b``), 0 where ``nonfinite`` (a 1-bit value, or 0 for never): the
    product before its exponent shift.

    A narrow significand (at most :data:`LUT_MULTIPLY_BITS` bits) multiplies as a sum of
    shifted copies of the other operand, which carries the sign of the product (one
    negation of the wider significand, no absolute value of an ``int`` code); wider pairs
    multiply their signed operands with ``*`` (a signed DSP multiplier)."""
    return significand_product(
        m, *significand_operands(m, fmt_a, ua, a, fmt_b, ub, b, nonfinite))


def significand_operands(m, fmt_a, ua, a, fmt_b, ub, b, nonfinite):
    """The operands of :func:`signed_significand_product`, as signals: ``(x, y, lut,
    width)``: ``lut``: ``x`` the narrow significand (0 where ``nonfinite``), ``y`` the
    wide one with the product's sign; else the two signed operands of ``*`` (``x`` 0
    where ``nonfinite``); ``width`` the product's."""
    sa, sb = ua.significand, ub.significand
    width = len(sa) + len(sb) + 1
    lut = min(len(sa), len(sb)) <= LUT_MULTIPLY_BITS
    if lut:
        (fn, un, cn), (fw, uw, cw) = (((fmt_a, ua, a), (fmt_b, ub, b)) if len(sa) <= len(sb)
                                      else ((fmt_b, ub, b), (fmt_a, ua, a)))
        x = Mux(nonfinite, 0, un.significand)
        y = _signed_operand(fw, uw, cw, un.sign)
    else:
        x = Mux(nonfinite, 0, _signed_operand(fmt_a, ua, a, None))
        y = _signed_operand(fmt_b, ub, b, None)
    xs = Signal(Value.cast(x).shape(), name="sig_narrow" if lut else "sig_a")
    ys = Signal(Value.cast(y).shape(), name="sig_wide" if lut else "sig_b")
    m.d.comb += [xs.eq(x), ys.eq(y)]
    return xs, ys, lut, width


def partial_products(x, y, lo=0, hi=None):
    """The terms of a ``lut`` :func:`significand_product` ``x * y``: ``y << i`` where bit
    ``i`` of ``x`` is set, for ``i`` in ``lo..hi-1`` (default all of ``x``), each shifted
    by ``i - lo`` (their sum is the part of the product from those bits, over
    ``2**lo``)."""
    hi = len(x) if hi is None else hi
    return [Mux(x[i], y << (i - lo), 0) for i in range(lo, hi)]


def significand_product(m, x, y, lut, width):
    """The product of :func:`significand_operands` ``(x, y, lut, width)``: a sum of
    shifted copies of ``y`` (``lut``) or ``x * y``, a ``signed(width)`` signal."""
    prod = Signal(signed(width), name="sig_prod")
    if lut:
        m.d.comb += prod.eq(sum(partial_products(x, y)))
    else:
        m.d.comb += prod.eq(x * y)
    return prod


def multiply_sign_magnitude(m, fmt_a, a, fmt_b, b):
    """:func:`multiply` before its negation: ``(mag, neg, nonfinite)``, the product is
    ``-mag`` if ``neg`` else ``mag`` (``mag`` unsigned, as wide as the largest product
    magnitude; both 0 when nonfinite). A sum of products can then take the sign as
    ``mag ^ -neg`` with ``neg`` as the adder's carry-in: one carry chain instead of a
    negation's and the adder's."""
    ua = unpack(m, fmt_a, a)
    ub = unpack(m, fmt_b, b)
    width = product_width(fmt_a, fmt_b)
    lo, hi = product_range(fmt_a, fmt_b)
    nonfinite = Signal()
    if _table_pair(fmt_a, fmt_b):
        mag = _table_magnitude(m, fmt_a, a, fmt_b, b, width)
    else:
        # significands multiply, exponents (as shifts from the LSB grid) add
        sa, sb = ua.significand, ub.significand
        narrow, wide = (sa, sb) if len(sa) <= len(sb) else (sb, sa)
        if len(narrow) <= LUT_MULTIPLY_BITS:
            prod = Signal(len(sa) + len(sb))
            m.d.comb += prod.eq(sum(Mux(narrow[i], wide << i, 0)
                                    for i in range(len(narrow))))
        else:
            prod = sa * sb
        mag = prod << (lsb_shift(ua) + lsb_shift(ub))
    mag_out = Signal(max(-lo, hi, 1).bit_length(), name="mag_nf")
    neg = Signal(name="neg")
    m.d.comb += [
        nonfinite.eq(_nonfinite(ua) | _nonfinite(ub)),
        mag_out.eq(Mux(nonfinite, 0, mag)),
        neg.eq(~nonfinite & (ua.sign ^ ub.sign)),
    ]
    return mag_out, neg, nonfinite


def _table_magnitude(m, fmt_a, a, fmt_b, b, width):
    """``|int_a * int_b|`` (golden ``int_table``) of two :func:`_table_operand` codes, from
    their magnitude fields: each output bit a constant truth table indexed by them."""
    na, nb = fmt_a.bits - 1, fmt_b.bits - 1
    ra = a.as_value() if isinstance(a, data.View) else a
    rb = b.as_value() if isinstance(b, data.View) else b
    idx = Cat(ra[:na], rb[:nb])
    mags = [abs(int(fmt_a.int_table[ca]) * int(fmt_b.int_table[cb]))
            if not (fmt_a.nonfinite_mask[ca] or fmt_b.nonfinite_mask[cb]) else 0
            for cb in range(1 << nb) for ca in range(1 << na)]
    mag = Signal(width - 1, name="mag")
    assert max(mags) < 1 << (width - 1)
    for bit in range(width - 1):
        table = sum(((v >> bit) & 1) << i for i, v in enumerate(mags))
        m.d.comb += mag[bit].eq(Const(table, len(mags)).bit_select(idx, 1))
    return mag


class ElementMultiplier(wiring.Component):
    """Exact product of two MX element codes.

    ``value(a) * value(b) == p * 2**lsb_exp`` exactly, with ``lsb_exp = fmt_a.lsb_exp +
    fmt_b.lsb_exp``. Internally each operand is unpacked (sign, significand, exponent), the
    significands multiply as signed numbers and the exponents become one left shift of
    that signed product (:func:`multiply_parts`): the multiplier is as narrow as the
    significands (e.g. 2 x 4 bits for E4M3 x E2M1), not as the fixed-point operands, and
    the sign is applied before the shift, to the narrow operand.

    Parameters
    ----------
    fmt_a, fmt_b : str or ElementFormat
        Any golden element formats, equal or mixed (e.g. ``"int8"`` x ``"fp4_e2m1"``).
    pipeline : int
        Register stages, 0..2. 0: combinational. 1: output registered. 2: operand codes
        registered as well.

    Members
    -------
    a : In(layout_of(fmt_a))
        Element code of A (a ``lib.data`` view; ``a.as_value()`` is the raw code).
    b : In(layout_of(fmt_b))
    p : Out(signed(product_width(fmt_a, fmt_b)))
        The exact product at ``2**lsb_exp``; 0 when ``nonfinite``.
    nonfinite : Out(1)
        An operand code is NaN or +-Inf (FP8 formats; unused codes of value tables).

    Latency ``pipeline`` cycles (no enable: a new pair every cycle); throughput one
    product per cycle. Golden twin: :func:`mxhw.golden.arith.element_product` (and
    ``fmt.nonfinite_mask`` for ``nonfinite``).

    Raises
    ------
    TypeError
        A format that is not an element format (a block format, a number...); ``pipeline``
        not an integer.
    ValueError
        An unknown format name; ``pipeline`` outside 0..2.
    """

    def __init__(self, fmt_a, fmt_b, pipeline=0):
        fmt_a = element_format(fmt_a, "fmt_a")
        fmt_b = element_format(fmt_b, "fmt_b")
        check_pipeline(pipeline, 2)
        self._fmt_a, self._fmt_b, self._pipeline = fmt_a, fmt_b, pipeline
        super().__init__({
            "a": In(layout_of(fmt_a)),
            "b": In(layout_of(fmt_b)),
            "p": Out(signed(product_width(fmt_a, fmt_b))),
            "nonfinite": Out(1),
        })

    fmt_a = property(lambda self: self._fmt_a)
    fmt_b = property(lambda self: self._fmt_b)
    latency = property(lambda self: self._pipeline, doc="Cycles from ``a``/``b`` to ``p``.")
    lsb_exp = property(lambda self: self._fmt_a.lsb_exp + self._fmt_b.lsb_exp,
                       doc="Weight exponent of ``p``'s LSB: ``fmt_a.lsb_exp + fmt_b.lsb_exp``.")
    width = property(lambda self: product_width(self._fmt_a, self._fmt_b))

    def elaborate(self, platform):
        m = Module()
        a, b = self.a, self.b
        if self._pipeline == 2:
            a = Signal.like(self.a, name="a_q")
            b = Signal.like(self.b, name="b_q")
            m.d.sync += [a.eq(self.a), b.eq(self.b)]
        p, nonfinite = multiply(m, self._fmt_a, a, self._fmt_b, b)
        domain = m.d.comb if self._pipeline == 0 else m.d.sync
        domain += [self.p.eq(p), self.nonfinite.eq(nonfinite)]
        return m
