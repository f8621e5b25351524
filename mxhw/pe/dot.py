"""MX dot-product unit: one OCP ``Dot`` of a block pair, exact, as ``S * 2**E``."""

from __future__ import annotations

import operator

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..formats import layout_of, lookup_format, scale_exp_range, signed_width
from ..lib.params import check_int
from ..lib.pipe import drive_output, stall_all
from ..lib.trees import any_of, reduce_levels
from .multiplier import multiply, product_range

__all__ = ["MXDotProduct", "dot_block_format"]

#: Largest block the dot product takes (its elements are one adder tree).
K_MAX = 32


def dot_block_format(fmt, name="fmt"):
    """The :class:`~mxhw.golden.formats.BlockFormat` named by ``fmt`` (a golden name or
    alias, or a descriptor) that :class:`MXDotProduct` takes: one element format,
    power-of-two scales, 1-D blocks of a power-of-two size up to :data:`K_MAX`."""
    fmt = lookup_format(fmt, name, "block")
    k = fmt.block
    if len(fmt.candidates) != 1 or fmt.scale.kind != "pow2" or not isinstance(k, int) \
            or not (1 <= k <= K_MAX and k & (k - 1) == 0):
        raise ValueError(f"{name} must be a block format with one element format, "
                         f"power-of-two scales and 1-D blocks of 1..{K_MAX} elements (a "
                         f"power of two), not {fmt.name!r}")
    return fmt


def _scale_exp(code, scale):
    """The exponent of a power-of-two scale code (a NaN code counts as 0, as in golden)."""
    e = code - scale.bias
    return Mux(code == scale.nan_code, 0, e) if scale.has_nan else e


class MXDotProduct(wiring.Component):
    """Exact OCP MX ``Dot`` of one block pair, streamed.

    ``value = S * 2**E`` with ``S = sum_i int_a[i] * int_b[i]`` (exact element products,
    see :class:`~mxhw.pe.ElementMultiplier`, summed by a pipelined adder tree) and
    ``E = (sa - bias_a) + (sb - bias_b) + lsb_exp`` (``lsb_exp = ea.lsb_exp + eb.lsb_exp``
    of the element formats; a NaN scale counts as exponent 0 in ``E``, as in golden).

    Parameters
    ----------
    fmt_a, fmt_b : str or BlockFormat
        Block formats of the two operands (equal or mixed; golden names or aliases, e.g.
        ``"mxfp4"``): one element format each, power-of-two scales (E8M0 for OCP MX) and
        the same block size ``k``, a power of two in 1..32 (32 for OCP MX; other sizes are
        block formats built with :class:`~mxhw.golden.formats.BlockFormat`).
    pipeline : int or None
        Register stages, 0..log2(k)+1; 0: combinational. The datapath has
        ``log2(k) + 1`` combinational levels (the products, then one per adder-tree
        level); they are split as evenly as possible among ``pipeline`` stages, each
        ending in a register (the last one is the output register). ``None``:
        ``min(2, log2(k) + 1)``.

    Members
    -------
    i : In(stream.Signature(StructLayout))
        Payload ``a`` (``ArrayLayout(layout_of(fmt_a.element), k)``), ``b`` (likewise),
        ``scale_a``, ``scale_b`` (scale codes, ``unsigned(fmt.scale.bits)``).
    o : Out(stream.Signature(StructLayout))
        Payload ``s`` (``signed``, wide enough for ``k`` extreme products), ``e``
        (``signed``, the range of ``E``) and ``special``: either scale is NaN or an
        element code is NaN/Inf; then ``s`` is 0.

    Latency ``pipeline`` cycles from a transfer on ``i`` to ``o.valid`` (with ``o.ready``
    high); throughput one block pair per cycle. The whole pipeline stalls while ``o`` is
    valid and not ready (``i.ready = ~o.valid | o.ready``; ``pipeline=0``: ``o.ready``).
    Golden twin: :func:`mxhw.golden.arith.block_dots` (``S``, ``E``, ``is_special``).

    Raises
    ------
    TypeError
        A format that is not a block format; ``pipeline`` not an integer.
    ValueError
        An unknown format name or one the unit does not take; block sizes that differ;
        ``pipeline`` outside 0..log2(k)+1.
    """

    def __init__(self, fmt_a, fmt_b, pipeline=None):
        fmt_a = dot_block_format(fmt_a, "fmt_a")
        fmt_b = dot_block_format(fmt_b, "fmt_b")
        k = fmt_a.block
        if fmt_b.block != k:
            raise ValueError(f"fmt_a and fmt_b must have the same block size, not {k} "
                             f"({fmt_a.name}) and {fmt_b.block} ({fmt_b.name})")
        levels = (k - 1).bit_length() + 1
        if pipeline is None:
            pipeline = min(2, levels)
        check_int("pipeline", pipeline, 0, levels)
        ea, eb = fmt_a.element, fmt_b.element
        self._fmt_a, self._fmt_b, self._k, self._pipeline = fmt_a, fmt_b, k, pipeline
        self._levels = levels

        plo, phi = product_range(ea, eb)
        (alo, ahi), (blo, bhi) = scale_exp_range(fmt_a), scale_exp_range(fmt_b)
        self._lsb = lsb = ea.lsb_exp + eb.lsb_exp
        in_layout = data.StructLayout({
            "a": data.ArrayLayout(layout_of(ea), k),
            "b": data.ArrayLayout(layout_of(eb), k),
            "scale_a": unsigned(fmt_a.scale.bits),
            "scale_b": unsigned(fmt_b.scale.bits),
        })
        out_layout = data.StructLayout({
            "s": signed(signed_width(k * plo, k * phi)),
            "e": signed(signed_width(alo + blo + lsb, ahi + bhi + lsb)),
            "special": unsigned(1),
        })
        super().__init__({"i": In(stream.Signature(in_layout)),
                          "o": Out(stream.Signature(out_layout))})

    fmt_a = property(lambda self: self._fmt_a, doc="Block format of A.")
    fmt_b = property(lambda self: self._fmt_b, doc="Block format of B.")
    k = property(lambda self: self._k, doc="Elements per block (the formats' block size).")
    latency = property(lambda self: self._pipeline,
                       doc="Cycles from an input transfer to the result's ``o.valid``.")
    lsb_exp = property(lambda self: self._lsb,
                       doc="``ea.lsb_exp + eb.lsb_exp``: the part of ``E`` the formats give.")

    @property
    def stage_ends(self):
        """Combinational levels (1-based, 1 = the products) after which a register sits."""
        n, p = self._levels, self._pipeline
        return [((i + 1) * n + p - 1) // p for i in range(p)]

    def elaborate(self, platform):
        m = Module()
        pl = self.i.payload
        fa, fb = self._fmt_a, self._fmt_b
        advance = stall_all(m, self.i, self.o, self._pipeline)

        # level 1: products, exponent, special flag
        terms, bad = [], []
        for j in range(self._k):
            p, nf = multiply(m, fa.element, pl.a[j], fb.element, pl.b[j])
            terms.append(p)
            bad.append(nf)
        scale_nan = Signal()
        m.d.comb += scale_nan.eq(any_of(
            [code == f.scale.nan_code for code, f in ((pl.scale_a, fa), (pl.scale_b, fb))
             if f.scale.has_nan]))
        special = any_of([scale_nan, *bad])
        e = _scale_exp(pl.scale_a, fa.scale) + _scale_exp(pl.scale_b, fb.scale) + self._lsb
        valid = self.i.valid

        ends = self.stage_ends
        for level in range(1, self._levels + 1):
            if level > 1:  # one adder-tree level
                terms = reduce_levels(terms, operator.add, 1)
            if level in ends[:-1]:
                stage = ends.index(level)
                regs = [Signal(t.shape(), name=f"st{stage}_t{j}") for j, t in enumerate(terms)]
                e_q = Signal(self.o.payload.e.shape(), name=f"st{stage}_e")
                sp_q = Signal(name=f"st{stage}_special")
                v_q = Signal(name=f"st{stage}_valid")
                with m.If(advance):
                    m.d.sync += [r.eq(t) for r, t in zip(regs, terms)]
                    m.d.sync += [e_q.eq(e), sp_q.eq(special), v_q.eq(valid)]
                terms, e, special, valid = regs, e_q, sp_q, v_q
        out = [self.o.payload.s.eq(Mux(special, 0, terms[0])), self.o.payload.e.eq(e),
               self.o.payload.special.eq(special), self.o.valid.eq(valid)]
        drive_output(m, out, advance, self._pipeline)
        return m
