"""The PE of the precision-scalable array (:class:`~mxhw.systolic.scalable.ScalableArray`):
one 8 x 8 significand multiplier that splits into two 4 x 4 or four 2 x 2 products, so a
narrow format pair computes 2 or 4 element products per cycle. See ``docs/scalable.md``."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..formats import Unpacked, _nonfinite, lsb_shift, unpack
from ..lib.signals import stage
from ..pe.multiplier import product_width
from .grid import (AccumulatingPE, accumulate_blocks, array_block_format, block_sum_outputs,
                   block_sum_width, check_acc, check_pe_pipeline, running_block_sum,
                   scale_code_sum, scale_nan, scale_offset)

__all__ = ["MUL_BITS", "ScaleMode", "scale_modes", "check_fixed_acc", "ScalablePE",
           "ScalableBlockSumPE", "scalable_members", "split_multiply"]

#: Width of the PE's significand multiplier (unsigned, ``MUL_BITS`` x ``MUL_BITS``).
MUL_BITS = 8

#: Sub-multiplier widths the multiplier splits into: a significand of at most ``s`` bits
#: takes a slot of ``s`` bits, ``MUL_BITS // s`` lanes per cycle.
SLOTS = (2, 4, 8)


class ScaleMode:
    """One run-time mode of a :class:`ScalablePE`: the block format of both operands and
    how it uses the multiplier.

    Attributes
    ----------
    fmt : BlockFormat
    slot : int
        Bits of the multiplier slot of one significand (2, 4 or 8).
    lanes : int
        Element products per cycle, ``MUL_BITS // slot``.
    word : int
        Bits of one operand word (``lanes`` element codes, lane 0 in the low bits).
    steps : int
        Transfers per block, ``block_size // lanes``.
    """

    def __init__(self, fmt):
        self.fmt = fmt
        e = fmt.element
        sig = Unpacked(e).sig_bits
        self.slot = next(s for s in SLOTS if sig <= s)
        self.lanes = MUL_BITS // self.slot
        self.word = self.lanes * e.bits
        self.steps = fmt.block_size // self.lanes

    @property
    def lsb_exp(self):
        """Weight exponent of one element product's LSB (both operands of ``fmt``)."""
        return 2 * self.fmt.element.lsb_exp

    def __repr__(self):
        return f"ScaleMode({self.fmt.name}: {self.lanes} lane(s) of {self.slot} bits)"


def scale_modes(modes):
    """Validate ``modes`` (a non-empty sequence of distinct block format names or
    descriptors) for the scalable array; returns a tuple of :class:`ScaleMode`.

    Each format must be an array format (:func:`~mxhw.systolic.grid.array_block_format`)
    with one element mode, a significand of at most :data:`MUL_BITS` bits and a block size
    that its lanes divide; all must share one scale format and block size."""
    if isinstance(modes, (str, bytes)) or not hasattr(modes, "__iter__"):
        raise TypeError(f"modes must be a sequence of block format names, not {modes!r}")
    modes = list(modes)
    if not modes:
        raise ValueError("modes must name at least one block format")
    out = []
    for n, f in enumerate(modes):
        f = array_block_format(f, f"modes[{n}]")
        if f.mode_bits:
            raise ValueError(f"modes[{n}]: {f.name} has element modes per block; the "
                             f"scalable array takes one element format per block format")
        if getattr(f, "codec", None) is not None:
            raise ValueError(f"modes[{n}]: {f.name} has the {f.codec} codec; the scalable "
                             f"array takes plain MX block formats")
        sig = Unpacked(f.element).sig_bits
        if sig > MUL_BITS:
            raise ValueError(f"modes[{n}]: {f.name} has {sig}-bit significands; the "
                             f"scalable PE's multiplier takes at most {MUL_BITS}")
        mode = ScaleMode(f)
        if f.block_size % mode.lanes:
            raise ValueError(f"modes[{n}]: {f.name}'s block size {f.block_size} is not a "
                             f"multiple of its {mode.lanes} lanes")
        if any(o.fmt.name == f.name for o in out):
            raise ValueError(f"modes[{n}]: {f.name} is listed twice")
        f0 = out[0].fmt if out else f
        if f.scale.name != f0.scale.name or f.block_size != f0.block_size:
            raise ValueError(f"modes[{n}]: {f.name} has {f.scale.name} scales and blocks of "
                             f"{f.block_size}; every mode must match modes[0] "
                             f"({f0.scale.name}, {f0.block_size})")
        out.append(mode)
    return tuple(out)


def check_fixed_acc(acc):
    """Validate ``acc`` (:func:`~mxhw.systolic.grid.check_acc`): the scalable array
    accumulates in ``fixed`` point only."""
    check_acc(acc)
    if acc.mode != "fixed":
        raise ValueError(f"the scalable array implements fixed-point accumulation only, "
                         f"not {acc.mode!r}")
    return acc


def split_multiply(m, a, b):
    """The split significand multiplier: ``a``, ``b`` :data:`MUL_BITS`-bit unsigned
    operands. Returns ``{slot: [lane products]}``: for slot 8 the full product ``a * b``;
    for slot 4 the products of the two 4-bit halves in place (low x low, high x high);
    for slot 2 those of the four 2-bit digits. The narrower products are the partial
    products the full one is summed from (2 x 2 digit products, summed into 4 x 4 blocks,
    summed into 8 x 8), so the lanes share one multiplier's logic."""
    d = [a[2 * i:2 * i + 2] for i in range(4)], [b[2 * i:2 * i + 2] for i in range(4)]
    pp = [[Signal(4, name=f"pp{i}{j}") for j in range(4)] for i in range(4)]
    for i in range(4):
        for j in range(4):
            # as an AND array (a ``*`` of two bits would be a candidate for a DSP block)
            m.d.comb += pp[i][j].eq(Mux(d[0][i][0], d[1][j], 0)
                                    + Mux(d[0][i][1], d[1][j] << 1, 0))
    q = [[Signal(8, name=f"q{i}{j}") for j in range(2)] for i in range(2)]
    for bi in range(2):
        for bj in range(2):
            m.d.comb += q[bi][bj].eq(sum(pp[2 * bi + i][2 * bj + j] << 2 * (i + j)
                                         for i in range(2) for j in range(2)))
    full = Signal(16, name="p_full")
    m.d.comb += full.eq(sum(q[i][j] << 4 * (i + j) for i in range(2) for j in range(2)))
    return {8: [full], 4: [q[0][0], q[1][1]], 2: [pp[i][i] for i in range(4)]}


def scalable_members(modes):
    """The input ports of a scalable PE serving ``modes`` (:func:`scale_modes`)."""
    f0 = modes[0].fmt
    word = max(md.word for md in modes)
    return {
        "a": In(unsigned(word)), "b": In(unsigned(word)),
        "a_scale": In(unsigned(f0.scale.bits)), "b_scale": In(unsigned(f0.scale.bits)),
        "mode": In(range(len(modes))),
        "valid": In(1), "block_end": In(1), "last": In(1),
    }


class _ScalableLanes:
    """What both scalable PEs share: the modes, the operand word, the common grid of the
    block sum and the lanes' datapath up to the lanes' sum (:meth:`_lane_sum`)."""

    modes = property(lambda self: self._modes)
    word = property(lambda self: max(md.word for md in self._modes),
                    doc="Bits of an operand word.")
    lsb_exp = property(lambda self: min(md.lsb_exp for md in self._modes),
                       doc="Weight exponent of the block sum's LSB (the finest mode's).")

    @property
    def block_sum_width(self):
        """Bits of the exact block sum on the common grid: the widest mode's."""
        return max(block_sum_width(md.fmt.element, md.fmt.element, md.fmt.block_size)
                   + md.lsb_exp - self.lsb_exp for md in self._modes)

    def _lane_sum(self, m):
        """The lanes' exact sum of one transfer on the common grid, ``(p, nonfinite)``
        (NaN/Inf codes count 0). Each mode's lanes are shifted and added on the mode's
        own product grid (``2**md.lsb_exp``: as narrow as its products); the sum moves
        onto the common grid by the mode's constant, which is wiring, not logic."""
        a_sig, b_sig = Signal(MUL_BITS), Signal(MUL_BITS)
        decoded = []
        for n, md in enumerate(self._modes):
            e = md.fmt.element
            decoded.append([(unpack(m, e, self.a[l * e.bits:(l + 1) * e.bits], f"ua{n}_{l}"),
                             unpack(m, e, self.b[l * e.bits:(l + 1) * e.bits], f"ub{n}_{l}"))
                            for l in range(md.lanes)])
        with m.Switch(self.mode):
            for n, md in enumerate(self._modes):
                with m.Case(n):
                    for l, (ua, ub) in enumerate(decoded[n]):
                        s = slice(l * md.slot, l * md.slot + len(ua.significand))
                        m.d.comb += [a_sig[s].eq(ua.significand), b_sig[s].eq(ub.significand)]
        prods = split_multiply(m, a_sig, b_sig)
        p = Signal(signed(self.block_sum_width), name="lane_sum")
        nf = Signal(name="lane_nonfinite")
        per_mode = []
        for n, md in enumerate(self._modes):
            e = md.fmt.element
            w = product_width(e, e)
            vals, nfs = [], []
            for l, (ua, ub) in enumerate(decoded[n]):
                lnf = Signal(name=f"nf{n}_{l}")
                mag = Signal(w, name=f"mag{n}_{l}")
                v = Signal(signed(w + 1), name=f"v{n}_{l}")
                m.d.comb += [lnf.eq(_nonfinite(ua) | _nonfinite(ub)),
                             mag.eq(Mux(lnf, 0, prods[md.slot][l]
                                        << (lsb_shift(ua) + lsb_shift(ub)))),
                             v.eq(Mux(ua.sign ^ ub.sign, -mag, mag))]
                vals.append(v)
                nfs.append(lnf)
            own = Signal(signed(w + 1 + (md.lanes - 1).bit_length()), name=f"lanes{n}")
            own_nf = Signal(name=f"lanes_nf{n}")
            m.d.comb += [own.eq(sum(vals)), own_nf.eq(Cat(*nfs).any())]
            per_mode.append((own, own_nf))
        with m.Switch(self.mode):
            for n, (md, (own, own_nf)) in enumerate(zip(self._modes, per_mode)):
                with m.Case(n):
                    m.d.comb += [p.eq(own << (md.lsb_exp - self.lsb_exp)), nf.eq(own_nf)]
        return p, nf


class ScalablePE(_ScalableLanes, AccumulatingPE):
    """Precision-scalable MX multiply-accumulate PE: per cycle ``lanes`` element pairs of
    the format pair chosen by ``mode`` (both operands of ``modes[mode]``): 1 for
    significands of 5-8 bits (MXINT8), 2 for 3-4 bits (MXFP8, MXFP6), 4 for 1-2 bits
    (MXFP4).

    The lanes' significands share one :data:`MUL_BITS` x :data:`MUL_BITS` multiplier
    (:func:`split_multiply`); each mode's lanes are shifted by their exponents and added
    on the mode's own product grid, the lanes' sum moves onto the finest product grid of
    all modes by a constant per mode (exact), and enters the exact block sum. At a block
    end the block sum goes onto the accumulator grid and into the ``fixed`` accumulator
    exactly as in :class:`~mxhw.systolic.pe.MXMacPE` (the same helpers), so the result is
    golden's in every mode. (The array's row-shared variant, without the accumulator:
    :class:`ScalableBlockSumPE`.)

    Parameters
    ----------
    modes : sequence of str or BlockFormat
        The formats the PE serves (:func:`scale_modes`); ``mode`` indexes them.
    acc : golden.arith.Accumulation
        ``fixed`` accumulation.
    pipeline : int
        Register stages 0..4 as :class:`~mxhw.systolic.pe.MXMacPE`'s (>= 1: the lanes'
        sum and the control; the rest in the block-to-accumulator path).

    Members
    -------
    a, b : In(unsigned(word))
        ``lanes`` element codes, lane 0 in the low bits; ``word`` the widest mode's.
    a_scale, b_scale : In(unsigned(scale bits))
    mode : In(range(len(modes)))
        The format pair of this transfer (constant within a tile).
    valid, block_end, last : In(1)
    result : Out(signed(acc.width)), special : Out(1)

    Latency ``1 + pipeline``; throughput one transfer (``lanes`` MACs) per cycle.
    Golden twin: :func:`mxhw.golden.arith.gemm` with ``fixed`` accumulation.

    Raises
    ------
    TypeError, ValueError
        A bad ``modes``, ``acc`` or ``pipeline`` (the message names it).
    """

    def __init__(self, modes, acc, pipeline=0):
        modes = scale_modes(modes)
        f0 = modes[0].fmt
        check_fixed_acc(acc)
        self._modes = modes
        super().__init__(f0, f0, acc, pipeline, scalable_members(modes))

    def elaborate(self, platform):
        m = Module()
        f0, acc, P = self._fmt_a, self._acc, self._pipeline
        p, nf = self._lane_sum(m)
        t = scale_code_sum(m, f0, f0, self.a_scale, self.b_scale)
        nan = Signal()
        m.d.comb += nan.eq(scale_nan(f0, self.a_scale) | scale_nan(f0, self.b_scale))
        valid, end, last, t, nan, p, nf = (
            stage(m, x, P >= 1, "m")
            for x in (self.valid, self.block_end, self.last, t, nan, p, nf))
        s_new, spec_new, advance = running_block_sum(m, self.block_sum_width, p, nf, end,
                                                     nan)
        with m.If(valid):
            advance(end, last)
        ev = Signal()
        m.d.comb += ev.eq(valid & end)
        accumulate_blocks(m, acc, s_new, t, scale_offset(f0, f0, acc, self.lsb_exp), ev,
                          last, spec_new, P - 1, self.result, self.special)
        return m


class ScalableBlockSumPE(_ScalableLanes, wiring.Component):
    """The multiplier half of :class:`ScalablePE`, as :class:`~mxhw.systolic.pe.
    MXBlockSumPE` is :class:`~mxhw.systolic.pe.MXMacPE`'s: exact block sums on the common
    grid (``2**lsb_exp``), handed on at each block end to a
    :class:`~mxhw.systolic.rowacc.RowAccumulator` shared by a row of the
    :class:`~mxhw.systolic.ScalableArray`, instead of being scaled and accumulated in the
    PE. The block sum is exact in every mode, so the row unit needs no mode.

    Parameters
    ----------
    modes : sequence of str or BlockFormat
        As :class:`ScalablePE`.
    pipeline : int
        Register stages of the PE and its row unit, 0..4: >= 1 registers the lanes' sum
        and the control (:class:`ScalablePE`'s stage 1); >= 2 also the ``block_*``
        outputs; the rest are the row unit's.

    Members
    -------
    a, b, a_scale, b_scale, mode, valid, block_end, last : In
        As :class:`ScalablePE`.
    block_valid : Out(1)
        A block ends in this cycle (:attr:`latency` cycles after its last transfer).
    block_sum : Out(signed(block_sum_width))
        The block's exact sum at ``2**lsb_exp`` (NaN/Inf codes count 0); 0 while
        ``block_valid`` is low, as are ``block_nonfinite`` and ``block_last``.
    block_a_scale, block_b_scale : Out(unsigned(scale bits))
        The block's scale codes (any value while ``block_valid`` is low).
    block_nonfinite, block_last : Out(1)
        An element code of the block is NaN/Inf; the block is the tile's last.

    Throughput one transfer per cycle, blocks and tiles back to back. Golden twin: the
    exact block dot products of :func:`mxhw.golden.arith.gemm`.

    Raises
    ------
    TypeError, ValueError
        A bad ``modes`` or ``pipeline``.
    """

    def __init__(self, modes, pipeline=0):
        modes = scale_modes(modes)
        check_pe_pipeline(pipeline)
        self._modes, self._pipeline = modes, pipeline
        sbits = modes[0].fmt.scale.bits
        super().__init__({
            **scalable_members(modes),
            "block_valid": Out(1),
            "block_sum": Out(signed(self.block_sum_width)),
            "block_a_scale": Out(unsigned(sbits)), "block_b_scale": Out(unsigned(sbits)),
            "block_nonfinite": Out(1), "block_last": Out(1),
        })

    pipeline = property(lambda self: self._pipeline)

    @property
    def latency(self):
        """Cycles from a block's last transfer to its ``block_valid``: ``min(pipeline, 1)``
        plus 1 from ``pipeline`` 2 up (the output register)."""
        return min(self._pipeline, 1) + (self._pipeline >= 2)

    def elaborate(self, platform):
        m = Module()
        P = self._pipeline
        p, pnf = self._lane_sum(m)
        valid, end, last, a_scale, b_scale, p, pnf = (
            stage(m, x, P >= 1, "m") for x in (self.valid, self.block_end, self.last,
                                                 self.a_scale, self.b_scale, p, pnf))
        block_sum_outputs(m, self, P, valid, end, last, a_scale, b_scale, lambda s: s + p, pnf,
                          names=("bsum", "bsum_new", "bnf", "bnf_new"))
        return m
