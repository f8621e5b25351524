"""The SoC's weight-stationary compute unit: a weight-stationary systolic array behind
banked scratchpads, on the word bus (the ``dataflow="weight_stationary"`` counterpart of
:class:`~mxhw.soc.gemm.GemmUnit`).

The array (:class:`~mxhw.systolic.SystolicArray` with ``dataflow="weight_stationary"``,
see :mod:`mxhw.systolic.ws`) holds ``rows x cols`` weights of one *pass*: ``rows``
consecutive K elements of one MX block (a block of ``k`` elements takes ``P = ceil(k /
rows)`` passes; in the last pass of a block the K positions beyond the block are padding)
by ``cols`` output columns, and streams ``depth`` activation rows through them per pass.

One START computes one output tile ``C = A @ B`` of ``depth x cols`` over ``K`` (a
multiple of the block size, at most ``max_k``), i.e. ``Q = (K / k) * P`` passes; the host
driver tiles larger M and N over it. The sequencer feeds the array's input schedule
(:func:`mxhw.systolic.driver.ws_beats` for one tile): ``rows`` weight-only transfers
load the first pass's weights into the shadow registers, then every pass streams its
``depth`` activation rows, the first ``min(depth, rows)`` of them also carrying the next
pass's weight rows (with ``depth < rows`` the remaining weight rows follow as weight-only
transfers). A prefetch queue between the operand memories and the array keeps the array's
``ready`` away from the memory addresses, as in the output-stationary unit.

Address map inside the unit (byte offsets from :data:`~mxhw.soc.gemm.GEMM_BASE`; every
region is word-addressed, regions 4 MiB apart; the same regions as the output-stationary
unit, A laid out by pass):

========== ===================================================================
offset     contents
========== ===================================================================
0x000000   registers: +0x0 K (R/W), +0x4 START (W 1) / STATUS (R: bit0 busy,
           bit1 done), +0x8 BUSY_CYCLES, +0xC STALL_CYCLES, +0x10 GEOMETRY
           (rows | cols << 8 | log2(max_k) << 16 | 1 << 24: bit 24 is the dataflow,
           1 = weight-stationary; the output-stationary unit reads 0 there),
           +0x14 FORMATS (id_a | id_b << 8), +0x18 ACC (width | frac_bits << 8 |
           saturate << 16), +0x40 DEPTH (the tile's height ``depth``)
0x400000   A codes: word ``(q * depth + i) << LA | lane`` for pass ``q`` (block
           ``q // P``, K elements from ``(q // P) * k + (q % P) * rows``) and tile row
           ``i``: lane ``l`` holds bits ``32l..32l+31`` of the concatenated codes
           ``A[i, k0 .. k0 + rows - 1]`` (the pass's first K element in the low bits;
           padding positions hold a code of +0)
0x800000   A scales: word ``jb * depth + i``: the scale code of row ``i``, block ``jb``
0xC00000   B codes: word ``k << LB | lane`` for ``B[k, 0..cols-1]`` (as the
           output-stationary unit)
0x1000000  B scales: word ``kb << LBS | lane`` (as the output-stationary unit)
0x1400000  C results (read only): word ``(i << LC | j) << LW | w``: bits ``32w..`` of
           the signed ``acc.width``-bit result ``C[i, j]``, ``i < depth`` (sign-extended)
0x1800000  C special flags (read only): word ``i``: bit ``j`` set where ``C[i, j]`` is NaN
========== ===================================================================

``LX`` is ``ceil(log2(number of 32-bit lanes))``; unused lanes ignore writes. The operand
regions are write-only (they read as 0); writes to them while the unit is busy are ignored.
The sequencer zeroes the weights of padding positions itself (the host writes only B's
``K`` rows).
"""

import math

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .. import golden
from ..systolic import SystolicArray
from ..systolic.driver import zero_code
from .gemm import (FORMAT_IDS, GEMM_REGS, REGION, REGION_SHIFT, _bus_slave, bus_reads,
                   check_unit_acc, count_cycles, lane_memories, lanes_log2, reg_writes,
                   start_strobe)

__all__ = ["GemmWSUnit", "WS_REGS", "DATAFLOW_IDS"]

#: register index (word offset in the register region) of the weight-stationary unit
WS_REGS = {**GEMM_REGS, "DEPTH": 0x10}

#: prefetch queue entries: enough reads in flight (two cycles of memory read latency) for
#: one transfer per cycle (the room test is a flag register one cycle old: one entry of slack)
QUEUE_DEPTH = 8

#: GEOMETRY bit 24 (and FEATURES bit 9): the dataflow of the built GEMM unit
DATAFLOW_IDS = {"output_stationary": 0, "weight_stationary": 1}


def _pow2(n):
    """``n`` rounded up to a power of two: every memory address (a bus index, a counter)
    then stays in range by truncation."""
    return 1 << max(0, (n - 1).bit_length())


class GemmWSUnit(wiring.Component):
    """Weight-stationary systolic-array GEMM tile unit on the SoC bus.

    Parameters
    ----------
    rows, cols : int
        Array shape: ``rows`` K elements per pass (>= 1), ``cols`` output columns
        (1..32).
    depth : int
        Activation rows per pass: the height of the output tile (1..255).
    fmt_a, fmt_b : str
        Block formats, keys of :data:`~mxhw.soc.gemm.FORMAT_IDS`.
    acc : golden.arith.Accumulation
        ``golden.fixed(...)``: the array's cross-block accumulation (fixed-point only,
        as the output-stationary unit: :func:`~mxhw.soc.gemm.check_unit_acc`).
    max_k : int
        Largest K per tile (a power of two, a multiple of the block size).

    Members
    -------
    bus : In(bus signature)
        Word bus slave (word addresses relative to the unit; read data one cycle later,
        0 in the cycles after no read).
    busy : Out(1)

    Latency: a START of ``Q`` passes is busy (BUSY_CYCLES) for ``T + rows + cols + 11``
    cycles, ``T = rows + (Q - 1) * max(depth, rows) + depth`` the array's input transfers
    (the first pass's weight loads, then every pass's activation rows and, with
    ``depth < rows``, weight-only transfers): one transfer per cycle, then the array's
    :attr:`~mxhw.systolic.SystolicArray.latency` (``rows + cols + 7``) and 4 cycles of
    memory read (2), prefetch queue and result write. ``rows * cols`` MACs per activation
    transfer. Golden twin: ``golden.gemm(qa, qb, acc)`` on one ``depth x cols`` tile.

    Raises
    ------
    TypeError, ValueError
        Formats not in ``FORMAT_IDS``; ``cols``, ``rows``, ``depth`` or ``max_k`` out of
        range; ``acc`` not a fixed-point accumulation
        (:func:`~mxhw.soc.gemm.check_unit_acc`).
    """

    def __init__(self, rows, cols, depth, fmt_a, fmt_b, acc, max_k=1024):
        for name, f in (("fmt_a", fmt_a), ("fmt_b", fmt_b)):
            if f not in FORMAT_IDS:
                raise ValueError(f"{name} must be one of {', '.join(FORMAT_IDS)}, not {f!r}")
        if not isinstance(rows, int) or isinstance(rows, bool) or not 1 <= rows <= 255:
            raise ValueError(f"rows must be an integer in [1, 255], not {rows!r}")
        if not isinstance(cols, int) or isinstance(cols, bool) or not 1 <= cols <= 32:
            raise ValueError(f"cols must be an integer in [1, 32], not {cols!r}")
        if not isinstance(depth, int) or isinstance(depth, bool) or not 1 <= depth <= 255:
            raise ValueError(f"depth must be an integer in [1, 255], not {depth!r}")
        fa, fb = golden.formats.get(fmt_a), golden.formats.get(fmt_b)
        k = fa.block_size
        if (not isinstance(max_k, int) or max_k < k or max_k % k or max_k & (max_k - 1)):
            raise ValueError(f"max_k must be a power of two and a multiple of {k}, "
                             f"not {max_k!r}")
        check_unit_acc(acc)
        self._array = SystolicArray(rows, cols, fmt_a, fmt_b, dataflow="weight_stationary",
                                    acc=acc, depth=depth)
        self._rows, self._cols, self._depth = rows, cols, depth
        self._fmt_a, self._fmt_b, self._acc, self._max_k, self._k = fmt_a, fmt_b, acc, max_k, k
        self._fa, self._fb = fa, fb
        self._passes_per_block = -(-k // rows)
        self.la = lanes_log2(rows * fa.element.bits)
        self.lb = lanes_log2(cols * fb.element.bits)
        self.lbs = lanes_log2(cols * fb.scale.bits)
        self.lw = lanes_log2(acc.width)
        self.lc = max(0, math.ceil(math.log2(cols)))
        super().__init__({"bus": In(_bus_slave()), "busy": Out(1)})

    rows = property(lambda self: self._rows)
    cols = property(lambda self: self._cols)
    depth = property(lambda self: self._depth)
    fmt_a = property(lambda self: self._fmt_a)
    fmt_b = property(lambda self: self._fmt_b)
    acc = property(lambda self: self._acc)
    max_k = property(lambda self: self._max_k)
    k = property(lambda self: self._k, doc="Block size along K.")
    passes_per_block = property(lambda self: self._passes_per_block,
                                doc="``ceil(k / rows)``: passes per MX block.")

    def geometry(self):
        return (self._rows | self._cols << 8 | (self._max_k.bit_length() - 1) << 16
                | DATAFLOW_IDS["weight_stationary"] << 24)

    def formats(self):
        return FORMAT_IDS[self._fmt_a] | FORMAT_IDS[self._fmt_b] << 8

    def acc_word(self):
        acc = self._acc
        return (acc.width | (acc.frac_bits & 0xFF) << 8 | (acc.overflow == "saturate") << 16
                | (acc.rounding == "rne") << 17)

    def elaborate(self, platform):
        m = Module()
        R, C, D, k, PB = self._rows, self._cols, self._depth, self._k, self._passes_per_block
        fa, fb = self._fa, self._fb
        K_MAX = self._max_k
        NB_MAX = K_MAX // k                    # blocks per tile, at most
        m.submodules.array = arr = self._array
        bus = self.bus
        region = bus.addr[REGION_SHIFT:REGION_SHIFT + 4]
        index = bus.addr[:REGION_SHIFT]

        K = Signal(range(K_MAX + 1))
        busy, done = Signal(), Signal()
        busy_cycles, stall_cycles = Signal(32), Signal(32)
        m.d.comb += self.busy.eq(busy)

        # ---- sequencer state: every read address is a register
        issuing = Signal()                      # transfers of this tile remain
        pre = Signal()                          # loading the first pass's weights
        n = Signal(range(max(D, R)))            # slot within the pass
        ja, pa = Signal(range(NB_MAX)), Signal(range(PB))          # activation pass
        jw, pw = Signal(range(NB_MAX + 1)), Signal(range(PB))      # weight pass (next one)
        nb_m1 = Signal(range(NB_MAX))           # blocks of this tile - 1
        ra = Signal(range(NB_MAX * PB * D + 1))  # A codes word group
        ras = Signal(range(NB_MAX * D + 1))     # A scales word: ja * D + i
        rb = Signal(range(K_MAX + 1))           # B codes word group: real K rows loaded

        last_pass = Signal()
        act, wv, pad, slot_end = Signal(), Signal(), Signal(), Signal()
        m.d.comb += last_pass.eq((ja == nb_m1) & (pa == PB - 1))
        with m.If(pre):
            m.d.comb += [act.eq(0), wv.eq(1), slot_end.eq(n == R - 1)]
        with m.Else():
            m.d.comb += [act.eq(n < D), wv.eq((n < R) & ~last_pass),
                         slot_end.eq(Mux(last_pass, n == D - 1, n == max(D, R) - 1))]
        if k % R:
            # the block's last pass covers k - (PB-1)*R real K elements; the rest is padding
            m.d.comb += pad.eq((pw == PB - 1) & (n >= k - (PB - 1) * R))

        issue = Signal()                        # read this slot's operands this cycle
        room = Signal()                         # the prefetch queue has room
        inflight = Signal()                     # a read issued last cycle
        loaded = Signal()                       # a read issued two cycles ago: data out now
        flags_d = Signal(7)                     # act, w_valid, pad, block flags of a read,
        flags = Signal(7)                       # ... delayed alike
        m.d.sync += [inflight.eq(issue), loaded.eq(inflight), flags.eq(flags_d),
                     flags_d.eq(Cat(act, wv, pad, pa == 0, pa == PB - 1, ja == 0,
                                    last_pass))]

        # ---- operand memories: one 32-bit memory per lane, bus writes, sequencer reads;
        # reads take two cycles (on ECP5 the second is the block RAM's output register)
        def lane_mems(name, lanes_log, depth, rd_index, region_id):
            return lane_memories(m, bus, region, index, busy, name, lanes_log, _pow2(depth),
                                 rd_index, region_id)

        a_bits = lane_mems("a", self.la, NB_MAX * PB * D, ra, REGION["a"])
        as_bits = lane_mems("as", 0, NB_MAX * D, ras, REGION["a_scale"])
        b_bits = lane_mems("b", self.lb, K_MAX, rb, REGION["b"])
        bs_bits = lane_mems("bs", self.lbs, NB_MAX, jw, REGION["b_scale"])

        step = Signal(arr.in_layout)
        f_act, f_wv, f_pad, f_bfirst, f_bend, f_tfirst, f_last = (flags[i] for i in range(7))
        zb = Const(zero_code(fb), fb.element.bits).replicate(C)
        m.d.comb += [
            step.a.eq(a_bits[:R * fa.element.bits]),
            step.a_scale.eq(as_bits[:fa.scale.bits]),
            step.w.eq(Mux(f_pad, zb, b_bits[:C * fb.element.bits])),
            step.w_scale.eq(bs_bits[:C * fb.scale.bits]),
            step.act.eq(f_act), step.w_valid.eq(f_wv),
            step.block_first.eq(f_bfirst), step.block_end.eq(f_bend),
            step.tile_first.eq(f_tfirst), step.last.eq(f_last),
        ]
        m.submodules.queue = queue = SyncFIFOBuffered(width=len(step.as_value()),
                                                      depth=QUEUE_DEPTH)
        m.d.comb += [
            issue.eq(busy & issuing & room),
            queue.w_data.eq(step),
            queue.w_en.eq(loaded),
            arr.i.payload.eq(queue.r_data),
            arr.i.valid.eq(queue.r_rdy),
            queue.r_en.eq(arr.i.ready),
        ]

        # room for this read and those in flight: level + inflight + loaded <= depth - 3
        # after it; a flag register one cycle old, as in the output-stationary engine
        # (the claim grows by at most one read a cycle)
        m.d.sync += room.eq(queue.level + inflight + loaded <= QUEUE_DEPTH - 4)

        def advance(p, j):
            with m.If(p == PB - 1):
                m.d.sync += [p.eq(0), j.eq(j + 1)]
            with m.Else():
                m.d.sync += p.eq(p + 1)

        with m.If(issue):
            with m.If(act):
                m.d.sync += ra.eq(ra + 1)
                with m.If((n == D - 1) & (pa != PB - 1)):
                    m.d.sync += ras.eq(ras - (D - 1))    # the block's next pass: row 0 again
                with m.Else():
                    m.d.sync += ras.eq(ras + 1)
            with m.If(wv & ~pad):
                m.d.sync += rb.eq(rb + 1)
            with m.If(slot_end):
                m.d.sync += n.eq(0)
                with m.If(pre):
                    m.d.sync += pre.eq(0)
                    advance(pw, jw)
                with m.Elif(last_pass):
                    m.d.sync += issuing.eq(0)
                with m.Else():
                    advance(pa, ja)
                    advance(pw, jw)
            with m.Else():
                m.d.sync += n.eq(n + 1)

        # ---- results: one memory per column, depth deep; special flags per row
        out_row = Signal(range(D + 1))
        m.d.comb += arr.o.ready.eq(1)
        c_reads = []
        for j in range(C):
            mem = Memory(shape=self._acc.width, depth=_pow2(D), init=[])
            m.submodules[f"c{j}"] = mem
            wp, rp = mem.write_port(), mem.read_port()
            m.d.comb += [wp.addr.eq(out_row), wp.data.eq(arr.o.payload.data[j]),
                         wp.en.eq(arr.o.valid), rp.addr.eq(index[self.lw + self.lc:])]
            c_reads.append(rp.data)
        spec = Memory(shape=C, depth=_pow2(D), init=[])
        m.submodules.special = spec
        swp, srp = spec.write_port(), spec.read_port()
        m.d.comb += [swp.addr.eq(out_row), swp.data.eq(Cat(*arr.o.payload.special)),
                     swp.en.eq(arr.o.valid), srp.addr.eq(index)]

        # ---- control
        reg_writes(m, bus, region, index, busy, {WS_REGS["K"]: K})
        start = start_strobe(m, bus, region, index, WS_REGS["START"], busy)
        kb_log = k.bit_length() - 1
        with m.If(start):
            m.d.sync += [busy.eq(1), done.eq(0), issuing.eq(1), pre.eq(1), n.eq(0),
                         ja.eq(0), pa.eq(0), jw.eq(0), pw.eq(0), ra.eq(0), ras.eq(0),
                         rb.eq(0), out_row.eq(0), nb_m1.eq((K >> kb_log) - 1)]
        with m.If(arr.o.valid):
            m.d.sync += out_row.eq(out_row + 1)
            with m.If(out_row == D - 1):
                m.d.sync += [busy.eq(0), done.eq(1)]
        count_cycles(m, busy, queue.r_rdy & ~arr.i.ready, busy_cycles, stall_cycles)

        regs = {WS_REGS["K"]: K, WS_REGS["STATUS"]: Cat(busy, done),
                WS_REGS["BUSY_CYCLES"]: busy_cycles, WS_REGS["STALL_CYCLES"]: stall_cycles,
                WS_REGS["GEOMETRY"]: self.geometry(), WS_REGS["FORMATS"]: self.formats(),
                WS_REGS["ACC"]: self.acc_word(), WS_REGS["DEPTH"]: D}
        bus_reads(m, bus, region, index, regs, c_reads, srp.data, self.lw, self.lc)
        return m
