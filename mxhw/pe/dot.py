"""MX dot-product unit: one OCP ``Dot`` of a block pair, exact, as ``S * 2**E``."""

from __future__ import annotations

import operator

from amaranth.hdl import Fragment, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..formats import layout_of, lookup_format, scale_exp_range, signed_width
from ..lib.dsp import DSP_LATENCY, check_dsp, dsp_product, platform_dsp
from ..lib.params import check_int
from ..lib.pipe import credit_output
from ..lib.trees import any_of, reduce_levels
from .multiplier import decode_parts, partial_products, product_range, product_width, \
    significand_product

__all__ = ["MXDotProduct", "dot_block_format", "dot_levels", "SPLIT_SHIFT_BITS",
           "HALVES_BITS"]

#: Largest block the dot product takes (its elements are one adder tree).
K_MAX = 32
#: Products whose shift amount to the fixed-point grid has this many bits or more (FP8:
#: shifts up to 28 and more) shift in two levels: by the amount's low two bits, then by
#: the rest (one level's barrel shifter of five mux levels was MXFP8's critical path).
SPLIT_SHIFT_BITS = 5
#: Where the products shift in two levels, significand products of a narrow operand this
#: wide or wider (FP8: 3-4 bits, 3-4 partial products) are two half sums at the products'
#: level and one add at the first shift's (a sum of four shifted operands in one level was
#: MXFP8's critical path, 3 LUT levels into a carry chain).
HALVES_BITS = 3


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


def _scale_code(code, scale):
    """The scale code with a NaN code replaced by the bias (exponent 0, as in golden)."""
    return Mux(code == scale.nan_code, scale.bias, code) if scale.has_nan else code


def _or_groups(m, bits, n=4):
    """``bits`` ORed in groups of ``n``: a list of signals."""
    out = [Signal(name=f"any{j}") for j in range((len(bits) + n - 1) // n)]
    m.d.comb += [o.eq(any_of(bits[j * n:(j + 1) * n])) for j, o in enumerate(out)]
    return out


def _probe(ea, eb):
    """``(split, lut, narrow)`` of the products of element formats ``ea`` x ``eb``: they
    shift in two levels; their significands multiply in LUT logic (else with ``*``, a
    DSP); the narrow significand's width."""
    probe = Module()
    (x, _, lut, _), sh, _ = decode_parts(probe, ea, Signal(layout_of(ea)), eb,
                                         Signal(layout_of(eb)))
    Fragment.get(probe, None)       # elaborated (a probe of the widths, never used)
    return len(sh) >= SPLIT_SHIFT_BITS, lut, len(x)


def _split_shift(ea, eb):
    """The products of element formats ``ea`` x ``eb`` shift in two levels."""
    return _probe(ea, eb)[0]


def dot_levels(fmt_a, fmt_b):
    """Combinational levels of :class:`MXDotProduct` ``(fmt_a, fmt_b)`` (its default
    ``pipeline``): ``log2(k) + 3``, plus one where the products' shifts take two levels
    (:data:`SPLIT_SHIFT_BITS`)."""
    fmt_a, fmt_b = dot_block_format(fmt_a, "fmt_a"), dot_block_format(fmt_b, "fmt_b")
    return ((fmt_a.block - 1).bit_length() + 3
            + _split_shift(fmt_a.element, fmt_b.element))


class MXDotProduct(wiring.Component):
    """Exact OCP MX ``Dot`` of one block pair, streamed.

    ``value = S * 2**E`` with ``S = sum_i int_a[i] * int_b[i]`` (exact element products,
    summed by a pipelined adder tree) and ``E = (sa - bias_a) + (sb - bias_b) + lsb_exp``
    (``lsb_exp = ea.lsb_exp + eb.lsb_exp`` of the element formats; a NaN scale counts as
    exponent 0 in ``E``, as in golden).

    Each product is formed as :func:`~mxhw.pe.multiplier.multiply_parts` forms it: the
    signed product of the two significands (the sign applied to the narrow operand, a
    signed DSP multiplier for wide ones), then its shift to the fixed-point grid; the
    fixed-point products are never negated.

    Parameters
    ----------
    fmt_a, fmt_b : str or BlockFormat
        Block formats of the two operands (equal or mixed; golden names or aliases, e.g.
        ``"mxfp4"``): one element format each, power-of-two scales (E8M0 for OCP MX) and
        the same block size ``k``, a power of two in 1..32 (32 for OCP MX; other sizes are
        block formats built with :class:`~mxhw.golden.formats.BlockFormat`).
    pipeline : int or None
        Register stages, 0..:func:`dot_levels`; 0: combinational. The datapath has
        ``log2(k) + 3`` combinational levels (the codes decoded into signed significand
        operands, their products, the products' shifts to fixed point (two levels where
        the shift amount has :data:`SPLIT_SHIFT_BITS` bits or more: FP8), then one per
        adder-tree level); they are split as evenly as possible
        among ``pipeline`` stages, each ending in a register (the last one is the output
        buffer's write). ``None``: :func:`dot_levels`, a register after every level.

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
    high); throughput one block pair per cycle. The stage registers run free (no stall
    enable); the last stage is a buffer of ``pipeline + 1`` results and ``i.ready`` is
    high while fewer results are in flight or waiting
    (:func:`~mxhw.lib.pipe.credit_output`; ``pipeline=0``: ``i.ready`` is ``o.ready``).
    Golden twin: :func:`mxhw.golden.arith.block_dots` (``S``, ``E``, ``is_special``).

    Raises
    ------
    TypeError
        A format that is not a block format; ``pipeline`` not an integer.
    ValueError
        An unknown format name or one the unit does not take; block sizes that differ;
        ``pipeline`` outside 0..dot_levels; ``dsp`` not one of ``None``, ``"fabric"``,
        ``"ecp5"``; ``dsp="ecp5"`` with DSP products but a ``pipeline`` that leaves no
        register before or after them.
    """

    def __init__(self, fmt_a, fmt_b, pipeline=None, dsp=None):
        fmt_a = dot_block_format(fmt_a, "fmt_a")
        fmt_b = dot_block_format(fmt_b, "fmt_b")
        k = fmt_a.block
        if fmt_b.block != k:
            raise ValueError(f"fmt_a and fmt_b must have the same block size, not {k} "
                             f"({fmt_a.name}) and {fmt_b.block} ({fmt_b.name})")
        ea, eb = fmt_a.element, fmt_b.element
        self._split, lut, narrow = _probe(ea, eb)
        # products that shift in two levels and sum three or more partial products (FP8)
        # form two half sums at level 2 and add them at level 3, before the first shift
        self._halves = self._split and lut and narrow >= HALVES_BITS
        self._half_bits = narrow // 2
        levels = dot_levels(fmt_a, fmt_b)
        if pipeline is None:
            pipeline = levels
        check_int("pipeline", pipeline, 0, levels)
        self._fmt_a, self._fmt_b, self._k, self._pipeline = fmt_a, fmt_b, k, pipeline
        self._levels = levels
        self._dsp = check_dsp(dsp)
        # the last stage register after the special flag is formed (level 3 or 4) clears
        # the sums when it is set (a synchronous reset, no LUT): the output needs no mux
        late = [e for e in self.stage_ends[:-1] if e >= 3 + self._split]
        self._zero_end = late[-1] if late else None
        # the products have a register before and after them: they can be DSP products
        self._registered_mul = not lut and {1, 2} <= set(self.stage_ends[:-1])
        if self._dsp == "ecp5" and not lut and not self._registered_mul:
            raise ValueError(f"dsp='ecp5' needs registers after levels 1 and 2 (the DSP's "
                             f"own), which pipeline={pipeline} does not place (stage ends "
                             f"{self.stage_ends})")

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
        """Combinational levels (1-based: 1 = the decoded significand operands, 2 = their
        products, 3 = the products' shifts (3 and 4 where they take two levels), then the
        adder-tree levels) after which a register sits."""
        n, p = self._levels, self._pipeline
        return [((i + 1) * n + p - 1) // p for i in range(p)]

    dsp = property(lambda self: self._dsp, doc="The ``dsp`` parameter.")

    def elaborate(self, platform):
        m = Module()
        dsp = self._dsp or platform_dsp(platform)
        # DSP products (dsp_product): their operands and product are registered by it,
        # as the stages after levels 1 and 2
        held = {1: {"x", "y"}, 2: {"t"}} if self._registered_mul else {}
        assert not held or DSP_LATENCY == 2
        pl = self.i.payload
        fa, fb = self._fmt_a, self._fmt_b
        take, w_payload, w_valid = credit_output(m, self.i, self.o, self._pipeline)
        width = product_width(fa.element, fb.element)

        # level 1: the codes decoded into significand operands and shifts; exponent sum,
        # special flag
        lanes = {"x": [], "y": [], "sh": []}
        bad = []
        for j in range(self._k):
            # a NaN/Inf element makes S 0 at the output: its product need not be 0
            (x, y, lut, pwidth), shift, nf = decode_parts(
                m, fa.element, pl.a[j], fb.element, pl.b[j], zero_nonfinite=False)
            for n, v in (("x", x), ("y", y), ("sh", shift)):
                lanes[n].append(v)
            bad.append(nf)
        scale_nan = Signal()
        m.d.comb += scale_nan.eq(any_of(
            [code == f.scale.nan_code for code, f in ((pl.scale_a, fa), (pl.scale_b, fb))
             if f.scale.has_nan]))
        # the scale codes travel to level 2, where E is formed (off the decode's stage);
        # the NaN/Inf flags are ORed in groups of four at level 2, to one at level 3 (the
        # 33-input OR of the decode's flags was its critical path)
        side = {"scale_a": pl.scale_a, "scale_b": pl.scale_b, "valid": take}
        lanes["bad"] = [scale_nan, *bad]

        ends = self.stage_ends

        def _sum_signal(terms, name, shape=None):
            v = Signal(shape or Value.cast(sum(terms)).shape(), name=name)
            m.d.comb += v.eq(sum(terms))
            return v

        for level in range(1, self._levels + 1):
            if level == 2:  # the signed significand products; the exponent
                xy = list(zip(lanes["x"], lanes["y"]))
                rest = {"sh": lanes["sh"], "bad": _or_groups(m, lanes["bad"])}
                if self._halves:   # two half sums of the partial products
                    h = self._half_bits
                    lanes = {n: [_sum_signal(partial_products(x, y, *r), f"{n}{j}")
                                 for j, (x, y) in enumerate(xy)]
                             for n, r in (("lo", (0, h)), ("hi", (h, None)))}
                else:
                    lanes = {"t": [dsp_product(m, x, y, dsp, name=f"mul{j}") if held
                                   else significand_product(m, x, y, lut, pwidth)
                                   for j, (x, y) in enumerate(xy)]}
                lanes.update(rest)
                # E = (sa - bias_a) + (sb - bias_b) + lsb: the codes' sum here, the
                # constant at the last level
                esum = Signal(max(fa.scale.bits, fb.scale.bits) + 1, name="scale_sum")
                m.d.comb += esum.eq(_scale_code(side.pop("scale_a"), fa.scale)
                                    + _scale_code(side.pop("scale_b"), fb.scale))
                side["scale_sum"] = esum
            elif level == 3 and self._split:  # the products shifted by the low two bits
                if self._halves:  # (the half sums added first)
                    lanes["t"] = [_sum_signal([lo, hi << self._half_bits], f"sig_prod{j}",
                                              signed(pwidth))
                                  for j, (lo, hi) in enumerate(zip(lanes.pop("lo"),
                                                                   lanes.pop("hi")))]
                part = [Signal(signed(pwidth + 3), name=f"part{j}")
                        for j in range(len(lanes["t"]))]
                m.d.comb += [p.eq(t << sh[:2]) for p, t, sh in zip(part, lanes["t"], lanes["sh"])]
                lanes = {"t": part, "sh": [sh[2:] for sh in lanes["sh"]], "bad": lanes["bad"]}
            elif level == 3 + self._split:  # the products shifted into place
                fixed = [Signal(signed(width), name=f"fixed{j}") for j in range(self._k)]
                step = 2 if self._split else 0
                m.d.comb += [f.eq(t << (sh << step))
                             for f, t, sh in zip(fixed, lanes["t"], lanes["sh"])]
                special = Signal(name="special")
                m.d.comb += special.eq(any_of(lanes["bad"]))
                side["special"] = special
                lanes = {"t": fixed}
            elif level > 3 + self._split:  # one adder-tree level
                lanes = {"t": reduce_levels(lanes["t"], operator.add, 1)}
            if level == self._levels:
                e = Signal(self.o.payload.e.shape(), name="e")
                m.d.comb += e.eq(side.pop("scale_sum")
                                 + (self._lsb - fa.scale.bias - fb.scale.bias))
                side["e"] = e
            if level in ends[:-1]:
                stage = ends.index(level)
                # free-running: no enable; only the valid bit has a reset
                lanes_q = {n: vs if n in held.get(level, ()) else
                           [Signal(Value.cast(v).shape(), name=f"st{stage}_{n}{j}",
                                   reset_less=True) for j, v in enumerate(vs)]
                           for n, vs in lanes.items()}
                side_q = {n: Signal(v.shape(), name=f"st{stage}_{n}", reset_less=n != "valid")
                          for n, v in side.items()}
                for n, vs in lanes.items():
                    if n in held.get(level, ()):
                        continue
                    if level == self._zero_end:    # (n is "t": only sums by now)
                        vs = [Mux(side["special"], 0, v) for v in vs]
                    m.d.sync += [r.eq(v) for r, v in zip(lanes_q[n], vs)]
                m.d.sync += [side_q[n].eq(v) for n, v in side.items()]
                lanes, side = lanes_q, side_q
        terms = lanes["t"]
        special, e, valid = side["special"], side["e"], side["valid"]
        s_out = terms[0] if self._zero_end else Mux(special, 0, terms[0])
        m.d.comb += [w_payload.s.eq(s_out), w_payload.e.eq(e),
                     w_payload.special.eq(special), w_valid.eq(valid)]
        return m
