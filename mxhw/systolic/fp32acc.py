"""FP32 accumulation for the MX PEs: golden's ``fp32`` mode in hardware.

:func:`mxhw.golden.arith.gemm` with ``FP32`` rounds each block dot ``S * 2**E`` once to
float32 (round to nearest, ties to even; overflow to Inf; a special block is the IEEE
value of its products' float sum, a NaN scale gives NaN), and adds the blocks in K order
into a float32 accumulator that starts at +0, each addition rounded to nearest even.

Here one converter, :func:`int_to_f32` (an integer times a power of two to float32,
RNE), does both roundings: a float32 addition aligns the smaller operand to the larger
with three guard bits and a sticky bit (round to odd below them), which makes the sum an
integer whose single RNE rounding gives the IEEE result.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Cat, Const, Mux, Signal, signed, unsigned

from ..formats import is_moded, unpack

__all__ = ["int_to_f32", "f32_add", "element_classes", "product_class", "F32_NAN",
           "F32_INF"]

F32_NAN = 0x7FC0_0000
F32_INF = 0x7F80_0000


def int_to_f32(m, s, e, name="cv", cut=None):
    """float32 bits of ``s * 2**e`` (``s``, ``e`` signed values), rounded to nearest even,
    overflow to Inf; ``s == 0`` gives +0, a negative ``s`` that rounds to zero -0.
    Returns a 32-bit signal.

    ``cut`` (optional) splits the conversion for a pipeline register: it is called with
    the signals that cross from the first half (leading-one detection, result exponent
    and shift amounts) to the second (shift, rounding, packing), as
    ``cut(neg, mag, q, sh, shr, shl)``, and returns their replacements (e.g. registered
    copies).

    Raises
    ------
    TypeError
        ``cut`` neither None nor callable.
    """
    if cut is not None and not callable(cut):
        raise TypeError(f"cut must be a callable or None, not {cut!r}")
    sw = len(s)
    neg = Signal(name=f"{name}_neg")
    mag = Signal(unsigned(sw), name=f"{name}_mag")
    m.d.comb += [neg.eq(s < 0), mag.eq(Mux(s < 0, -s, s))]
    p = Signal(range(sw), name=f"{name}_msb")       # index of the leading one
    for i in range(sw):
        with m.If(mag[i]):
            m.d.comb += p.eq(i)
    # quantum 2**q of the result: 24 significant bits, but not below 2**-149
    ew = max(len(e), 10) + 2
    q = Signal(signed(ew), name=f"{name}_q")
    m.d.comb += q.eq(Mux(e + p - 23 < -149, -149, e + p - 23))
    sh = Signal(signed(ew + 1), name=f"{name}_sh")  # right shift (> 0) or left (<= 0)
    m.d.comb += sh.eq(q - e)
    shr = Signal(range(sw + 2), name=f"{name}_shr")
    shl = Signal(range(24), name=f"{name}_shl")
    m.d.comb += [shr.eq(Mux(sh > sw + 1, sw + 1, Mux(sh < 0, 0, sh))),
                 shl.eq(Mux(sh < 0, -sh, 0))]
    if cut is not None:
        neg, mag, q, sh, shr, shl = cut(neg, mag, q, sh, shr, shl)
    # right shift with RNE: quotient, first dropped bit, sticky
    q2 = Signal(unsigned(sw + 1), name=f"{name}_q2")
    m.d.comb += q2.eq((mag << 1) >> shr)
    mask = Signal(sw + 2, name=f"{name}_mask")
    m.d.comb += mask.eq((Const(1, sw + 3) << shr) - 1)
    sticky = (((mag << 1) & mask) >> 1).any()
    up = (shr != 0) & q2[0] & (sticky | q2[1])
    r = Signal(unsigned(26), name=f"{name}_r")
    m.d.comb += r.eq(Mux(sh > 0, q2[1:] + up, mag << shl))
    # r * 2**q: r < 2**23 only at q = -149 (subnormal); r = 2**24 carries into the exponent
    bits = Signal(signed(ew + 26), name=f"{name}_bits")
    m.d.comb += bits.eq(((q + 149) << 23) + r)
    out = Signal(32, name=f"{name}_f32")
    m.d.comb += out.eq(Mux(mag == 0, 0, Cat(Mux(bits >= F32_INF, F32_INF, bits)[:31], neg)))
    return out


def _unpack(m, x, name):
    """(sign, signed significand, exponent of its LSB, is_nan, is_inf) of float32 bits."""
    ef, mf, sg = x[23:31], x[:23], x[31]
    sig = Signal(unsigned(24), name=f"{name}_sig")
    m.d.comb += sig.eq(Cat(mf, ef != 0))
    exp = Signal(signed(10), name=f"{name}_exp")
    m.d.comb += exp.eq(Mux(ef == 0, 1, ef) - 150)
    return sg, sig, exp, (ef == 0xFF) & (mf != 0), (ef == 0xFF) & (mf == 0)


def f32_add(m, x, y, name="fa"):
    """float32 bits of ``x + y`` (float32 bits), IEEE round to nearest even (an exact zero
    sum is +0 unless both operands are -0; NaN results are the canonical quiet NaN)."""
    sx, gx, ex, nx, ix = _unpack(m, x, f"{name}_x")
    sy, gy, ey, ny, iy = _unpack(m, y, f"{name}_y")
    swap = ey > ex
    sb, gb, eb = Mux(swap, sy, sx), Mux(swap, gy, gx), Mux(swap, ey, ex)
    ss, gs, es = Mux(swap, sx, sy), Mux(swap, gx, gy), Mux(swap, ex, ey)
    diff = Signal(range(28), name=f"{name}_diff")
    m.d.comb += diff.eq(Mux(eb - es > 27, 27, eb - es))
    big = Signal(unsigned(27), name=f"{name}_big")
    small_full = Signal(unsigned(27), name=f"{name}_sf")
    m.d.comb += [big.eq(gb << 3), small_full.eq(gs << 3)]
    small = Signal(unsigned(27), name=f"{name}_small")
    mask = Signal(28, name=f"{name}_mask")
    m.d.comb += mask.eq((Const(1, 29) << diff) - 1)
    m.d.comb += small.eq((small_full >> diff) | (small_full & mask).any())
    t = Signal(signed(29), name=f"{name}_t")
    m.d.comb += t.eq(Mux(sb, -big, big) + Mux(ss, -small, small))
    fin = int_to_f32(m, t, eb - 3, f"{name}_cv")
    out = Signal(32, name=f"{name}_sum")
    nan = nx | ny | (ix & iy & (sx != sy))
    zero = Signal(32, name=f"{name}_zero")
    m.d.comb += zero.eq(Cat(Const(0, 31), sx & sy))
    m.d.comb += out.eq(Mux(nan, F32_NAN, Mux(ix, x, Mux(iy, y, Mux(t == 0, zero, fin)))))
    return out


def element_classes(fmt):
    """Code sets of an element format: ``(nan, inf_pos, inf_neg, zero)`` tuples of ints,
    from the golden value table."""
    t = fmt.table
    return (tuple(int(c) for c in np.flatnonzero(np.isnan(t))),
            tuple(int(c) for c in np.flatnonzero(np.isposinf(t))),
            tuple(int(c) for c in np.flatnonzero(np.isneginf(t))),
            tuple(int(c) for c in np.flatnonzero(t == 0)))


def product_class(m, fa, a, fb, b):
    """IEEE class of the product of element codes ``a`` (``fa``) and ``b`` (``fb``):
    ``(nan, pos_inf, neg_inf)`` signals, from the golden value tables (a moded
    :func:`~mxhw.formats.operand_element`'s NaN from its decoder)."""
    nan_a, ip_a, in_a, z_a = element_classes(fa)
    nan_b, ip_b, in_b, z_b = element_classes(fb)

    def match(code, codes):
        return code.matches(*codes) if codes else Const(0, 1)

    def is_nan(fmt, code, codes):
        # element modes (MXSF): the decoder's NaN flag, not a match on every NaN code
        if not codes:                          # no NaN code (e.g. MX+ of FP4)
            return Const(0, 1)
        return unpack(m, fmt, code).is_nan if is_moded(fmt) else match(code, codes)

    nan, pinf, ninf = Signal(), Signal(), Signal()
    ia, ib = match(a, ip_a + in_a), match(b, ip_b + in_b)
    m.d.comb += nan.eq(is_nan(fa, a, nan_a) | is_nan(fb, b, nan_b) | (ia & match(b, z_b))
                       | (match(a, z_a) & ib))
    if ip_a or in_a or ip_b or in_b:
        # an Inf product's sign: the signs of both codes (from the tables)
        neg_a = match(a, tuple(int(c) for c in np.flatnonzero(np.signbit(fa.table))))
        neg_b = match(b, tuple(int(c) for c in np.flatnonzero(np.signbit(fb.table))))
        inf = (ia | ib) & ~nan
        m.d.comb += [pinf.eq(inf & ~(neg_a ^ neg_b)), ninf.eq(inf & (neg_a ^ neg_b))]
    return nan, pinf, ninf
