"""The bit-parallel MX multiply-accumulate PE of the systolic arrays."""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .. import golden
from ..pe.multiplier import ElementMultiplier, product_width

__all__ = ["MXMacPE", "block_format", "scale_exp_range", "block_sum_width"]


def block_format(fmt, name="fmt"):
    """The single-candidate :class:`golden.formats.BlockFormat` named by ``fmt``, with a
    power-of-two scale and 1-D blocks (what the arrays accept)."""
    if isinstance(fmt, str):
        try:
            fmt = golden.formats.get(fmt)
        except KeyError:
            raise ValueError(f"{name} must be a block format name, one of "
                             f"{', '.join(golden.formats.block_names())}; "
                             f"not {fmt!r}") from None
    if not isinstance(fmt, golden.formats.BlockFormat):
        raise TypeError(f"{name} must be a block format (a name or a BlockFormat), "
                        f"not {fmt!r}")
    if len(fmt.candidates) != 1:
        raise ValueError(f"{name}: {fmt.name} has {len(fmt.candidates)} element modes; "
                         f"the arrays take single-mode block formats")
    if fmt.scale.kind != "pow2":
        raise ValueError(f"{name}: {fmt.name} has {fmt.scale.name} scales; the arrays take "
                         f"power-of-two scales")
    if isinstance(fmt.block, tuple):
        raise ValueError(f"{name}: {fmt.name} has 2-D blocks {fmt.block}; the arrays take "
                         f"1-D blocks along K")
    return fmt


def scale_exp_range(fmt):
    """``(min, max)`` exponent of ``fmt``'s finite scale codes."""
    s = fmt.scale
    top = (1 << s.bits) - 1 - (1 if s.nan_code is not None else 0)
    return -s.bias, top - s.bias


def block_sum_width(fmt_a, fmt_b, k):
    """Width of the exact sum of ``k`` exact products (signed)."""
    return product_width(fmt_a, fmt_b) + max(k - 1, 1).bit_length()


class MXMacPE(wiring.Component):
    """Bit-parallel MX multiply-accumulate: one element pair per cycle.

    Per block, the exact products (:class:`mxhw.pe.ElementMultiplier`) are summed exactly in
    an integer ``S`` of :func:`block_sum_width` bits. On the block's last element the block
    dot ``S * 2**E`` (``E`` from both scales and the element LSBs) is put on the
    accumulator grid ``2**-frac_bits`` (left shift, or right shift with ``floor`` / ``rne``
    rounding) and added to the ``width``-bit accumulator with saturation or wrap-around.
    On the tile's last element the accumulator moves to ``result`` and restarts at zero.
    A NaN scale or a NaN/Inf element code makes the result ``special`` (golden: NaN).

    Parameters
    ----------
    fmt_a, fmt_b : BlockFormat
        Operand block formats (validated by the array).
    acc : golden.arith.Accumulation
        ``fixed`` accumulation.

    Members
    -------
    a, b : In(unsigned(bits))
        Element codes. ``a_scale``, ``b_scale`` : In(unsigned(scale bits)) scale codes of
        their blocks (read on the block's last element).
    valid, block_end, last : In(1)
        The pair is valid; it is the last of its block; the last of the tile (a block end).
    result : Out(signed(acc.width)), special : Out(1)
        Registered, updated one cycle after a ``last`` element.

    Latency 1 cycle from the tile's last element to ``result``; throughput one element
    pair per cycle. Golden twin: :func:`mxhw.golden.arith.gemm` with ``fixed`` accumulation
    (one output element).
    """

    def __init__(self, fmt_a, fmt_b, acc):
        self._fmt_a, self._fmt_b, self._acc = fmt_a, fmt_b, acc
        self._k = fmt_a.block_size
        super().__init__({
            "a": In(unsigned(fmt_a.element.bits)),
            "b": In(unsigned(fmt_b.element.bits)),
            "a_scale": In(unsigned(fmt_a.scale.bits)),
            "b_scale": In(unsigned(fmt_b.scale.bits)),
            "valid": In(1),
            "block_end": In(1),
            "last": In(1),
            "result": Out(signed(acc.width)),
            "special": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        fa, fb, acc = self._fmt_a, self._fmt_b, self._acc
        W, F = acc.width, acc.frac_bits
        m.submodules.mul = mul = ElementMultiplier(fa.element, fb.element)
        m.d.comb += [mul.a.eq(self.a), mul.b.eq(self.b)]

        sw = block_sum_width(fa.element, fb.element, self._k)
        s = Signal(signed(sw))                     # exact block sum so far
        s_new = Signal(signed(sw))
        m.d.comb += s_new.eq(s + mul.p)

        # E + F: the left shift that puts S on the accumulator grid
        lo_a, hi_a = scale_exp_range(fa)
        lo_b, hi_b = scale_exp_range(fb)
        off = mul.lsb_exp + F - fa.scale.bias - fb.scale.bias
        d_lo = 0 + 0 + off
        d_hi = ((1 << fa.scale.bits) - 1) + ((1 << fb.scale.bits) - 1) + off
        d = Signal(range(min(d_lo, 0), max(d_hi, 0) + 1))
        m.d.comb += d.eq(self.a_scale + self.b_scale + off)

        # left: v = S << min(d, W + 1), clamped to [-2**W, 2**W]
        sh_l = Signal(range(W + 2))
        m.d.comb += sh_l.eq(Mux(d > W + 1, W + 1, Mux(d < 0, 0, d)))
        v_l = Signal(signed(sw + W + 2))
        m.d.comb += v_l.eq(s_new << sh_l)
        # right: v = round(S >> min(-d, sw))
        sh_r = Signal(range(sw + 1))
        m.d.comb += sh_r.eq(Mux(-d > sw, sw, Mux(d > 0, 0, -d)))
        q = Signal(signed(sw))
        m.d.comb += q.eq(s_new >> sh_r)
        v_r = Signal(signed(sw + 1))
        if acc.rounding == "rne":
            rem = Signal(unsigned(sw + 1))
            half = Signal(unsigned(sw + 1))
            m.d.comb += [
                rem.eq(s_new - (q << sh_r)),
                half.eq((Const(1, 1) << sh_r) >> 1),
            ]
            up = (sh_r != 0) & ((rem > half) | ((rem == half) & q[0]))
            m.d.comb += v_r.eq(q + up)
        else:
            m.d.comb += v_r.eq(q)

        lim = 1 << W
        v = Signal(signed(W + 2))
        vs = Mux(d >= 0, v_l, v_r)
        if acc.overflow == "saturate":
            # |v| >= 2**W overflows from any register value: clamping keeps the outcome
            m.d.comb += v.eq(Mux(vs > lim, lim, Mux(vs < -lim, -lim, vs)))
        else:
            # wrap: only v mod 2**W matters
            m.d.comb += v.eq(vs[:W])

        reg = Signal(signed(W))
        tot = Signal(signed(W + 3))
        m.d.comb += tot.eq(reg + v)
        reg_new = Signal(signed(W))
        lo, hi = -(1 << (W - 1)), (1 << (W - 1)) - 1
        if acc.overflow == "saturate":
            m.d.comb += reg_new.eq(Mux(tot > hi, hi, Mux(tot < lo, lo, tot)))
        else:
            m.d.comb += reg_new.eq(tot[:W])

        nan_a = (self.a_scale == fa.scale.nan_code) if fa.scale.nan_code is not None else 0
        nan_b = (self.b_scale == fb.scale.nan_code) if fb.scale.nan_code is not None else 0
        spec = Signal()
        spec_new = Signal()
        m.d.comb += spec_new.eq(spec | mul.nonfinite | (self.block_end & (nan_a | nan_b)))

        with m.If(self.valid):
            m.d.sync += [s.eq(s_new), spec.eq(spec_new)]
            with m.If(self.block_end):
                m.d.sync += [s.eq(0), reg.eq(reg_new)]
            with m.If(self.last):
                m.d.sync += [reg.eq(0), spec.eq(0),
                             self.result.eq(reg_new), self.special.eq(spec_new)]
        return m
