"""The output buffer of the output-stationary array: a finished tile's results leave as
rows on a stream, row 0 first (the de-skew). See ``docs/systolic.md``."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..lib.params import check_bool, check_int
from .grid import acc_width, check_acc, out_layout

__all__ = ["OutputBuffer", "OUT_GROUP", "OUT_STAGE"]

#: Columns of the output buffer that share one copy of its control (load and shift
#: enables): the enables' fan-out is at most this many results, whatever the array size.
OUT_GROUP = 1

#: Rows the output stage holds: three let one row per cycle flow with the buffer's shift
#: decided a cycle ahead, without ``o.ready``.
OUT_STAGE = 3


class OutputBuffer(wiring.Component):
    """The output-stationary array's result store and output stage: one register per
    result, rows shifting up by one per transfer into a three-row output queue whose head
    is ``o``.

    Parameters
    ----------
    rows, cols : int
        The array's shape, each >= 1.
    acc : golden.arith.Accumulation
        The accumulation (``data`` width: :func:`~mxhw.systolic.grid.acc_width`).
    shared : bool
        Row-shared accumulation: the buffer's rows are the row units' result rings, filled
        in place (``fin`` ports), and hold the one finished tile; else it loads a whole
        tile from the PEs' result registers (``result`` ports) once it is empty.

    Members
    -------
    tile_in : In(1)
        The array took a tile's last transfer (sets :attr:`busy`).
    busy : Out(1)
        A tile's last transfer was taken and its results have not yet moved into the
        buffer (row-shared: not yet out of it): the array holds off the next last transfer.
    done : In(1).array(rows)
        Per row (equal copies): the PEs hold a finished tile (row-shared: the row units
        finish it).
    result, special : In(signed(width)).array(rows, cols), In(1).array(rows, cols)
        (Per-PE accumulation.) The PEs' results, held until the next tile is done.
    fin, fin_special, fin_valid_next : In(...).array(rows)
        (Row-shared.) Each row unit's finished results, one per cycle in column order
        (:class:`~mxhw.systolic.rowacc.RowAccumulator` without ``result_ring``).
    o : Out(stream.Signature(out_layout))
        ``rows`` transfers per tile.

    Latency: the first row is valid on ``o`` 1 cycle after the buffer holds it; throughput
    one row per cycle while ``o`` is ready.

    Raises
    ------
    TypeError, ValueError
        A parameter of the wrong type or out of range (the message names it).
    """

    def __init__(self, rows, cols, acc, shared):
        check_int("rows", rows, 1)
        check_int("cols", cols, 1)
        check_acc(acc)
        check_bool("shared", shared)
        self._rows, self._cols, self._acc, self._shared = rows, cols, acc, shared
        W = acc_width(acc)
        ports = ({"fin": In(signed(W)).array(rows), "fin_special": In(1).array(rows),
                  "fin_valid_next": In(1).array(rows)} if shared else
                 {"result": In(signed(W)).array(rows, cols),
                  "special": In(1).array(rows, cols)})
        super().__init__({
            "tile_in": In(1),
            "busy": Out(1),
            "done": In(1).array(rows),
            **ports,
            "o": Out(stream.Signature(out_layout(acc, cols))),
        })

    def _output_stage(self, m, od, osp, adv, groups):
        """The output stage (see the comment below); returns ``(cnt_o, wptr, we)``: each
        column group's row count, write pointer and write flags, which the buffer's shift
        control sets a cycle ahead."""
        C, W, G = self._cols, acc_width(self._acc), len(groups)
        # ---- the output stage: a queue of OUT_STAGE rows (``o.payload`` is its head,
        # selected by a one-hot read pointer), copied per column group like the buffer's
        # control. ``o.ready`` reaches only each group's read pointer, count and valid flag
        # (a handful of flip-flops per group). The buffer's rows shift on ``adv``, set a
        # cycle ahead with room guaranteed whatever ``o.ready`` does: ``cnt + adv <=
        # OUT_STAGE - 1`` (the stage holds at most that many rows after this cycle), from
        # flip-flops alone. Three entries keep one row per cycle flowing (the count stays
        # at 1 while ``o`` takes a row every cycle).
        S = OUT_STAGE
        st = [[Signal(signed(W), name=f"st{e}_{j}", reset_less=True) for j in range(C)]
              for e in range(S)]
        sts = [[Signal(name=f"st{e}s_{j}", reset_less=True) for j in range(C)]
               for e in range(S)]
        vld = [Signal(name=f"ovalid{g}") for g in range(G)]
        cnt_o = [Signal(range(S + 1), name=f"ocnt{g}") for g in range(G)]
        rptr = [Signal(S, init=1, name=f"rptr{g}") for g in range(G)]
        wptr = [Signal(S, init=1, name=f"wptr{g}") for g in range(G)]
        we = [[Signal(name=f"we{e}_{g}") for e in range(S)] for g in range(G)]
        m.d.comb += self.o.valid.eq(vld[0])
        for g, cols in enumerate(groups):
            a = adv[0][g]
            pop = Signal(name=f"pop{g}")
            m.d.comb += pop.eq(vld[g] & self.o.ready)
            n_next = cnt_o[g] + a - pop
            m.d.sync += [cnt_o[g].eq(n_next), vld[g].eq(n_next != 0)]
            with m.If(pop):
                m.d.sync += rptr[g].eq(rptr[g].rotate_left(1))
            for j in cols:
                sel_d, sel_s = st[S - 1][j], sts[S - 1][j]
                for e in reversed(range(S - 1)):
                    sel_d = Mux(rptr[g][e], st[e][j], sel_d)
                    sel_s = Mux(rptr[g][e], sts[e][j], sel_s)
                m.d.comb += [self.o.payload.data[j].eq(sel_d),
                             self.o.payload.special[j].eq(sel_s)]
                # entry e takes the head in the cycle its write flag (a flip-flop set a
                # cycle ahead: ``adv`` next and the write pointer then) is high
                for e in range(S):
                    with m.If(we[g][e]):
                        m.d.sync += [st[e][j].eq(od[0][j]), sts[e][j].eq(osp[0][j])]
        return cnt_o, wptr, we

    def elaborate(self, platform):
        m = Module()
        R, C, W, shared = self._rows, self._cols, acc_width(self._acc), self._shared
        inflight = Signal()          # a last transfer accepted, its results not yet moved
                                     # (row-shared: not yet out of the buffer)
        m.d.comb += self.busy.eq(inflight)
        results = None if shared else [[(self.result[i][j], self.special[i][j])
                                        for j in range(C)] for i in range(R)]

        # Output buffer: one register per result, rows shifting up by one per transfer, so
        # row 0 is the head (no wide row multiplexer; cheap in logic and in simulation).
        # Row-shared, its rows are also the row units' result rings (filled in place).
        # Its control is replicated per row and per group of OUT_GROUP columns (flags
        # ``hf``: the PE results hold a finished tile; ``ov``: this buffer row holds a result
        # row; ``load``; ``adv``: the rows shift up). Every copy keeps its own state (each
        # one's next value depends on itself), so synthesis keeps them apart, and each
        # enable reaches at most OUT_GROUP results instead of all R x C: the enable's
        # fan-out no longer grows with the array.
        #
        # The head moves into a three-row output stage (below). The rows shift on
        # ``adv``, a flip-flop set a cycle ahead from flip-flops alone (no ``o.ready``):
        # the row will hold a result, and the stage will have room whatever ``o.ready``
        # does next. Each row's copy of ``adv`` is made from its own flags, the next row's
        # and the stage's count: no flag of row 0 reaches the other rows.
        # (data registers without reset: the flags say what they hold, and the domain
        # reset's fan-out stays off them)
        od = [[Signal(signed(W), name=f"od{i}_{j}", reset_less=True) for j in range(C)]
              for i in range(R)]
        osp = [[Signal(name=f"os{i}_{j}", reset_less=True) for j in range(C)] for i in range(R)]
        groups = [range(g, min(g + OUT_GROUP, C)) for g in range(0, C, OUT_GROUP)]
        G = len(groups)
        # (``hf``: per-PE accumulation only; the row-shared buffer holds the one tile)
        hf = None if shared else [[Signal(name=f"hf{i}_{g}") for g in range(G)]
                                  for i in range(R)]
        ov = [[Signal(name=f"ov{i}_{g}") for g in range(G)] for i in range(R)]
        adv = [[Signal(name=f"adv{i}_{g}") for g in range(G)] for i in range(R)]
        # (row-shared, every group's ``load`` of a row is the same register, kept apart:
        # merged, one flip-flop would reach every column's flags)
        load = [[Signal(name=f"load{i}_{g}", attrs={"keep": 1} if shared else {})
                 for g in range(G)] for i in range(R)]
        with m.If(self.tile_in):
            m.d.sync += inflight.eq(1)

        cnt_o, wptr, we = self._output_stage(m, od, osp, adv, groups)
        S = OUT_STAGE

        def shift_row(i, g, cols, en_next, sel_next, picks):
            # buffer row i's registers of group g: enable and select flip-flops set a cycle
            # ahead (the select a copy of its own, ``keep``), each register taking
            # ``picks[n][0]`` when selected, else ``picks[n][1]`` (data, special pairs)
            en = Signal(name=f"oden{i}_{g}")
            sel = Signal(name=f"odsel{i}_{g}", attrs={"keep": 1})
            m.d.sync += [en.eq(en_next), sel.eq(sel_next)]
            with m.If(en):
                for j, (a_, b_) in zip(cols, picks):
                    m.d.sync += [od[i][j].eq(Mux(sel, a_[0], b_[0])),
                                 osp[i][j].eq(Mux(sel, a_[1], b_[1]))]

        for g, cols in enumerate(groups):
            for i in range(R):
                # The tile moves in once the buffer is empty (row 0 moved out: all rows
                # moved out). ``load`` is a flip-flop (its fan-out is the group's result
                # registers), set one cycle ahead from flip-flops alone: the finished tile
                # (``hf``, or ``corner_done`` arriving) and the buffer empty now and not
                # loading now (it stays empty then: only a load fills it), so a tile loads
                # at most one cycle later than the buffer allows.
                # Row-shared: the buffer's rows are the row units' result rings, filled in
                # place, so ``load`` only marks the rows full (one cycle after the tile is
                # done, as above); the buffer is empty then (``inflight`` holds the next
                # tile's last transfer off until it is).
                ld, ad = load[i][g], adv[i][g]
                if shared:
                    ld_next = self.done[i]
                else:
                    ld_next = ~ld & (hf[i][g] | self.done[i]) & ~ov[0][g]
                m.d.sync += ld.eq(ld_next)
                # ``adv`` next: this row holds a row next cycle (then so does the head:
                # valid rows are a prefix) and the stage will have room. Each row's copy
                # sees its own flags and the row below's: rows that hold results shift
                # together (a row that holds none keeps still, its data read by no one);
                # the stage's count is the one signal every row's copy shares.
                ovi_next = Mux(ld, 1, Mux(ad, ov[i + 1][g] if i < R - 1 else 0, ov[i][g]))
                ad_next = ovi_next & (cnt_o[g] + ad <= S - 1)
                m.d.sync += ad.eq(ad_next)
                if i == 0:
                    # the stage's write flags: entry e takes the head next cycle
                    wp = Mux(ad, wptr[g].rotate_left(1), wptr[g])
                    m.d.sync += wptr[g].eq(wp)
                    m.d.sync += [we[g][e].eq(ad_next & wp[e]) for e in range(S)]
                if not shared:
                    with m.If(self.done[i]):
                        m.d.sync += hf[i][g].eq(1)
                with m.If(ld):
                    m.d.sync += ov[i][g].eq(1)
                    if not shared:
                        m.d.sync += hf[i][g].eq(0)
                        if i == 0 and g == 0:
                            m.d.sync += inflight.eq(0)
                # the rows shift up: valid rows are a prefix, so ``adv`` (the head holds a
                # row) with row i holding one moves row i + 1 into it
                with m.Elif(ad & ov[i][g]):
                    m.d.sync += ov[i][g].eq(ov[i + 1][g] if i < R - 1 else 0)
                    if i == 0 and g == 0 and shared:
                        # the buffer's last row leaves: the next tile's results may come
                        with m.If(~ov[1][g] if R > 1 else 1):
                            m.d.sync += inflight.eq(0)
                # The row's data registers load a tile (``ld``; row-shared: shift in the
                # row unit's results as its ring) or take the row below whenever the rows
                # shift (``ad``; a row that is or becomes empty takes data no one reads:
                # the flags say what a row holds). That enable, ``ld | ad``, is a flip-flop
                # of its own set a cycle ahead from the same flags' next values, so the
                # group's data registers see a flip-flop's output on their enable and
                # ``ld`` on their multiplexer's select: no logic between the flags and the
                # fan-out.
                # The multiplexers' select is a copy of ``ld`` (row-shared: of ``adv``) of
                # its own (``keep``): the flag itself is pulled towards the buffer's
                # control (row 0's flags), the copy only towards the row's data registers.
                if shared:
                    fin, fin_sp = self.fin[i], self.fin_special[i]
                    fin_next = self.fin_valid_next[i]
                    # ring: column j takes column j + 1, the last column the new result
                    ring = [(od[i][j + 1], osp[i][j + 1]) if j < C - 1 else (fin, fin_sp)
                            for j in cols]
                    if i < R - 1:
                        below = [(od[i + 1][j], osp[i + 1][j]) for j in cols]
                        shift_row(i, g, cols, fin_next | ad_next, ad_next, list(zip(below, ring)))
                    else:
                        # (equal for every group, kept apart as ``load``)
                        en = Signal(name=f"oden{i}_{g}", attrs={"keep": 1})
                        m.d.sync += en.eq(fin_next)
                        with m.If(en):
                            for j, (d_, s_) in zip(cols, ring):
                                m.d.sync += [od[i][j].eq(d_), osp[i][j].eq(s_)]
                elif i < R - 1:
                    shift_row(i, g, cols, ld_next | ad_next, ld_next,
                              [(results[i][j], (od[i + 1][j], osp[i + 1][j])) for j in cols])
                else:
                    with m.If(ld):
                        m.d.sync += [od[i][j].eq(results[i][j][0]) for j in cols]
                        m.d.sync += [osp[i][j].eq(results[i][j][1]) for j in cols]
        return m
