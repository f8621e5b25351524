"""Re-quantiser: a block of k fixed-point results to an MX block (E8M0 scale, OCP floor rule,
elements RNE with saturation)."""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .. import golden
from ..formats import layout_of
from ..golden.formats import BlockFormat
from .aligner import _any, _check_k, max_tree

__all__ = ["Requantizer", "IN_KINDS"]

#: Input kinds the re-quantiser accepts.
IN_KINDS = ("fixed",)


def _msb(m, x, width, name):
    """Index of the highest set bit of ``x`` (0 when ``x == 0``): a priority encoder."""
    p = Signal(range(max(2, width)), name=name)
    for b in range(width):  # later assignments win: the highest set bit
        with m.If(x[b]):
            m.d.comb += p.eq(b)
    return p


def block_format(fmt):
    """The OCP-style :class:`BlockFormat` named by ``fmt`` that the re-quantiser supports."""
    if isinstance(fmt, str):
        try:
            fmt = golden.formats.get(fmt)
        except KeyError:
            raise ValueError(f"fmt must be a block format name, one of "
                             f"{', '.join(golden.formats.block_names())}; not {fmt!r}") from None
    if not isinstance(fmt, BlockFormat):
        raise TypeError(f"fmt must be a block format (a name or a BlockFormat), not {fmt!r}")
    ok = (len(fmt.candidates) == 1 and fmt.scale.kind == "pow2" and fmt.scale.bits == 8
          and fmt.scale.bias == 127 and fmt.scale_rule == "ocp_floor" and fmt.rounding == "rne"
          and not isinstance(fmt.block, tuple)
          and fmt.element.kind in ("fp", "int"))
    if not ok:
        raise ValueError(f"fmt must be an OCP MX block format (one fp or int element format, "
                         f"E8M0 scale, floor rule, RNE, 1-D blocks), not {fmt.name!r}")
    return fmt


class Requantizer(wiring.Component):
    """Quantise a block of ``k`` fixed-point values to an MX block, as golden does.

    Input value ``i`` is ``v_i * 2**-in_frac`` with ``v_i`` a signed ``in_width``-bit
    integer. The block scale follows the OCP floor rule:
    ``shared_exp = floor(log2(max |v|)) - in_frac - emax_elem`` clamped to ``[-127, 127]``
    (an all-zero block gets code 0); each element is ``v_i * 2**-in_frac / 2**shared_exp``
    rounded to nearest, ties to even, saturating to the element's largest finite value
    (``fp``) or to ``+-(2**(bits-1) - 1)`` (symmetric ``int``, MXINT8). A negative value that
    rounds to zero gives ``-0`` in fp formats, as golden does.

    Parameters
    ----------
    fmt : str or BlockFormat
        An OCP MX block format (``"mxfp8_e4m3"``, ..., ``"mxfp4"``, ``"mxint8"``).
    k : int
        Elements per block.
    in_kind : "fixed"
        The input representation (FP32 bit patterns are not implemented yet).
    in_width : int
        Input integer width, 2..53 (values stay exact in float64 for the golden twin).
    in_frac : int
        Fractional bits of the input, such that every scale exponent fits E8M0.
    pipeline : int
        1: output registered; 2: also a register after the max tree and scale.

    Members
    -------
    i : In(stream.Signature(ArrayLayout(signed(in_width), k)))
    o : Out(stream.Signature(StructLayout({"scale": unsigned(8),
        "elements": ArrayLayout(layout_of(fmt.element), k)})))

    Latency ``pipeline`` cycles; one block per cycle (the pipeline stalls as a whole while
    ``o`` is not ready).
    Golden twin: ``golden.quantize(v * 2.0**-in_frac, fmt)`` on the block (its ``scales``
    and ``elements`` codes).

    Raises
    ------
    TypeError, ValueError
        A parameter out of range (message names it and what is allowed).
    """

    def __init__(self, fmt, k=32, in_kind="fixed", in_width=24, in_frac=16, pipeline=2):
        fmt = block_format(fmt)
        _check_k(k)
        if in_kind not in IN_KINDS:
            raise ValueError(f"in_kind must be one of {IN_KINDS}, not {in_kind!r}")
        if not isinstance(in_width, int) or isinstance(in_width, bool) \
                or not 2 <= in_width <= 53:
            raise ValueError(f"in_width must be an integer in 2..53, not {in_width!r}")
        if not isinstance(in_frac, int) or isinstance(in_frac, bool):
            raise TypeError(f"in_frac must be an integer, not {in_frac!r}")
        elem = fmt.element
        top = in_width - 1 - in_frac - elem.emax
        if top > 127 or in_frac > 1000:
            raise ValueError(f"in_frac {in_frac} with in_width {in_width} gives scale "
                             f"exponents in [-127, {top}], outside E8M0's [-127, 127] "
                             f"(or in_frac above 1000)")
        if not isinstance(pipeline, int) or isinstance(pipeline, bool) \
                or pipeline not in (1, 2):
            raise ValueError(f"pipeline must be 1 or 2, not {pipeline!r}")
        self._fmt, self._k = fmt, k
        self._in_width, self._in_frac, self._pipeline = in_width, in_frac, pipeline
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(signed(in_width), k))),
            "o": Out(stream.Signature(data.StructLayout({
                "scale": unsigned(8),
                "elements": data.ArrayLayout(layout_of(elem), k)}))),
        })

    fmt = property(lambda self: self._fmt)
    k = property(lambda self: self._k)
    in_width = property(lambda self: self._in_width)
    in_frac = property(lambda self: self._in_frac)
    latency = property(lambda self: self._pipeline)

    def elaborate(self, platform):
        m = Module()
        fmt, k, W, Fi = self._fmt, self._k, self._in_width, self._in_frac
        elem = fmt.element
        en = Signal()
        m.d.comb += [en.eq(~self.o.valid | self.o.ready), self.i.ready.eq(en)]

        # stage 1: magnitudes, max tree, scale exponent
        mags, negs = [], []
        for j in range(k):
            v = self.i.payload[j]
            mg = Signal(W, name=f"mag{j}")
            m.d.comb += mg.eq(Mux(v < 0, -v, v))
            mags.append(mg)
            negs.append(v < 0)
        amax = max_tree(m, mags, unsigned(W), "max")
        P = _msb(m, amax, W, "amax_msb")
        se_lo = -127
        se = Signal(signed(16), name="se")
        raw = P - Fi - elem.emax
        m.d.comb += se.eq(Mux((amax == 0) | (raw < se_lo), se_lo, raw))

        if self._pipeline >= 2:
            valid = Signal()
            se_r = Signal(signed(16), name="se_r")
            mags_r = [Signal(W, name=f"mag_r{j}") for j in range(k)]
            negs_r = [Signal(name=f"neg_r{j}") for j in range(k)]
            with m.If(en):
                m.d.sync += [valid.eq(self.i.valid), se_r.eq(se)]
                m.d.sync += [a.eq(b) for a, b in zip(mags_r, mags)]
                m.d.sync += [a.eq(b) for a, b in zip(negs_r, negs)]
            se, mags, negs = se_r, mags_r, negs_r
        else:
            valid = self.i.valid

        # stage 2: per element: shift with RNE, encode, saturate
        if elem.kind == "fp":
            emin = 1 - elem.bias
            man = elem.man_bits
            lmax = max(0, man - Fi - max(se_lo, -Fi - elem.emax) - emin)
            max_code = max(c for c in range(elem.n_codes >> 1)
                           if not elem.nonfinite_mask[c])
        else:
            lmax = max(0, elem.frac_bits - Fi - max(se_lo, -Fi - elem.emax))
            max_code = (1 << (elem.bits - 1)) - 1
        XW = W + lmax
        with m.If(en):
            m.d.sync += [self.o.valid.eq(valid),
                         self.o.payload.scale.eq(se + 127)]
        for j in range(k):
            mg = mags[j]
            if elem.kind == "fp":
                p = _msb(m, mg, W, f"msb{j}")
                e = Signal(signed(16), name=f"e{j}")
                m.d.comb += e.eq(p - Fi - se)
                e_eff = Signal(signed(16), name=f"eeff{j}")
                m.d.comb += e_eff.eq(Mux(e < emin, emin, e))
                sh = Fi + se + e_eff - man
            else:
                sh = Fi + se - elem.frac_bits
            s = Signal(signed(16), name=f"s{j}")
            m.d.comb += s.eq(sh + lmax)
            sc = Signal(range(XW + 2), name=f"sc{j}")
            m.d.comb += sc.eq(Mux(s > XW + 1, XW + 1, s))
            x = Signal(XW + 1, name=f"x{j}")
            m.d.comb += x.eq(mg << lmax)
            sc1 = Signal(range(XW + 2), name=f"sc1_{j}")
            m.d.comb += sc1.eq(sc - 1)
            q0 = x >> sc
            guard = Mux(sc == 0, 0, (x >> sc1)[0])
            mask = (Const(1, XW + 2) << sc1) - 1
            sticky = Mux(sc <= 1, 0, (x & mask) != 0)
            q = Signal(XW + 2, name=f"q{j}")
            m.d.comb += q.eq(q0 + (guard & (sticky | q0[0])))
            out = self.o.payload.elements[j]
            if elem.kind == "fp":
                cm = Signal(XW + 16, name=f"cm{j}")
                m.d.comb += cm.eq(Mux(mg == 0, 0, ((e_eff + elem.bias - 1) << man) + q))
                sat = Mux(cm > max_code, max_code, cm)
                with m.If(en):
                    m.d.sync += out.as_value().eq(sat | (negs[j] << (elem.bits - 1)))
            else:
                sat = Mux(q > max_code, max_code, q)
                with m.If(en):
                    m.d.sync += out.value.eq(Mux(negs[j], -sat, sat))
        return m
