"""MX dot-product unit: one OCP ``Dot`` of a block pair, exact, as ``S * 2**E``."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .. import golden
from ..formats import element_format, layout_of, signed_width
from .multiplier import multiply, product_range

__all__ = ["MXDotProduct"]

_E8M0 = golden.formats.get("e8m0")


def _scale_exp_range(scale):
    """Exponent range of the finite codes of a power-of-two scale format."""
    top = scale.n_codes - 1 - (1 if scale.has_nan else 0)
    return -scale.bias, top - scale.bias


class MXDotProduct(wiring.Component):
    """Exact OCP MX ``Dot`` of one block pair, streamed.

    ``value = S * 2**E`` with ``S = sum_i int_a[i] * int_b[i]`` (exact element products,
    see :class:`~mxhw.pe.ElementMultiplier`, summed by a pipelined adder tree) and
    ``E = (sa - 127) + (sb - 127) + fmt_a.lsb_exp + fmt_b.lsb_exp`` (a NaN scale counts as
    exponent 0 in ``E``, as in golden).

    Parameters
    ----------
    fmt_a, fmt_b : str or ElementFormat
        Element formats of the two operands (equal or mixed).
    k : int
        Elements per block: a power of two, 1..32.
    pipeline : int or None
        Register stages, 1..log2(k)+1. The datapath has ``log2(k) + 1`` combinational
        levels (the products, then one per adder-tree level); they are split as evenly
        as possible among ``pipeline`` stages, each ending in a register (the last one is
        the output register). ``None``: ``min(2, log2(k) + 1)``.

    Members
    -------
    i : In(stream.Signature(StructLayout))
        Payload ``a`` (``ArrayLayout(layout_of(fmt_a), k)``), ``b`` (likewise),
        ``scale_a``, ``scale_b`` (E8M0 codes, ``unsigned(8)``).
    o : Out(stream.Signature(StructLayout))
        Payload ``s`` (``signed``, wide enough for ``k`` extreme products), ``e``
        (``signed``, the range of ``E``) and ``special``: either scale is NaN (0xFF) or an
        element code is NaN/Inf; then ``s`` is 0.

    Latency ``pipeline`` cycles from a transfer on ``i`` to ``o.valid`` (with ``o.ready``
    high); throughput one block pair per cycle. The whole pipeline stalls while ``o`` is
    valid and not ready (``i.ready = ~o.valid | o.ready``).
    Golden twin: :func:`mxhw.golden.arith.block_dots` (``S``, ``E``, ``is_special``).

    Raises
    ------
    TypeError
        A format that is not an element format; ``k`` or ``pipeline`` not an integer.
    ValueError
        An unknown format name; ``k`` not a power of two in 1..32; ``pipeline`` outside
        1..log2(k)+1.
    """

    def __init__(self, fmt_a, fmt_b, k=32, pipeline=None):
        fmt_a = element_format(fmt_a, "fmt_a")
        fmt_b = element_format(fmt_b, "fmt_b")
        if not isinstance(k, int) or isinstance(k, bool):
            raise TypeError(f"k must be an integer, not {k!r}")
        if not (1 <= k <= 32 and k & (k - 1) == 0):
            raise ValueError(f"k must be a power of two in 1..32, not {k}")
        levels = (k - 1).bit_length() + 1
        if pipeline is None:
            pipeline = min(2, levels)
        if not isinstance(pipeline, int) or isinstance(pipeline, bool):
            raise TypeError(f"pipeline must be an integer or None, not {pipeline!r}")
        if not 1 <= pipeline <= levels:
            raise ValueError(f"pipeline must be in 1..{levels} for k={k}, not {pipeline}")
        self._fmt_a, self._fmt_b, self._k, self._pipeline = fmt_a, fmt_b, k, pipeline
        self._levels = levels

        plo, phi = product_range(fmt_a, fmt_b)
        slo, shi = _scale_exp_range(_E8M0)
        lsb = fmt_a.lsb_exp + fmt_b.lsb_exp
        self._lsb = lsb
        in_layout = data.StructLayout({
            "a": data.ArrayLayout(layout_of(fmt_a), k),
            "b": data.ArrayLayout(layout_of(fmt_b), k),
            "scale_a": unsigned(_E8M0.bits),
            "scale_b": unsigned(_E8M0.bits),
        })
        out_layout = data.StructLayout({
            "s": signed(signed_width(k * plo, k * phi)),
            "e": signed(signed_width(2 * slo + lsb, 2 * shi + lsb)),
            "special": unsigned(1),
        })
        super().__init__({"i": In(stream.Signature(in_layout)),
                          "o": Out(stream.Signature(out_layout))})

    @property
    def fmt_a(self):
        return self._fmt_a

    @property
    def fmt_b(self):
        return self._fmt_b

    @property
    def k(self):
        return self._k

    @property
    def latency(self):
        """Cycles from an input transfer to the result's ``o.valid`` (``o.ready`` high)."""
        return self._pipeline

    @property
    def lsb_exp(self):
        """``fmt_a.lsb_exp + fmt_b.lsb_exp``: the part of ``E`` that the formats give."""
        return self._lsb

    @property
    def stage_ends(self):
        """Combinational levels (1-based, 1 = the products) after which a register sits."""
        n, p = self._levels, self._pipeline
        return [((i + 1) * n + p - 1) // p for i in range(p)]

    def elaborate(self, platform):
        m = Module()
        pl = self.i.payload
        advance = Signal()
        m.d.comb += [advance.eq(~self.o.valid | self.o.ready), self.i.ready.eq(advance)]

        def scale_exp(code):
            return Mux(code == _E8M0.nan_code, 0, code - _E8M0.bias)

        # level 1: products, exponent, special flag
        terms = []
        scale_nan = Signal()
        m.d.comb += scale_nan.eq((pl.scale_a == _E8M0.nan_code) | (pl.scale_b == _E8M0.nan_code))
        bad = []
        for j in range(self._k):
            p, nf = multiply(m, self._fmt_a, pl.a[j], self._fmt_b, pl.b[j])
            terms.append(p)
            bad.append(nf)
        special = scale_nan
        for nf in bad:
            special = special | nf
        e = scale_exp(pl.scale_a) + scale_exp(pl.scale_b) + self._lsb
        valid = self.i.valid

        ends = self.stage_ends
        for level in range(1, self._levels + 1):
            if level > 1:  # one adder-tree level
                terms = [terms[2 * j] + terms[2 * j + 1] for j in range(len(terms) // 2)]
            if level in ends:
                last = level == self._levels
                stage = ends.index(level)
                if last:
                    s_out = Mux(special, 0, terms[0])
                    with m.If(advance):
                        m.d.sync += [self.o.payload.s.eq(s_out), self.o.payload.e.eq(e),
                                     self.o.payload.special.eq(special),
                                     self.o.valid.eq(valid)]
                    break
                regs = [Signal(t.shape(), name=f"st{stage}_t{j}") for j, t in enumerate(terms)]
                e_q = Signal(self.o.payload.e.shape(), name=f"st{stage}_e")
                sp_q = Signal(name=f"st{stage}_special")
                v_q = Signal(name=f"st{stage}_valid")
                with m.If(advance):
                    m.d.sync += [r.eq(t) for r, t in zip(regs, terms)]
                    m.d.sync += [e_q.eq(e), sp_q.eq(special), v_q.eq(valid)]
                terms, e, special, valid = regs, e_q, sp_q, v_q
        return m
