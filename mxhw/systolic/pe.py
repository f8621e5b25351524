"""The bit-parallel MX multiply-accumulate PEs of the systolic arrays: :class:`MXMacPE`
(block sums, scaling and accumulator in the PE) and :class:`MXBlockSumPE` (block sums only,
for a row-shared :class:`~mxhw.systolic.rowacc.RowAccumulator`)."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..formats import (Unpacked, _nonfinite, code_bits, is_moded, lsb_shift, moded_code,
                       operand_element, unpack)
from ..lib.signals import stage
from ..pe.multiplier import (LUT_MULTIPLY_BITS, TABLE_MULTIPLY_BITS, ElementMultiplier,
                             multiply_sign_magnitude, product_range)
from .fp32acc import F32_INF, F32_NAN, f32_add, int_to_f32, product_class
from .blockscale import block_scale, check_block_scaled, scale_block_sum
from .grid import (PE_PIPELINE_MAX, AccumulatingPE, accumulate_blocks, array_block_format,
                   block_sum_outputs, block_sum_width, check_pe_pipeline, mode_port, running_block_sum)

__all__ = ["MXMacPE", "MXBlockSumPE", "PE_PIPELINE_MAX"]





def element_multiplier(m, pe, fa, fb, pipeline):
    """The :class:`~mxhw.pe.ElementMultiplier` of a bit-parallel PE ``pe`` (its ``a``,
    ``b`` and, for moded formats, ``a_mode`` / ``b_mode`` ports), registered when
    ``pipeline >= 1``. Returns ``(mul, a, b)``, ``a``, ``b`` the operand codes
    (:func:`~mxhw.formats.moded_code`)."""
    ea, eb = operand_element(fa), operand_element(fb)
    a = moded_code(fa, pe.a, getattr(pe, "a_mode", None))
    b = moded_code(fb, pe.b, getattr(pe, "b_mode", None))
    m.submodules.mul = mul = ElementMultiplier(ea, eb, pipeline=1 if pipeline >= 1 else 0)
    m.d.comb += [mul.a.eq(a), mul.b.eq(b)]
    return mul, a, b


def operand_ports(fmt_a, fmt_b):
    """The input ports of a bit-parallel output-stationary PE (:class:`MXMacPE`)."""
    return {
        "a": In(unsigned(code_bits(fmt_a))),
        "b": In(unsigned(code_bits(fmt_b))),
        "a_scale": In(unsigned(fmt_a.scale.bits)),
        "b_scale": In(unsigned(fmt_b.scale.bits)),
        **({"a_mode": In(mode_port(fmt_a))} if fmt_a.mode_bits else {}),
        **({"b_mode": In(mode_port(fmt_b))} if fmt_b.mode_bits else {}),
        "valid": In(1),
        "block_end": In(1),
        "last": In(1),
    }


def is_table_pair(ea, eb):
    """The element formats ``ea``, ``eb`` multiply as a table (the element multiplier's
    truth-table product of two small sign-magnitude FP codes, e.g. FP4 x FP4: a few LUTs
    deep, nothing to split)."""
    def table(e):
        return e.kind == "fp" and not is_moded(e) and e.sign_bit == e.bits - 1
    return table(ea) and table(eb) and ea.bits + eb.bits - 2 <= TABLE_MULTIPLY_BITS


def splits_product(fmt_a, fmt_b, pipeline):
    """Registers :class:`MXBlockSumPE` of block formats ``fmt_a``, ``fmt_b`` and
    ``pipeline`` puts inside its element product (:func:`split_product`): at ``pipeline``
    4, 2 for a product of significands in LUTs (FP6, FP8, mixed pairs), 1 for one in a DSP
    block (INT8 x INT8), 0 for a table pair (FP4 x FP4); else 0."""
    ea, eb = operand_element(fmt_a), operand_element(fmt_b)
    if pipeline < 4 or is_table_pair(ea, eb):
        return 0
    return 1 if _dsp_product(ea, eb) else 2


def _dsp_product(ea, eb):
    """The significands of ``ea`` and ``eb`` multiply as a ``*`` (a DSP block), not as
    partial products in LUTs."""
    return min(Unpacked(ea).sig_bits, Unpacked(eb).sig_bits) > LUT_MULTIPLY_BITS


def split_product(m, ea, a, eb, b, cut):
    """The exact element product of codes ``a`` (of ``ea``) and ``b`` (of ``eb``) as
    :func:`~mxhw.pe.multiplier.multiply_sign_magnitude` forms it (``(mag, neg,
    nonfinite)``: the significands multiply, the exponents' sum shifts the product onto
    the LSB grid), with ``cut`` (a function of a signal, a register) applied after the
    operands' decode and, when the significands multiply in LUTs (FP formats), again
    between the product and its shift; a product in a DSP block (INT8's 8 x 8) then has
    the block's own delay alone between flip-flops (:func:`splits_product` counts the
    registers)."""
    ua, ub = unpack(m, ea, a), unpack(m, eb, b)
    sa, sb = ua.significand, ub.significand
    sh = Signal(len(lsb_shift(ua) + lsb_shift(ub)), name="sig_shift")
    nf, neg = Signal(name="prod_nonfinite"), Signal(name="prod_neg")
    m.d.comb += [sh.eq(lsb_shift(ua) + lsb_shift(ub)), nf.eq(_nonfinite(ua) | _nonfinite(ub)),
                 neg.eq(~nf & (ua.sign ^ ub.sign))]
    sig = Signal(len(sa) + len(sb), name="sig_prod")
    ra, rb = Signal(len(sa), name="sig_a"), Signal(len(sb), name="sig_b")
    m.d.comb += [ra.eq(sa), rb.eq(sb)]
    ra, rb, sh, nf, neg = (cut(x) for x in (ra, rb, sh, nf, neg))
    narrow, wide = (ra, rb) if len(ra) <= len(rb) else (rb, ra)
    if not _dsp_product(ea, eb):               # partial products in LUTs, as the multiplier
        m.d.comb += sig.eq(sum(Mux(narrow[i], wide << i, 0) for i in range(len(narrow))))
        sig, sh, nf, neg = (cut(x) for x in (sig, sh, nf, neg))
    else:
        m.d.comb += sig.eq(ra * rb)
    lo, hi = product_range(ea, eb)
    mag = Signal(max(-lo, hi, 1).bit_length(), name="mag_nf")
    m.d.comb += mag.eq(Mux(nf, 0, sig << sh))
    return mag, neg, nf


class MXMacPE(AccumulatingPE):
    """Bit-parallel MX multiply-accumulate: one element pair per cycle.

    Per block, the exact products (:class:`mxhw.pe.ElementMultiplier`) are summed exactly in
    an integer ``S`` of :func:`~mxhw.systolic.grid.block_sum_width` bits. On the block's last element the block
    dot ``S * 2**E`` (``E`` from both scales and the element LSBs) is put on the
    accumulator grid ``2**-frac_bits`` (left shift, or right shift with ``floor`` / ``rne``
    rounding) and added to the ``width``-bit accumulator with saturation or wrap-around.
    On the tile's last element the accumulator moves to ``result`` and restarts at zero.
    A NaN scale or a NaN/Inf element code makes the result ``special`` (golden: NaN).

    Element modes (MXSF, see :func:`~mxhw.formats.operand_element`): an operand whose
    format has several modes per block gets a mode port beside its scale; the multiplier
    decodes the code by its mode (MXSF mode W: E2M5, mode S: fp6_e3m2 in the low 6 bits;
    a mode S code with a top bit set is reserved and counts as NaN, as golden) and the
    exact products sit on the finest grid of the modes, so block sums stay exact.

    Register stages (``pipeline``, cumulative; each adds one cycle of latency and none of
    the stages stalls, so the PE still takes one element pair every cycle, blocks and tiles
    back to back):

    ====  ==========================================================================
    >= 1  the product (:class:`~mxhw.pe.ElementMultiplier` with ``pipeline=1``), and
          the scales' shift amount and NaN flag
    >= 2  at a block end: the finished block sum ``S``, the shift direction and amount
          and the NaN flag
    >= 3  after the barrel shift (the shifted sum, and the RNE round-up bit);
          ``fp32``: the block's float32 value
    >= 4  after rounding and clamping, before the accumulator adder (``fp32``: as 3)
    ====  ==========================================================================

    With ``fp32`` accumulation (golden's ``fp32`` mode, :mod:`mxhw.systolic.fp32acc`)
    each block dot is rounded once to float32 (RNE, overflow to Inf; a block with a NaN
    scale is NaN, one with NaN/Inf element codes the IEEE value of its products' sum) and
    added to a float32 accumulator that starts at +0, in K order, rounding to nearest
    even; ``result`` holds float32 bits and ``special`` marks a NaN result.

    Parameters
    ----------
    fmt_a, fmt_b : BlockFormat
        Operand block formats (validated by the array).
    acc : golden.arith.Accumulation
        ``fixed`` or ``fp32`` accumulation.
    pipeline : int
        Register stages, 0..4 (:data:`~mxhw.systolic.grid.PE_PIPELINE_MAX`); default 0.

    Members
    -------
    a, b : In(unsigned(bits))
        Element codes. ``a_scale``, ``b_scale`` : In(unsigned(scale bits)) scale codes of
        their blocks (read on the block's last element).
    a_mode, b_mode : In(unsigned(mode bits))
        Only for an operand with several element modes (MXSF): its block's mode, with
        every element.
    valid, block_end, last : In(1)
        The pair is valid; it is the last of its block; the last of the tile (a block end).
    result : Out(signed(acc.width)) (``fp32``: 32 bits), special : Out(1)
        Registered, updated :attr:`latency` cycles after a ``last`` element.

    Latency ``1 + pipeline`` cycles from the tile's last element to ``result``;
    throughput one element pair per cycle. Golden twin: :func:`mxhw.golden.arith.gemm`
    with ``fixed`` or ``fp32`` accumulation (one output element).

    Raises
    ------
    TypeError, ValueError
        ``pipeline`` not an integer in 0..4.
    """

    def __init__(self, fmt_a, fmt_b, acc, pipeline=0):
        fa, fb = array_block_format(fmt_a, "fmt_a"), array_block_format(fmt_b, "fmt_b")
        super().__init__(fa, fb, acc, pipeline, operand_ports(fa, fb))
        check_block_scaled(fa, fb, acc)

    def elaborate(self, platform):
        m = Module()
        fa, fb, acc, P = self._fmt_a, self._fmt_b, self._acc, self._pipeline
        mul, a, b = element_multiplier(m, self, fa, fb, P)
        ea, eb = mul.fmt_a, mul.fmt_b
        # control and the scales' shift and NaN flag, aligned with the product
        # (NVFP4: E4M3 scales, their significands' product ``sig``: blockscale.py)
        t, off, nan, sig = block_scale(m, fa, fb, self.a_scale, self.b_scale, acc,
                                       mul.lsb_exp)
        valid, end, last, t, nan, *sig = (
            stage(m, x, P >= 1, "m")
            for x in (self.valid, self.block_end, self.last, t, nan,
                      *(() if sig is None else (sig,))))
        if acc.mode == "fp32":
            return self._elaborate_fp32(m, mul, a, b, valid, end, last, nan)

        s_new, spec_new, advance = running_block_sum(
            m, block_sum_width(ea, eb, self._k), mul.p, mul.nonfinite, end, nan)
        with m.If(valid):
            advance(end, last)

        ev = Signal()                              # a block ends: its sum moves on
        m.d.comb += ev.eq(valid & end)
        accumulate_blocks(m, acc, scale_block_sum(m, s_new, sig[0] if sig else None), t, off,
                          ev, last, spec_new, P - 1, self.result, self.special)
        return m

    def _elaborate_fp32(self, m, mul, a, b, valid, end, last, nan):
        """golden ``fp32``: each block dot rounded to float32, added in K order (RNE);
        ``a``, ``b`` the operand codes (:func:`~mxhw.formats.moded_code`)."""
        fa, fb, P = self._fmt_a, self._fmt_b, self._pipeline
        ea, eb = mul.fmt_a, mul.fmt_b
        pn, pp, pq = product_class(m, ea, a, eb, b)
        pn, pp, pq = (stage(m, x, P >= 1, "m") for x in (pn, pp, pq))
        # E: the weight of S's LSB, from the scales (stage m, beside the product)
        off = mul.lsb_exp - fa.scale.bias - fb.scale.bias
        e_hi = (1 << fa.scale.bits) + (1 << fb.scale.bits) + max(off, 0)
        e = Signal(range(min(off, 0), e_hi))
        m.d.comb += e.eq(self.a_scale + self.b_scale + off)
        e = stage(m, e, P >= 1, "m")

        sw = block_sum_width(ea, eb, self._k)
        s = Signal(signed(sw))
        s_new = Signal(signed(sw))
        m.d.comb += s_new.eq(s + mul.p)
        # the block's IEEE specials so far: NaN, +Inf, -Inf products
        bn, bp, bq = Signal(), Signal(), Signal()
        bn_new, bp_new, bq_new = Signal(), Signal(), Signal()
        m.d.comb += [bn_new.eq(bn | pn | (end & nan)), bp_new.eq(bp | pp), bq_new.eq(bq | pq)]
        with m.If(valid):
            m.d.sync += [s.eq(s_new), bn.eq(bn_new), bp.eq(bp_new), bq.eq(bq_new)]
            with m.If(end):
                m.d.sync += [s.eq(0), bn.eq(0), bp.eq(0), bq.eq(0)]
        ev = Signal()
        m.d.comb += ev.eq(valid & end)
        s_b, e_b, bn_b, bp_b, bq_b, ev, last = (
            stage(m, x, P >= 2, "blk") for x in (s_new, e, bn_new, bp_new, bq_new, ev, last))
        blk = Signal(32)
        fin = int_to_f32(m, s_b, e_b, "blk")
        m.d.comb += blk.eq(Mux(bn_b | (bp_b & bq_b), F32_NAN,
                               Mux(bp_b, F32_INF, Mux(bq_b, F32_INF | 1 << 31, fin))))
        blk, ev, last = (stage(m, x, P >= 3, "cv") for x in (blk, ev, last))

        reg = Signal(32)
        reg_new = f32_add(m, reg, blk, "acc")
        with m.If(ev):
            m.d.sync += reg.eq(reg_new)
            with m.If(last):
                m.d.sync += [reg.eq(0), self.result.eq(reg_new),
                             self.special.eq((reg_new[23:31] == 0xFF) & (reg_new[:23] != 0))]
        return m


class MXBlockSumPE(wiring.Component):
    """The multiplier half of :class:`MXMacPE`: exact block sums, handed on at each block
    end (to a :class:`~mxhw.systolic.rowacc.RowAccumulator` shared by a row of the
    output-stationary array) instead of being scaled and accumulated in the PE.

    Per block the exact products (:class:`mxhw.pe.ElementMultiplier`'s logic, MXSF codes
    decoded by their block's mode as in :class:`MXMacPE`; as magnitude and sign,
    :func:`~mxhw.pe.multiplier.multiply_sign_magnitude`, the sign taken as the
    magnitude's ones' complement, before the product register, and the block sum's
    adder's carry-in) are summed exactly in an integer ``S`` of
    :func:`~mxhw.systolic.grid.block_sum_width` bits at ``2**lsb_exp`` (``lsb_exp`` the multiplier's); on the
    block's last element ``S`` appears on ``block_sum`` with ``block_valid`` high, beside
    the block's two scale codes, whether any of its element codes was NaN/Inf, and the
    tile's ``last`` flag, and the PE starts the next block at once. Nothing else is kept
    and nothing is done with the scale codes: their sum, their NaN codes, the shift onto
    the accumulator grid and the accumulator live in the row unit. (The array gives the
    row units the codes from its own edge registers, and without PE registers row 0's
    ``block_b_scale``; scale outputs left unconnected are removed by synthesis.)

    Register stages (``pipeline``): >= 1 registers the product (magnitude and sign), the
    control and the scale codes (:class:`MXMacPE`'s stage 1); >= 2 also
    registers the ``block_*`` outputs (the row's multiplexer then starts at flip-flops, not
    at the block sum's adder: one more cycle); the others belong to the row unit (its
    :func:`~mxhw.systolic.grid.block_to_grid` takes
    ``pipeline - 1``, after its own selection register), so a PE and its row unit
    together take :class:`MXMacPE`'s latency ``1 + pipeline`` plus
    :func:`~mxhw.systolic.rowacc.row_extra_stages` (3 from ``pipeline`` 2 up: two
    registers keep the row-wide selection off the PEs' and the row unit's logic, one
    holds the tile's final sum before its clamp; else 1, that last one).

    Parameters
    ----------
    fmt_a, fmt_b : BlockFormat
        Operand block formats (validated by the array).
    pipeline : int
        Register stages of the PE and its row unit, 0..4 (:data:`~mxhw.systolic.grid.PE_PIPELINE_MAX`).

    Members
    -------
    a, b, a_scale, b_scale, a_mode, b_mode, valid, block_end, last : In
        As :class:`MXMacPE`.
    block_valid : Out(1)
        A block ends in this cycle (``valid & block_end``, :attr:`latency` cycles after
        its last element arrived); the other ``block_*`` ports hold it. Registered from
        ``pipeline`` 2 up; below, they come from the block sum's adder.
        ``block_sum``, ``block_nonfinite`` and ``block_last`` are 0 while it is low, so
        that a row unit combines its columns by OR
        (:class:`~mxhw.systolic.rowacc.RowAccumulator`'s ``idle_zero``).
    block_sum : Out(signed(block_sum_width))
        The block's exact sum ``S`` (products at ``2**lsb_exp``; NaN/Inf codes count 0).
    block_a_scale, block_b_scale : Out(unsigned(scale bits))
        The block's scale codes (``a_scale``, ``b_scale`` with its last element; NaN
        codes are the row unit's to test).
    block_nonfinite : Out(1)
        An element code of the block is NaN/Inf (reserved MXSF codes included); NaN
        scale codes are not included.
    block_last : Out(1)
        The block is the tile's last.

    Throughput one element pair per cycle, blocks and tiles back to back. Golden twin:
    the exact block dot products of :func:`mxhw.golden.arith.gemm`.

    Raises
    ------
    TypeError, ValueError
        ``pipeline`` not an integer in 0..4.
    """

    def __init__(self, fmt_a, fmt_b, pipeline=0):
        check_pe_pipeline(pipeline)
        self._fmt_a, self._fmt_b, self._pipeline = fmt_a, fmt_b, pipeline
        self._k = fmt_a.block_size
        ea, eb = operand_element(fmt_a), operand_element(fmt_b)
        super().__init__({
            **operand_ports(fmt_a, fmt_b),
            "block_valid": Out(1),
            "block_sum": Out(signed(block_sum_width(ea, eb, self._k))),
            "block_a_scale": Out(unsigned(fmt_a.scale.bits)),
            "block_b_scale": Out(unsigned(fmt_b.scale.bits)),
            "block_nonfinite": Out(1),
            "block_last": Out(1),
        })

    pipeline = property(lambda self: self._pipeline)

    @property
    def split_product(self):
        """Registers inside the element product (:func:`splits_product`: at ``pipeline``
        4, 2 for FP6/FP8/mixed pairs, 1 for INT8 x INT8, 0 for FP4 x FP4)."""
        return splits_product(self._fmt_a, self._fmt_b, self._pipeline)

    @property
    def latency(self):
        """Cycles from a block's last element to its ``block_valid``: ``min(pipeline, 1)``,
        plus 1 from ``pipeline`` 2 up (the output register), plus
        :attr:`split_product`."""
        return min(self._pipeline, 1) + (self._pipeline >= 2) + self.split_product

    @property
    def lsb_exp(self):
        """Weight exponent of ``block_sum``'s LSB (the element multiplier's)."""
        return operand_element(self._fmt_a).lsb_exp + operand_element(self._fmt_b).lsb_exp

    def elaborate(self, platform):
        m = Module()
        fa, fb, P = self._fmt_a, self._fmt_b, self._pipeline
        # the element product as magnitude and sign (registered when pipeline >= 1, as
        # the ElementMultiplier's product would be): the sign is applied as an XOR (the
        # ones' complement, before the register: the block sum's adder then takes
        # flip-flops, no logic in its loop) and the adder's carry-in, one carry chain
        # where a negation would be another
        a = moded_code(fa, self.a, getattr(self, "a_mode", None))
        b = moded_code(fb, self.b, getattr(self, "b_mode", None))
        ea, eb = operand_element(fa), operand_element(fb)
        ctl = (self.valid, self.block_end, self.last, self.a_scale, self.b_scale)
        if self.split_product:
            # registers in the product (and the control as many registers later)
            mag, neg, mul_nf = split_product(m, ea, a, eb, b,
                                             lambda x: stage(m, x, True, "sig"))
            for _ in range(self.split_product):
                ctl = tuple(stage(m, x, True, "sig") for x in ctl)
        else:
            mag, neg, mul_nf = multiply_sign_magnitude(m, ea, a, eb, b)
        ones = Signal(len(mag), name="mag_ones")   # the product's low bits, ones' complement
        m.d.comb += ones.eq(mag ^ neg.replicate(len(mag)))
        ones, neg, mul_nf = (stage(m, x, P >= 1, "mul") for x in (ones, neg, mul_nf))
        # the scale codes, aligned with the product (these registers equal the operands'
        # pass-through registers to the next PE, so synthesis shares them)
        valid, end, last, a_scale, b_scale = (stage(m, x, P >= 1, "m") for x in ctl)
        p_ones = Signal.like(self.block_sum)       # the product, ones' complement if neg
        m.d.comb += p_ones.eq(Cat(ones, neg.replicate(len(self.block_sum) - len(ones))))
        block_sum_outputs(m, self, P, valid, end, last, a_scale, b_scale,
                          lambda s: s + p_ones + neg, mul_nf)
        return m
