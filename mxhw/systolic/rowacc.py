"""One block-to-accumulator datapath per row of the output-stationary array
(:class:`RowAccumulator`): with ``cols <= k`` a row's block ends never collide and come in
column order, so one unit serves the row. The argument and the design: ``docs/systolic.md``
(*Row-shared accumulation*)."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .. import golden
from ..formats import operand_element
from ..lib.params import check_bool, check_int
from ..lib.signals import delay_line, one_hot_select, stage
from .grid import (GE_LO, accumulate, block_sum_width, block_to_grid, check_pe_pipeline,
                   clamp_acc, ge_from_parts, ge_parts, grid_shift_from_sum, scale_code_sum,
                   scale_nan, scale_offset, scale_sum_shape)

__all__ = ["RowAccumulator", "row_extra_stages"]

#: Result flip-flops' columns per copy of the result ring's shift enable.
RES_GROUP = 2

#: Columns of the accumulator ring that share one copy of its shift enable.
RING_GROUP = 1

#: Low bits of the grid shifts (left and right) applied before the first register of
#: :func:`~mxhw.systolic.grid.block_to_grid` from ``pipeline`` 3 up.
SHIFT_SPLIT = 2


def row_extra_stages(pipeline):
    """Cycles the row-shared design adds to :class:`~mxhw.systolic.pe.MXMacPE`'s latency
    ``1 + pipeline``: 3 from ``pipeline`` 2 up (the PE's output register and the row
    unit's selection register, which keep the row-wide multiplexer's wires apart from
    logic, and the result register ``fin`` before the result's clamp), else 1 (``fin``)."""
    return 3 if pipeline >= 2 else 1


class RowAccumulator(wiring.Component):
    """The shared block-end datapath of one row of ``cols``
    :class:`~mxhw.systolic.pe.MXBlockSumPE` (see the module docstring): golden ``fixed``
    accumulation of the row's block sums, one block per cycle.

    At a block end (one ``block_valid[j]`` high) the block's exact sum ``S`` from column
    ``j``, with the sum of its two scale codes (``a_scale`` and ``b_scale``, given in the
    same cycle), goes onto the accumulator grid
    ``2**-frac_bits`` (golden's ``round_shift(S, -(E + F), rounding)``, clamped,
    :func:`~mxhw.systolic.grid.block_to_grid`) and into column ``j``'s ``width``-bit
    accumulator with saturation or wrap-around (:func:`~mxhw.systolic.grid.accumulate`); on the tile's last block the sum
    moves to ``result[j]`` and the accumulator restarts at zero. A block flagged
    ``block_nonfinite`` (NaN/Inf element codes) or with a NaN scale code makes the tile's
    result ``special`` (golden: NaN).

    **Order.** The accumulators are a ring advanced once per block end, so the block
    ends must come in column order ``0, 1, .., cols - 1, 0, ..`` (each column's blocks in
    K order), at most one per cycle; idle cycles may fall anywhere. The output-stationary
    array guarantees this when ``cols <= k`` (module docstring).

    Register stages: from ``pipeline`` 2 up, the selection (the multiplexer's outputs and
    the scale codes' sum and NaN flag); ``max(pipeline - 1, 0)`` inside
    :func:`~mxhw.systolic.grid.block_to_grid` (1: the selected sum and its shift, from the
    scale sum by :func:`~mxhw.systolic.grid.grid_shift_from_sum`, and from ``pipeline`` 3
    up the sum already shifted left and right by the shifts' two low bits; 2: the
    shifted sum; 3: the rounded and clamped value); then the accumulator; then the
    tile's final sum register before ``result``. Saturating with ``cols`` >= 2, a sum
    enters the accumulator ring unclamped and is clamped on its next move (the ring
    holds a column's sum for ``cols`` block ends), so the loop through the accumulator
    holds only the adder and the restart multiplexer. Latency :attr:`latency` cycles
    from ``block_valid`` to ``result``; throughput one block end per cycle.

    Parameters
    ----------
    fmt_a, fmt_b : BlockFormat
        Operand block formats of the row's PEs (validated by the array).
    acc : golden.arith.Accumulation
        ``fixed`` accumulation.
    cols : int
        PEs in the row, >= 1.
    pipeline : int
        The PEs' ``pipeline`` (0..4); this unit has ``max(pipeline - 1, 0)`` stages.
    result_ring : bool
        True (the default): the unit keeps the tile's results in its ring of results
        (``result``, ``special``). False: it hands each result on as it is finished
        (``fin``, ``fin_special``, ``fin_valid``, ``fin_valid_next``), for a store of the
        user's (the array's output buffer, which fills each row as this ring would).
    idle_zero : bool
        False (the default): ``block_sum``, ``block_nonfinite`` and ``block_last`` of a
        column whose ``block_valid`` is low may hold anything; the unit selects the
        valid column by an AND-OR multiplexer. True: they are 0 while ``block_valid`` is
        low (as :class:`~mxhw.systolic.pe.MXBlockSumPE` drives them), and the unit ORs
        the columns: no AND with the valids (for 16 columns two LUT levels instead of
        four, and the valids reach only the block-end flag). A nonzero value on an idle
        column is then ORed into the block that ends: the user's contract.
    presum : bool
        False (the default): the unit takes the block's two scale codes (``a_scale``,
        ``b_scale``) and adds them. True: it takes their sum and NaN flag instead
        (``scale_sum``, ``scale_nan``), which the user registers from the codes' previous
        register stage, so no adder stands between flip-flops and the selection register.
    grid : (int, int) or None
        None (the default): the block sums are ``fmt_a`` x ``fmt_b`` products' exact sums
        (their grid and width). ``(lsb_exp, width)``: ``block_sum`` has ``width`` bits at
        ``2**lsb_exp`` (the :class:`~mxhw.systolic.ScalableArray`'s common grid).

    Members
    -------
    block_valid, block_sum, block_nonfinite, block_last : In(...).array(cols)
        Column ``j``'s :class:`~mxhw.systolic.pe.MXBlockSumPE` ports of the same names.
    a_scale, b_scale : In(unsigned(fmt_a's / fmt_b's scale bits))
        The scale codes of the block that ends in this cycle, whichever column (read only
        then). The array derives them from its edge, not from the PEs (see
        :class:`~mxhw.systolic.SystolicArray`). (Without ``presum``.)
    scale_sum : In(unsigned(:func:`~mxhw.systolic.grid.scale_sum_shape`)), scale_nan : In(1)
        (``presum`` only.) ``a_scale + b_scale`` of the block that ends in this cycle, and
        whether either code is its format's NaN code.
    result : Out(signed(acc.width)).array(cols), special : Out(1).array(cols)
        Registered; column ``j``'s tile result (``result * 2**-frac_bits``) once the
        row's last block end of the tile has gone through (column ``cols - 1``'s), held
        until the next tile's first last-block end. (``result_ring`` only.)
    fin : Out(signed(acc.width)) or Out(signed(acc.width + 2)), fin_special : Out(1)
        (Without ``result_ring``.) Registered; a tile's result of one column, valid while
        ``fin_valid`` is high: the row's results one per last-block end, in column order,
        each ``latency - 1`` cycles after its ``block_valid`` (in the cycle the ring would
        take it). When :attr:`fin_unclamped` (saturating, ``cols >= 2``) it is the sum
        before the clamp, ``acc.width + 2`` bits: the result is
        ``mxhw.systolic.grid.clamp_acc(m, acc, fin)``.
    fin_valid, fin_valid_next : Out(1)
        (Without ``result_ring``.) ``fin`` holds a result: in this cycle, and in the next
        (``fin_valid`` a cycle ahead: a user's store can register its enables from it).

    Golden twin: :func:`mxhw.golden.arith.gemm` with ``fixed`` accumulation (one row of
    output elements), given the exact block sums.

    Raises
    ------
    TypeError, ValueError
        ``acc`` not a ``fixed`` :class:`golden.arith.Accumulation`; ``cols`` not a
        positive integer; ``pipeline`` not an integer in 0..4; ``result_ring``,
        ``idle_zero`` or ``presum`` not a bool.
    """

    def __init__(self, fmt_a, fmt_b, acc, cols, pipeline=0, result_ring=True,
                 idle_zero=False, presum=False, grid=None):
        if not isinstance(acc, golden.arith.Accumulation):
            raise TypeError(f"acc must be a golden.arith.Accumulation, not {acc!r}")
        if acc.mode != "fixed":
            raise ValueError(f"acc: the row accumulator implements fixed-point accumulation "
                             f"only, not {acc.mode!r}")
        check_int("cols", cols, 1)
        check_pe_pipeline(pipeline)
        check_bool("result_ring", result_ring)
        check_bool("idle_zero", idle_zero)
        check_bool("presum", presum)
        self._ring, self._idle_zero, self._presum = result_ring, idle_zero, presum
        self._fmt_a, self._fmt_b, self._acc = fmt_a, fmt_b, acc
        self._cols, self._pipeline = cols, pipeline
        ea, eb = operand_element(fmt_a), operand_element(fmt_b)
        self._lsb_exp = ea.lsb_exp + eb.lsb_exp
        sw = block_sum_width(ea, eb, fmt_a.block_size)
        if grid is not None:        # block sums of another grid (the scalable array's)
            if not (isinstance(grid, tuple) and len(grid) == 2
                    and all(isinstance(g, int) for g in grid) and grid[1] >= 1):
                raise TypeError(f"grid must be None or a pair (lsb_exp, width) of integers "
                                f"with width >= 1, not {grid!r}")
            self._lsb_exp, sw = grid
        super().__init__({
            "block_valid": In(1).array(cols),
            "block_sum": In(signed(sw)).array(cols),
            "block_nonfinite": In(1).array(cols),
            "block_last": In(1).array(cols),
            **({"scale_sum": In(scale_sum_shape(fmt_a, fmt_b)), "scale_nan": In(1)}
               if presum else
               {"a_scale": In(unsigned(fmt_a.scale.bits)),
                "b_scale": In(unsigned(fmt_b.scale.bits))}),
            **({"result": Out(signed(acc.width)).array(cols),
                "special": Out(1).array(cols)} if result_ring else
               {"fin": Out(signed(acc.width + 2 * self.fin_unclamped)), "fin_special": Out(1),
                "fin_valid": Out(1), "fin_valid_next": Out(1)}),
        })

    cols = property(lambda self: self._cols)
    pipeline = property(lambda self: self._pipeline)
    result_ring = property(lambda self: self._ring)
    idle_zero = property(lambda self: self._idle_zero)
    presum = property(lambda self: self._presum)

    @property
    def fin_unclamped(self):
        """``fin`` is the tile's sum before the accumulator's clamp (``acc.width + 2``
        bits): saturating with ``cols >= 2`` (the clamp then follows the register)."""
        return self._acc.overflow == "saturate" and self._cols >= 2

    @property
    def latency(self):
        """Cycles from ``block_valid`` of a tile's last block to its ``result``:
        ``2 + max(pipeline - 1, 0)``, plus 1 from ``pipeline`` 2 up (the selection
        register)."""
        return 2 + max(self._pipeline - 1, 0) + (self._pipeline >= 2)

    def elaborate(self, platform):
        m = Module()
        fa, fb, acc, C = self._fmt_a, self._fmt_b, self._acc, self._cols
        valid = list(self.block_valid)

        # ---- select the column whose block ends (one-hot valids; with idle_zero an OR)
        sel = {}
        for name in ("sum", "nonfinite", "last"):
            ports = getattr(self, f"block_{name}")
            sig, stmt = one_hot_select(valid, list(ports), ports[0].shape(), f"sel_{name}",
                                       self._idle_zero)
            m.d.comb += stmt
            sel[name] = sig
        ev = Signal()
        m.d.comb += ev.eq(Cat(*valid).any())
        # ---- the block's scale codes (given beside the block end, not selected): their
        # sum and NaN codes, once per row instead of once per PE
        if self._presum:
            sel_sum, sc_nan = self.scale_sum, self.scale_nan
        else:
            sel_sum = scale_code_sum(m, fa, fb, self.a_scale, self.b_scale, "sel_scale_sum")
            sc_nan = scale_nan(fa, self.a_scale) | scale_nan(fb, self.b_scale)
        sel_nf = Signal(name="sel_nonfinite_all")
        m.d.comb += sel_nf.eq(sel["nonfinite"] | sc_nan)
        sel["scale_sum"], sel["nonfinite"] = sel_sum, sel_nf
        off = scale_offset(fa, fb, acc, self._lsb_exp)
        ge_at = None            # the overflow thermometer's tests: grid_shift_from_sum's
        if self._pipeline >= 2:
            # the selection register: the row-wide wires end at flip-flops
            q = {}
            for name, sig in sel.items():
                q[name] = Signal.like(sig, name=f"sel_{name}_q",
                                      attrs={"keep": 1} if name == "scale_sum" else {})
                m.d.sync += q[name].eq(sig)
            ev_q = Signal()
            m.d.sync += ev_q.eq(ev)
            sel, ev = q, ev_q
            if acc.overflow == "saturate":
                # a second register of the selected scale sum for the overflow thermometer
                # alone: half the fan-out each. Both are ``keep`` (kept apart by
                # mxhw.toolchain.KEEP_FLOPS; a flow without it merges them: same logic, only
                # the fan-out differs).
                t_ge = Signal.like(sel["scale_sum"], name="sel_scale_sum_ge_q",
                                   attrs={"keep": 1})
                m.d.sync += t_ge.eq(sel_sum)
                sel["scale_sum_ge"] = t_ge
                if self._presum:
                    # the sum comes from a register (``presum``): the thermometer's tests
                    # of its high bits are made before the selection register, the rest
                    # after it (:func:`~mxhw.systolic.grid.ge_parts`)
                    parts = {}
                    for h, pair in ge_parts(acc, len(sel["sum"]), sel_sum, off).items():
                        parts[h] = tuple(stage(m, x, True, f"sel_ge{h}_{n}")
                                         for x, n in zip(pair, ("gt", "eq")))
                    ge_at = ge_from_parts(parts, t_ge[:GE_LO], len(t_ge))
        # the shift from the scale codes' sum: range tests against constants (as logic, no
        # carry chain; from pipeline 2 up the sum comes from the selection register), then
        # multiplexers
        # From ``pipeline`` 3 up (a register after the shifter) both shifts are split:
        # by their 2 low bits before the first register, the rest after it
        shift = grid_shift_from_sum(m, acc, len(sel["sum"]), sel["scale_sum"], off,
                                    sel.get("scale_sum_ge"),
                                    split=SHIFT_SPLIT if self._pipeline >= 3 else 0,
                                    ge_at=ge_at)

        # ---- onto the accumulator grid (its first register stage registers the selection)
        # ``ev & last`` goes down the pipeline as its own flag: the result ring's shift
        # enable is then a flip-flop's output, with no logic in front of its fan-out
        ev_last_in = Signal()
        m.d.comb += ev_last_in.eq(ev & sel["last"])
        stages = max(self._pipeline - 1, 0)
        # The ring's shift enable: ``ev`` as it leaves the pipeline below, one flip-flop
        # per RING_GROUP columns (``keep``: equal registers, kept apart), so that no
        # flip-flop drives the whole row's accumulators (16 x 32 in a 16x16 array: a 13 ns
        # route from one)
        ev_pre = delay_line(m, ev, max(stages - 1, 0), "ring_ev_pre")
        ev_ring = [delay_line(m, ev_pre, min(stages, 1), f"ring_ev{g}", keep=True)
                   for g in range(-(-C // RING_GROUP))]
        v, ev, last, spec_blk, ev_last = block_to_grid(
            m, acc, sel["sum"], shift, [ev, sel["last"], sel["nonfinite"], ev_last_in],
            stages)

        # ---- the ring of accumulators: the head is the column whose block ends next.
        # Saturating with two or more columns, the sum enters the ring's tail unclamped
        # (width + 2 bits) and is clamped as it moves on, at the next block end: the loop
        # through the head is then an adder and the restart multiplexer, and the clamp lies
        # between two registers. The tile's last sum goes to ``result`` through a register
        # (``fin``) and the same clamp one cycle later.
        W = acc.width
        lazy = self.fin_unclamped          # saturating with 2+ columns: clamp as it moves on
        regs = [Signal(signed(W), name=f"acc{j}") for j in range(C)]
        if lazy:
            regs[C - 1] = Signal(signed(W + 2), name=f"acc{C - 1}_raw")
            fin_in = Signal(signed(W + 2), name="sum_raw")
            m.d.comb += fin_in.eq(regs[0] + v)
            tail = clamp_acc(m, acc, regs[C - 1], "tail")
        else:
            fin_in = accumulate(m, acc, regs[0], v)
        specs = [Signal(name=f"spec{j}") for j in range(C)]
        spec_new = Signal()
        m.d.comb += spec_new.eq(specs[0] | spec_blk)
        for g, g0 in enumerate(range(0, C, RING_GROUP)):
            with m.If(ev_ring[g]):
                for j in range(g0, min(g0 + RING_GROUP, C)):
                    if j < C - 1:
                        m.d.sync += [regs[j].eq(tail if lazy and j == C - 2 else regs[j + 1]),
                                     specs[j].eq(specs[j + 1])]
                    else:
                        m.d.sync += [regs[j].eq(Mux(last, 0, fin_in)),
                                     specs[j].eq(~last & spec_new)]
        fin = Signal.like(fin_in, name="fin")
        fin_sp = Signal()
        m.d.sync += [fin.eq(fin_in), fin_sp.eq(spec_new)]
        if not self._ring:
            # every output a flip-flop's (the clamp, if any, is the user's: see
            # ``fin_unclamped``), so a hierarchical simulation model needs no extra delta
            # cycle for a path into the user's store
            fin_v = Signal(name="fin_v")
            m.d.sync += fin_v.eq(ev_last)
            m.d.comb += [self.fin.eq(fin), self.fin_special.eq(fin_sp),
                         self.fin_valid.eq(fin_v), self.fin_valid_next.eq(ev_last)]
            return m
        fin_c = clamp_acc(m, acc, fin, "fin_clamped") if lazy else fin
        # The result ring shifts one cycle after ``ev & last``. Its enable is one flip-flop
        # per group of RES_GROUP columns, so that none drives a whole row of results (in
        # an 8x8 array one enable for 8 x 33 flip-flops took 8.6 ns of routing). The
        # copies hold the same value, each from a different AND of the equal flags ``ev &
        # last``, ``ev_last``: different logic, so synthesis does not merge them back.
        sources = [ev_last, ev & last, ev_last & ev, ev_last & last, ev_last & ev & last]
        res, res_sp = list(self.result), list(self.special)
        for g, g0 in enumerate(range(0, C, RES_GROUP)):
            fin_v = Signal(name=f"fin_v{g}")
            m.d.sync += fin_v.eq(sources[g % len(sources)])
            with m.If(fin_v):
                for j in range(g0, min(g0 + RES_GROUP, C)):
                    if j < C - 1:
                        m.d.sync += [res[j].eq(res[j + 1]), res_sp[j].eq(res_sp[j + 1])]
                    else:
                        m.d.sync += [res[j].eq(fin_c), res_sp[j].eq(fin_sp)]
        return m
