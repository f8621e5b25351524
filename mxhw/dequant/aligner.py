"""Shared-exponent aligner: an MXFP block to k two's-complement fixed-point values."""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..formats import Unpacked, _nonfinite, layout_of, lookup_format, signed_width, unpack
from ..golden.align import ALIGN_ROUNDING, align_format
from ..lib.params import check_choice, check_int, check_pipeline
from ..lib.pipe import drive_output, stall_all
from ..lib.trees import any_of, max_tree
from .blocks import E8M0, block_size

__all__ = ["Aligner"]


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
    fmt : str or BlockFormat
        A block format with one floating-point element format and an E8M0 scale (golden
        name or alias: ``"mxfp8_e4m3"``, ``"mxfp4"``); its block size is ``k`` (32 for OCP
        MX; other sizes are :class:`~mxhw.golden.formats.BlockFormat` descriptors).
    k : int or None
        Deprecated: ``None`` or the block size of ``fmt``.
    out_width : int
        Output integer width, >= 2. Default ``man_bits + 3`` (the largest element exact).
    rounding : "truncate" or "rne"
    pipeline : int
        Register stages, 0..3: 0: combinational; 1: output registered; 2: also a register
        after the decode and the max tree; 3: also one after the barrel shifters.

    Members
    -------
    i : In(stream.Signature(StructLayout({"elements": ArrayLayout(layout_of(element), k),
        "scale": unsigned(8)})))
    o : Out(stream.Signature(StructLayout({"ints": ArrayLayout(signed(out_width), k),
        "shared_exp": signed(...), "scale": unsigned(8), "nan": unsigned(1)})))

    Latency ``pipeline`` cycles; throughput one block per cycle (the whole pipeline stalls
    while ``o`` is not ready; ``i.ready`` follows ``o.ready`` combinationally).
    ``element`` is ``fmt.element``.
    Golden twin: :func:`mxhw.golden.align.align_block` (``ints``, ``shared_exp``) and
    :func:`mxhw.golden.align.align_nan` (``nan``).

    Raises
    ------
    TypeError, ValueError
        A parameter out of range (message names it and what is allowed).
    """

    def __init__(self, fmt, k=None, out_width=None, rounding="truncate", pipeline=2):
        fmt = lookup_format(fmt, "fmt", "block")
        element = align_format(fmt)
        if fmt.scale is not E8M0:
            raise ValueError(f"fmt must have E8M0 scales, not {fmt.scale.name} ({fmt.name!r})")
        k = block_size(fmt, k)
        if out_width is None:
            out_width = element.man_bits + 3
        check_int("out_width", out_width, 2)
        check_choice("rounding", rounding, ALIGN_ROUNDING)
        check_pipeline(pipeline, 3)
        self._fmt, self._element, self._k, self._out_width = fmt, element, k, out_width
        self._rounding, self._pipeline = rounding, pipeline
        self._unpacked = Unpacked(element)
        lo, hi = self._unpacked.exp_range
        self._exp_shape = signed(signed_width(lo, hi))
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "elements": data.ArrayLayout(layout_of(element), k),
                "scale": unsigned(8)}))),
            "o": Out(stream.Signature(data.StructLayout({
                "ints": data.ArrayLayout(signed(out_width), k),
                "shared_exp": self._exp_shape,
                "scale": unsigned(8),
                "nan": unsigned(1)}))),
        })

    fmt = property(lambda self: self._fmt)
    element = property(lambda self: self._element)
    k = property(lambda self: self._k)
    out_width = property(lambda self: self._out_width)
    rounding = property(lambda self: self._rounding)
    latency = property(lambda self: self._pipeline)

    def elaborate(self, platform):
        m = Module()
        fmt, k, W = self._element, self._k, self._out_width
        F = W - 2
        lo, hi = self._unpacked.exp_range
        dmax = hi - lo
        ew = self._exp_shape

        # stall-all pipeline: every stage moves when the output is free or taken
        en = stall_all(m, self.i, self.o, self._pipeline)
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
        m.d.comb += nan.eq((self.i.payload.scale == E8M0.nan_code) | any_of(bads))
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
        out = [self.o.valid.eq(valids[-1]), self.o.payload.scale.eq(scale),
               self.o.payload.nan.eq(nan), self.o.payload.shared_exp.eq(ref)]
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
            out.append(self.o.payload.ints[j].eq(Mux(signs[j], -sat, sat)))
        drive_output(m, out, en, self._pipeline)
        return m
