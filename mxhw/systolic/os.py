"""The output-stationary dataflow of :class:`~mxhw.systolic.SystolicArray`: PE ``(i, j)``
accumulates ``C[i, j]``; operands enter skewed from the left (A) and the top (B); the
results leave through an :class:`~mxhw.systolic.outbuf.OutputBuffer`. See
``docs/systolic.md``."""

from __future__ import annotations

import functools

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..formats import operand_element
from ..lib.signals import delay_line, one_hot_select
from ..lib.params import check_bool, check_int
from .bitserial import BitSerialMXMacPE
from .grid import (array_formats, check_acc, check_serial_format, clamp_acc, fixed_form,
                   mode_port, out_layout, scale_nan)
from .outbuf import OutputBuffer
from .operands import edge_code, index_fields
from .pegrid import pe_grid
from .pe import MXBlockSumPE, MXMacPE, splits_product
from .rowacc import RowAccumulator, row_extra_stages

__all__ = ["OutputStationaryCore", "os_in_layout", "is_bitserial", "is_bitparallel",
           "why_not_shared"]


def os_in_layout(fmt_a, fmt_b, rows, cols):
    """Layout of an output-stationary transfer (see :class:`~mxhw.systolic.SystolicArray`)."""
    return data.StructLayout({
        "a": data.ArrayLayout(unsigned(fmt_a.element.bits), rows),
        "a_scale": data.ArrayLayout(unsigned(fmt_a.scale.bits), rows),
        **({"a_mode": data.ArrayLayout(mode_port(fmt_a), rows)} if fmt_a.mode_bits
           else {}),
        **index_fields(fmt_a, "a_index", rows),
        "b": data.ArrayLayout(unsigned(fmt_b.element.bits), cols),
        "b_scale": data.ArrayLayout(unsigned(fmt_b.scale.bits), cols),
        **({"b_mode": data.ArrayLayout(mode_port(fmt_b), cols)} if fmt_b.mode_bits
           else {}),
        **index_fields(fmt_b, "b_index", cols),
        "last": 1,
    })


def is_bitserial(pe):
    """``pe`` builds :class:`BitSerialMXMacPE` (the class, or a ``functools.partial`` of it)."""
    return pe is BitSerialMXMacPE or (isinstance(pe, functools.partial)
                                      and pe.func is BitSerialMXMacPE)


def is_bitparallel(pe):
    """``pe`` is a ``functools.partial`` of :class:`MXMacPE` (the array's default PE)."""
    return isinstance(pe, functools.partial) and pe.func is MXMacPE


def why_not_shared(acc, pe, cols, k, fmts=()):
    """Why the row-shared accumulators cannot serve an output-stationary array with this
    accumulation, PE factory and ``cols`` (``k`` the block size; ``fmts`` the operand
    formats): a phrase for the error of a required ``shared``, or None."""
    if any(f.scale.kind != "pow2" for f in fmts):
        return "power-of-two block scales (NVFP4's E4M3 scales are applied per PE)"
    if acc.mode != "fixed":
        return f"fixed-point accumulation, not {acc.mode!r}"
    if not is_bitparallel(pe):
        return ("the bit-parallel PE (pe=None or 'bitparallel'), not a bit-serial PE or "
                "a PE factory")
    if cols > k:
        return (f"cols <= k (at most one block end per row and cycle), not cols={cols} "
                f"with k={k}")
    return None


class OutputStationaryCore(wiring.Component):
    """The output-stationary array (:class:`~mxhw.systolic.SystolicArray` with
    ``dataflow="output_stationary"``, which documents the ports): the edge registers and
    block counter, the skewed PE grid, the row units (``shared``) and the output buffer.

    Parameters
    ----------
    rows, cols : int
        Array shape, >= 1.
    fmt_a, fmt_b : str or BlockFormat
        Operand block formats (:func:`~mxhw.systolic.grid.array_block_format`), equal
        block sizes.
    acc : golden.arith.Accumulation
        ``fixed`` or ``fp32`` (bit-serial PE: ``fixed``).
    pe : callable
        The PE factory ``pe(fmt_a, fmt_b, acc)``: a ``functools.partial`` of
        :class:`~mxhw.systolic.pe.MXMacPE` (required when ``shared``: its ``pipeline`` is
        split between the :class:`~mxhw.systolic.pe.MXBlockSumPE` and its row's
        :class:`~mxhw.systolic.rowacc.RowAccumulator`), :class:`BitSerialMXMacPE` (or a
        partial of it), or another factory with :class:`MXMacPE`'s ports.
    shared : bool
        Row-shared accumulation (:func:`why_not_shared` says when it cannot apply).

    Members
    -------
    i : In(stream.Signature(os_in_layout(...)))
    o : Out(stream.Signature(out_layout(acc, cols)))

    Latency ``rows + cols + pe_latency + serial``; throughput one transfer per cycle
    (bit-serial: per ``serial`` cycles). Golden twin: :func:`mxhw.golden.arith.gemm`.

    Raises
    ------
    TypeError, ValueError
        A parameter of the wrong type or out of range, or ``shared`` where it cannot
        apply (the message names the parameter and what is allowed).
    """

    def __init__(self, rows, cols, fmt_a, fmt_b, acc, pe, shared):
        check_int("rows", rows, 1)
        check_int("cols", cols, 1)
        fmt_a, fmt_b = array_formats(fmt_a, fmt_b)
        check_acc(acc)
        if not callable(pe):
            raise TypeError(f"pe must be a PE factory pe(fmt_a, fmt_b, acc), not {pe!r}")
        check_bool("shared", shared)
        serial = None
        if is_bitserial(pe):
            if acc.mode != "fixed":
                raise ValueError(f"the bit-serial PE implements fixed-point accumulation "
                                 f"only, not {acc.mode!r}")
            serial = check_serial_format(fmt_b)
        if shared and (why := why_not_shared(acc, pe, cols, fmt_a.block_size,
                                             (fmt_a, fmt_b))):
            raise ValueError(f"shared=True needs {why}")
        self._rows, self._cols, self._fmt_a, self._fmt_b = rows, cols, fmt_a, fmt_b
        self._acc, self._pe, self._serial, self._shared = acc, pe, serial, shared
        self._k = fmt_a.block_size
        super().__init__({
            "i": In(stream.Signature(os_in_layout(fmt_a, fmt_b, rows, cols))),
            "o": Out(stream.Signature(out_layout(acc, cols))),
        })

    @property
    def serial(self):
        """Cycles per K step: the bit-serial PE's weight bits, else 1."""
        return self._serial or 1

    @property
    def pe_latency(self):
        """Cycles from a PE's last element (bit-serial: the final bit of its last step) to
        its result: ``1 + pipeline`` of :class:`MXMacPE` and :class:`BitSerialMXMacPE`,
        plus :func:`~mxhw.systolic.rowacc.row_extra_stages` when ``shared`` (and 1 with
        :attr:`MXBlockSumPE.split_product <mxhw.systolic.pe.MXBlockSumPE.split_product>`);
        else the
        ``latency`` attribute of a PE from the factory (1 if it has none)."""
        if is_bitparallel(self._pe) or is_bitserial(self._pe):
            p = (self._pe.keywords.get("pipeline", 0)
                 if isinstance(self._pe, functools.partial) else 0)
            if not self._shared:
                return 1 + p
            return (1 + p + row_extra_stages(p)
                    + splits_product(self._fmt_a, self._fmt_b, p))
        return getattr(self._pe(self._fmt_a, self._fmt_b, self._acc), "latency", 1)

    @property
    def latency(self):
        """Cycles from a tile's last transfer to its first result row on ``o``."""
        return self._rows + self._cols + self.pe_latency + self.serial

    def _edge(self, m, inflight, take):
        """The edge register and block counter (bit-serial: the weights' shift registers),
        and ``i.ready``. Returns ``(x, xend, ctl, cols_in)``: the operand register, the
        block-end flag, the control (``(name, signal)`` pairs) and each column's operand
        signals by PE port name."""
        R, C, k = self._rows, self._cols, self._k
        fa, fb = self._fmt_a, self._fmt_b
        p = self._serial
        # ---- edge register and block counter
        cnt = Signal(range(k))
        x = Signal(os_in_layout(fa, fb, R, C))
        xcnt = Signal(range(k))                # x's position in its block (MX+)
        xv, xend, xlast = Signal(), Signal(), Signal()
        with m.If(take):
            m.d.sync += cnt.eq(0 if k == 1 else (cnt + 1) % k)
            with m.If(self.i.payload.last):
                m.d.sync += cnt.eq(0)
        if p is None:
            # the wide operand register loads every cycle (no enable: ``take`` would fan out
            # to every bit, across the array's edge); xv says whether it holds a transfer
            m.d.sync += [x.eq(self.i.payload), xcnt.eq(cnt), xend.eq(take & (cnt == k - 1)),
                         xlast.eq(take & self.i.payload.last)]
            m.d.comb += self.i.ready.eq(~(self.i.payload.last & inflight))
            m.d.sync += xv.eq(take)
            ctl = (("v", xv), ("e", xend), ("l", xlast))
            cols_in = [(("b", edge_code(fb, x.b[j], pos=xcnt,
                                        index=x.b_index[j] if fb.index_bits else None,
                                        scale=x.b_scale[j])),
                        ("b_scale", x.b_scale[j]),
                        *((("b_mode", x.b_mode[j]),) if fb.mode_bits else ()))
                       for j in range(C)]
        else:
            # bit-serial: a transfer is held for p cycles while the weights shift out, MSB
            # first; the next one is taken in the cycle of the last bit. The bit's place is
            # one-hot (``ph``: first and final bits are flip-flops), and the edge registers
            # load whenever they may (``lo``: no step, or its final bit), taken or not
            # (``xv`` says whether they hold a step): neither ``i.valid`` nor ``last``
            # reaches their enables.
            ph = Signal(p, init=1)
            xfirst, xfinal, lo = Signal(), Signal(), Signal()
            sreg = [Signal(p, name=f"sreg{j}") for j in range(C)]
            bnf = [Signal(name=f"bnf{j}") for j in range(C)]
            m.d.comb += [xfirst.eq(ph[0]), xfinal.eq(ph[p - 1]), lo.eq(~xv | xfinal),
                         self.i.ready.eq(lo & ~(self.i.payload.last & inflight))]
            with m.If(lo):
                m.d.sync += [x.eq(self.i.payload), xcnt.eq(cnt), xend.eq(cnt == k - 1),
                             xlast.eq(self.i.payload.last), xv.eq(take), ph.eq(1)]
            with m.Else():
                m.d.sync += ph.eq(ph.rotate_left(1))
            for j in range(C):
                pl = self.i.payload
                w, nf = fixed_form(m, operand_element(fb), edge_code(
                    fb, pl.b[j], pl.b_mode[j] if fb.mode_bits else None, cnt,
                    pl.b_index[j] if fb.index_bits else None, pl.b_scale[j]))
                m.d.sync += sreg[j].eq(Mux(lo, w.as_unsigned(), sreg[j] << 1))
                with m.If(lo):
                    m.d.sync += bnf[j].eq(nf)
            ctl = (("v", xv), ("f", xfirst), ("z", xfinal), ("e", xend), ("l", xlast))
            cols_in = [(("b_bit", sreg[j][p - 1]), ("b_nonfinite", bnf[j]),
                        ("b_scale", x.b_scale[j])) for j in range(C)]
        return x, xcnt, xend, ctl, cols_in

    def _row_units(self, m, x, xend, a_in, pes, shared_p):
        """The row-shared accumulators: one :class:`RowAccumulator` per row, fed the
        row's block sums and the block's scale codes made from the edge registers.
        Returns ``[(fin, fin_special, fin_valid_next)]`` per row."""
        R, C = self._rows, self._cols
        fa, fb = self._fmt_a, self._fmt_b
        # The scale codes of each block end go to the row units beside it (not through
        # the rows' multiplexers, not added in the PEs), made from the edge registers.
        # A PE's block end comes ``d`` cycles after its last element (d = the PE's
        # latency); row i, column j of the transfer in ``x`` at cycle X enters PE (i, j)
        # at X + i + j.
        d = pes[0][0].latency
        sbits = len(x.b_scale[0])
        # From d = 2 up the row units take the codes' sum and NaN flag (``presum``),
        # registered from the codes one register stage before the block end: the sum's
        # adder then lies between the delay lines' registers and that register, not in
        # front of the row unit's selection register.
        presum = d >= 2
        if d >= 1:
            # B: on a block end the edge loads all columns' codes into a shift register
            # that moves one column per cycle, so ``sr[0]`` holds column j's code at
            # X + 1 + j; ``d - 1`` registers more put it at row 0's block end, X + j + d
            sr = [Signal(sbits, name=f"b_scale_sr{j}", reset_less=True) for j in range(C)]
            with m.If(xend):
                m.d.sync += [sr[j].eq(x.b_scale[j]) for j in range(C)]
            with m.Else():
                m.d.sync += [sr[j].eq(sr[j + 1]) for j in range(C - 1)]
            # (presum: the code a cycle before the block end)
            b_row = delay_line(m, sr[0], d - 1 - presum, "b_scale_end")
        else:
            # without PE registers: row 0's PEs' codes selected by their block ends
            b_row, stmt = one_hot_select([pe.block_valid for pe in pes[0]],
                                         [pe.block_b_scale for pe in pes[0]],
                                         unsigned(sbits), "b_scale_sel")
            m.d.comb += stmt
        a_blk = []
        for i in range(R):
            # A: one register per row, loaded as the block's last element enters the
            # row's first PE (X + i), then ``d - 1`` registers: it holds the block's
            # code from X + i + d, the row's first block end, for at least k >= cols
            # cycles (the next block's load comes k or more cycles later)
            ain = dict(a_in[i])
            a_end = ain["v"] & ain["e"]
            a_reg = Signal(len(ain["a_scale"]), name=f"a_scale_blk{i}", reset_less=True)
            with m.If(a_end):
                m.d.sync += a_reg.eq(ain["a_scale"])
            if d >= 1:
                a_blk.append(delay_line(m, a_reg, d - 1 - presum, f"a_scale_end{i}"))
            else:
                a_now = Signal.like(a_reg, name=f"a_scale_now{i}")
                m.d.comb += a_now.eq(Mux(a_end, ain["a_scale"], a_reg))
                a_blk.append(a_now)
        results = []
        for i in range(R):
            m.submodules[f"rowacc_{i}"] = ra = RowAccumulator(
                fa, fb, self._acc, C, pipeline=shared_p, result_ring=False,
                idle_zero=True,     # MXBlockSumPE zeroes its fields between block ends
                presum=presum)
            for j in range(C):
                for n in ("valid", "sum", "nonfinite", "last"):
                    m.d.comb += getattr(ra, f"block_{n}")[j].eq(
                        getattr(pes[i][j], f"block_{n}"))
            # row i's block ends come i cycles after row 0's: so do its B codes
            if presum:
                m.d.sync += [ra.scale_sum.eq(a_blk[i] + b_row),
                             ra.scale_nan.eq(scale_nan(fa, a_blk[i]) | scale_nan(fb, b_row))]
            else:
                m.d.comb += [ra.a_scale.eq(a_blk[i]), ra.b_scale.eq(b_row)]
            if i < R - 1:
                b_row = delay_line(m, b_row, 1, f"b_scale_row{i + 1}")
            fin = clamp_acc(m, self._acc, ra.fin, f"fin{i}") if ra.fin_unclamped else ra.fin
            results.append((fin, ra.fin_special, ra.fin_valid_next))
        return results

    def elaborate(self, platform):
        m = Module()
        R, C = self._rows, self._cols
        fa, fb = self._fmt_a, self._fmt_b

        # ---- flow control: at most one finished tile waiting in the PE result registers
        # (row-shared: at most one finished tile in the output buffer)
        m.submodules.outbuf = buf = OutputBuffer(R, C, self._acc, self._shared)
        inflight = buf.busy          # a last transfer accepted, its results not yet moved
                                     # (row-shared: not yet out of the buffer)
        p = self._serial
        take = self.i.valid & self.i.ready

        x, xcnt, xend, ctl, cols_in = self._edge(m, inflight, take)

        def delay(sig, n, name, keep=False):
            return delay_line(m, sig, n, name, keep)

        # skewed edge operands: row i delayed i cycles, column j delayed j; the PE ports
        # they drive, by name (the control: ``ctl``)
        rows_in = [(("a", edge_code(fa, x.a[i], pos=xcnt,
                                    index=x.a_index[i] if fa.index_bits else None,
                                    scale=x.a_scale[i])),
                     ("a_scale", x.a_scale[i]),
                    *((("a_mode", x.a_mode[i]),) if fa.mode_bits else ()), *ctl)
                   for i in range(R)]
        # the control (``ctl``) is the same for every row: row i takes row i - 1's one
        # register later (a chain: no register of the edge reaches every row), each kept
        # apart (:func:`delay_line`)
        ctl_names = {n for n, _ in ctl}
        a_in = []
        for i in range(R):
            a_in.append(tuple(
                (n, delay(dict(a_in[i - 1])[n] if i else s_, 1 if i else 0, f"{n}{i}", True)
                 if n in ctl_names else delay(s_, i, f"{n}{i}"))
                for n, s_ in rows_in[i]))
        b_in = [tuple((n, delay(s_, j, f"{n}{j}")) for n, s_ in cols_in[j]) for j in range(C)]
        ports = {"v": "valid", "e": "block_end", "l": "last", "f": "first", "z": "final"}

        # shared accumulators: the MXMacPE partial's pipeline, split between PE and row unit
        shared_p = self._pe.keywords.get("pipeline", 0) if self._shared else None
        # the PEs, with registered pass-through to the right and down
        pes = pe_grid(m, a_in, b_in, lambda: (
            MXBlockSumPE(fa, fb, pipeline=shared_p) if self._shared
            else self._pe(fa, fb, self._acc)), ports, ctl_names)

        # ---- the PEs' results (``result``, ``special``): their own, or their row unit's
        if self._shared:
            results = self._row_units(m, x, xend, a_in, pes, shared_p)
        else:
            results = [[(pe.result, pe.special) for pe in row] for row in pes]

        # ---- de-skew: all PEs hold the tile once the corner PE has seen its last element
        # (bit-serial: the final bit of its last step)
        # The flag reaches every row's buffer control: its last register is copied per
        # row (``keep``: equal registers, kept apart), each copy driving one row's flags,
        # so no one flip-flop fans out across the whole buffer.
        corner = pes[R - 1][C - 1]
        lat = self.pe_latency if self._shared else getattr(corner, "latency", 1)
        corner_last = Signal()
        m.d.comb += corner_last.eq(corner.valid & corner.last &
                                   (corner.final if p is not None else 1))
        if lat >= 2:
            done_pre = delay(corner_last, lat - 2, "done")
            corner_done = [delay(done_pre, 1, f"done_row{i}", keep=True) for i in range(R)]
        else:
            corner_done = [corner_last] * R

        # ---- the output buffer
        m.d.comb += [buf.tile_in.eq(take & self.i.payload.last),
                     *(buf.done[i].eq(corner_done[i]) for i in range(R))]
        if self._shared:
            for i, (fin, fin_sp, fin_next) in enumerate(results):
                m.d.comb += [buf.fin[i].eq(fin), buf.fin_special[i].eq(fin_sp),
                             buf.fin_valid_next[i].eq(fin_next)]
        else:
            for i in range(R):
                for j in range(C):
                    m.d.comb += [buf.result[i][j].eq(results[i][j][0]),
                                 buf.special[i][j].eq(results[i][j][1])]
        wiring.connect(m, buf.o, wiring.flipped(self.o))
        return m
