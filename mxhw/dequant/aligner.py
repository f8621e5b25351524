"""Shared-exponent aligner: an MXFP block to k two's-complement fixed-point values."""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..formats import Unpacked, _nonfinite, layout_of, signed_width, unpack
from ..golden.align import ALIGN_ROUNDING, align_format

__all__ = ["Aligner"]


def _check_k(k):
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive integer, not {k!r}")


def max_levels(m, values, shape, name, levels=None):
    """``levels`` levels (all of them for ``None``) of a combinational balanced maximum
    tree over ``values`` (signals of ``shape``): the list of what is left (one value once
    every level is built)."""
    level, n = list(values), 0
    while len(level) > 1 and (levels is None or levels > 0):
        nxt = []
        for j in range(0, len(level) - 1, 2):
            s = Signal(shape, name=f"{name}_{n}")
            n += 1
            a, b = level[j], level[j + 1]
            m.d.comb += s.eq(Mux(a > b, a, b))
            nxt.append(s)
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
        levels = None if levels is None else levels - 1
    return level


def max_tree(m, values, shape, name):
    """Combinational balanced maximum of ``values`` (signals of ``shape``)."""
    return max_levels(m, values, shape, name)[0]


class Aligner(wiring.Component):
    """Align a block of ``k`` floating-point elements to the block's largest exponent.

    Turns an MXFP block into a block-floating-point (MXINT-like) block: ``k`` signed
    ``out_width``-bit integers ``q_i`` with ``out_width - 2`` fractional bits, an LSB weight
    of ``2**(shared_exp - (out_width - 2))`` times the block scale, and the reference
    exponent ``shared_exp`` (the largest unbiased exponent among the non-zero finite
    elements; ``1 - bias`` for a block without one). The E8M0 scale is passed through
    unchanged (not folded in), so the value of element ``i`` is
    ``2**(scale - 127) * q_i * 2**(shared_exp - out_width + 2)`` up to the rounding.
    Rounding acts on magnitudes: ``"truncate"`` (toward zero) or ``"rne"`` (nearest, ties
    to even, from guard and sticky bits; a carry out of the top saturates to
    ``2**(out_width-1) - 1``). Non-finite elements give 0 and, like a NaN scale, raise
    ``nan``.

    Parameters
    ----------
    fmt : str, ElementFormat or BlockFormat
        An OCP floating-point element format (``"fp8_e4m3"``) or MX block format
        (``"mxfp8_e4m3"``).
    k : int
        Elements per block (32 for OCP MX).
    out_width : int
        Output integer width, >= 2. Default ``man_bits + 3`` (the largest element exact).
    rounding : "truncate" or "rne"
    pipeline : int
        Register stages, 1..3: 1: everything combinational, output registered; 2: also a
        register after the decode and the max tree; 3: also one after the barrel shifters.

    Members
    -------
    i : In(stream.Signature(StructLayout({"elements": ArrayLayout(layout_of(fmt), k),
        "scale": unsigned(8)})))
    o : Out(stream.Signature(StructLayout({"ints": ArrayLayout(signed(out_width), k),
        "shared_exp": signed(...), "scale": unsigned(8), "nan": unsigned(1)})))

    Latency ``pipeline`` cycles; throughput one block per cycle (the whole pipeline stalls
    while ``o`` is not ready; ``i.ready`` follows ``o.ready`` combinationally).
    Golden twin: :func:`mxhw.golden.align.align_block` (``ints``, ``shared_exp``) and
    :func:`mxhw.golden.align.align_nan` (``nan``).

    Raises
    ------
    TypeError, ValueError
        A parameter out of range (message names it and what is allowed).
    """

    def __init__(self, fmt, k=32, out_width=None, rounding="truncate", pipeline=2):
        fmt = align_format(fmt)
        _check_k(k)
        if out_width is None:
            out_width = fmt.man_bits + 3
        if not isinstance(out_width, int) or isinstance(out_width, bool) or out_width < 2:
            raise ValueError(f"out_width must be an integer >= 2, not {out_width!r}")
        if rounding not in ALIGN_ROUNDING:
            raise ValueError(f"rounding must be one of {ALIGN_ROUNDING}, not {rounding!r}")
        if not isinstance(pipeline, int) or isinstance(pipeline, bool) \
                or pipeline not in (1, 2, 3):
            raise ValueError(f"pipeline must be 1, 2 or 3, not {pipeline!r}")
        self._fmt, self._k, self._out_width = fmt, k, out_width
        self._rounding, self._pipeline = rounding, pipeline
        self._unpacked = Unpacked(fmt)
        lo, hi = self._unpacked.exp_range
        self._exp_shape = signed(signed_width(lo, hi))
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "elements": data.ArrayLayout(layout_of(fmt), k),
                "scale": unsigned(8)}))),
            "o": Out(stream.Signature(data.StructLayout({
                "ints": data.ArrayLayout(signed(out_width), k),
                "shared_exp": self._exp_shape,
                "scale": unsigned(8),
                "nan": unsigned(1)}))),
        })

    fmt = property(lambda self: self._fmt)
    k = property(lambda self: self._k)
    out_width = property(lambda self: self._out_width)
    rounding = property(lambda self: self._rounding)
    latency = property(lambda self: self._pipeline)

    def elaborate(self, platform):
        m = Module()
        fmt, k, W = self._fmt, self._k, self._out_width
        F = W - 2
        lo, hi = self._unpacked.exp_range
        dmax = hi - lo
        ew = self._exp_shape

        # stall-all pipeline: every stage moves when the output is free or taken
        en = Signal()
        m.d.comb += [en.eq(~self.o.valid | self.o.ready), self.i.ready.eq(en)]
        valids = [self.i.valid]

        def stage(values, cut, name):
            """Register ``values`` (list of (signal-like, shape)) if ``cut``."""
            if not cut:
                return values
            v = Signal(name=f"{name}_valid")
            with m.If(en):
                m.d.sync += v.eq(valids[-1])
            valids.append(v)
            out = []
            for j, (x, shape) in enumerate(values):
                r = Signal(shape, name=f"{name}_{j}")
                with m.If(en):
                    m.d.sync += r.eq(x)
                out.append((r, shape))
            return out

        # stage 1: decode, masked exponents, max tree
        sigs, signs, exps, bads = [], [], [], []
        for j in range(k):
            u = unpack(m, fmt, self.i.payload.elements[j], name=f"u{j}")
            bad = Signal(name=f"bad{j}")
            m.d.comb += bad.eq(_nonfinite(u))
            e = Signal(ew, name=f"e{j}")
            m.d.comb += e.eq(Mux(bad | u.is_zero, lo, u.exponent))
            sigs.append(Mux(bad, 0, u.significand))
            signs.append(u.sign)
            exps.append(e)
            bads.append(bad)
        ref = max_tree(m, exps, ew, "max")
        nan = Signal()
        m.d.comb += nan.eq((self.i.payload.scale == 0xFF) | _any(bads))
        sb = self._unpacked.sig_bits
        vals = [(self.i.payload.scale, unsigned(8)), (nan, unsigned(1)), (ref, ew)]
        vals += [(s, unsigned(sb)) for s in sigs]
        vals += [(s, unsigned(1)) for s in signs]
        vals += [(e, ew) for e in exps]
        vals = stage(vals, self._pipeline >= 2, "s1")
        scale, nan, ref = (x for x, _ in vals[:3])
        sigs = [x for x, _ in vals[3:3 + k]]
        signs = [x for x, _ in vals[3 + k:3 + 2 * k]]
        exps = [x for x, _ in vals[3 + 2 * k:]]

        # stage 2: barrel shifters (exact): y = sig << (dmax - (ref - e))
        yw = sb + dmax
        ys = []
        for j in range(k):
            d = Signal(range(dmax + 1), name=f"d{j}")
            m.d.comb += d.eq(ref - exps[j])
            y = Signal(yw, name=f"y{j}")
            m.d.comb += y.eq((sigs[j] << dmax) >> d)
            ys.append(y)
        vals = [(scale, unsigned(8)), (nan, unsigned(1)), (ref, ew)]
        vals += [(y, unsigned(yw)) for y in ys] + [(s, unsigned(1)) for s in signs]
        vals = stage(vals, self._pipeline >= 3, "s2")
        scale, nan, ref = (x for x, _ in vals[:3])
        ys = [x for x, _ in vals[3:3 + k]]
        signs = [x for x, _ in vals[3 + k:]]

        # stage 3: constant right shift by r with rounding, saturation, sign; output register
        r = fmt.man_bits + dmax - F
        lim = (1 << (F + 1)) - 1
        with m.If(en):
            m.d.sync += self.o.valid.eq(valids[-1])
            m.d.sync += [self.o.payload.scale.eq(scale), self.o.payload.nan.eq(nan),
                         self.o.payload.shared_exp.eq(ref)]
            for j in range(k):
                y = ys[j]
                if r <= 0:
                    q = y << -r
                else:
                    q = y >> r
                    if self._rounding == "rne":
                        guard = y[r - 1]
                        sticky = y[:r - 1].any() if r > 1 else Const(0, 1)
                        q = q + (guard & (sticky | q[0]))
                qs = Signal(unsigned(max(yw, F + 2) + 1), name=f"q{j}")
                m.d.comb += qs.eq(q)
                sat = Mux(qs > lim, lim, qs)
                m.d.sync += self.o.payload.ints[j].eq(Mux(signs[j], -sat, sat))
        return m


def _any(bits):
    acc = Const(0, 1)
    for b in bits:
        acc = acc | b
    return acc
