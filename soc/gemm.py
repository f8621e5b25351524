"""The SoC's GEMM unit: a systolic array (either dataflow) and the GEMM sequencer behind
banked operand memories and result memories, on the word bus.

One START computes one output tile ``C = A @ B`` (``rows x cols`` output-stationary,
``depth x cols`` weight-stationary) over ``K`` (a multiple of the block size, at most
``max_k``); the host driver tiles larger M and N over it. The registers are
:data:`~mxhw.soc.regmap.REGISTERS`; the operand and result regions and their layouts are
specified in ``soc/PROTOCOL.md`` ("GEMM unit address map").
"""

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from .. import golden
from ..lib.params import check_choice, check_int, check_pow2
from ..systolic.array import SystolicArray
from ..systolic.driver import zero_code
from ..lib.signals import delay_line as delayed
from ..systolic.seq import GemmSequencer, telemetry
from .bus import BusSignature
from .regmap import (DATAFLOW_IDS, FORMAT_IDS, REGION, UNIT_ADDR_BITS, encode, lanes_log2,
                     registers_for)
from .unit import bus_reads, lane_memories, reg_writes, result_memories, start_strobe

__all__ = ["GemmUnit", "check_unit_acc", "unit_format"]

#: prefetch queue entries: enough reads in flight (two cycles of memory read latency, and
#: the buffered FIFO's two cycles from write to output) for one transfer per cycle (the
#: room test is a flag register one cycle old: one entry of slack)
QUEUE_DEPTH = 8


def check_unit_acc(acc):
    """Validate a GEMM unit's ``acc``: fixed-point accumulation only. The ACC register and
    the result words describe ``golden.fixed(...)`` results (and
    :class:`~mxhw.soc.top.SoCConfig` builds only those); the arrays' ``golden.arith.FP32``
    mode is not offered through the SoC."""
    if not isinstance(acc, golden.arith.Accumulation):
        raise TypeError(f"acc must be a golden.arith.Accumulation, not {acc!r}")
    if acc.mode != "fixed":
        raise ValueError(f"acc must be fixed-point accumulation (golden.fixed(...)) for the "
                         f"SoC's GEMM units, not {acc.mode!r}: their ACC register and result "
                         f"words hold fixed-point results")


def unit_format(name, fmt):
    """A GEMM unit's operand format ``fmt`` by its golden name (aliases resolved through
    ``golden.formats.get``): one of :data:`~mxhw.soc.regmap.FORMAT_IDS` (MXSF, which the
    arrays take, is not one: the operand memories carry no block modes)."""
    canon = golden.formats.get(fmt).name
    if canon not in FORMAT_IDS:
        raise ValueError(f"{name} must be one of {', '.join(FORMAT_IDS)} (the GEMM unit's "
                         f"formats), not {fmt!r}")
    return canon


class GemmUnit(wiring.Component):
    """Systolic-array GEMM tile unit on the SoC bus.

    Parameters
    ----------
    rows, cols : int
        Array shape (``rows`` 1..255: weight-stationary, K elements per pass; ``cols``
        1..32).
    fmt_a, fmt_b : str
        Block formats (golden names or aliases), :data:`~mxhw.soc.regmap.FORMAT_IDS`.
    acc : golden.arith.Accumulation
        ``golden.fixed(...)`` (:func:`check_unit_acc`).
    max_k : int
        Largest K per tile (a power of two, a multiple of the block size).
    a_tiles : int
        Output-stationary: A tiles the A memories hold (a power of two, 1..32768),
        selected by ``A_TILE``.
    dataflow : str
        ``"output_stationary"`` or ``"weight_stationary"``.
    depth : int or None
        Weight-stationary: the tile's height (1..255; default ``rows``).

    Members
    -------
    bus : In(BusSignature(UNIT_ADDR_BITS))
        Word bus slave (read data one cycle later, 0 in the cycles after no read).
    busy : Out(1)

    Latency: a START is busy (BUSY_CYCLES) for the array's input transfers at one a cycle
    (output-stationary ``K``; weight-stationary ``rows + (Q - 1) * max(depth, rows) +
    depth`` for ``Q`` passes), then :attr:`SystolicArray.latency`, 4 cycles of memory
    read (2), prefetch queue and result write, and the tile's result rows. Golden twin:
    ``golden.gemm(qa, qb, acc)`` on one tile.

    Raises
    ------
    TypeError, ValueError
        Formats not in ``FORMAT_IDS``; ``rows``, ``cols``, ``depth``, ``max_k`` or
        ``a_tiles`` out of range; ``acc`` not fixed-point (:func:`check_unit_acc`).
    """

    def __init__(self, rows, cols, fmt_a, fmt_b, acc, max_k=1024, a_tiles=1,
                 dataflow="output_stationary", depth=None):
        fmt_a, fmt_b = unit_format("fmt_a", fmt_a), unit_format("fmt_b", fmt_b)
        check_choice("dataflow", dataflow, tuple(DATAFLOW_IDS))
        ws = dataflow == "weight_stationary"
        check_int("rows", rows, 1, 255)
        check_int("cols", cols, 1, 32)
        fa, fb = golden.formats.get(fmt_a), golden.formats.get(fmt_b)
        k = fa.block_size
        check_pow2("max_k", max_k, k)
        check_pow2("a_tiles", a_tiles, 1, 1 if ws else 1 << 15)
        if ws:
            depth = check_int("depth", rows if depth is None else depth, 1, 255)
        elif depth is not None:
            raise ValueError(f"depth applies to the weight-stationary dataflow only, not "
                             f"{dataflow!r}")
        check_unit_acc(acc)
        self.rows, self.cols, self.fmt_a, self.fmt_b = rows, cols, fmt_a, fmt_b
        self.acc, self.max_k, self.k, self.a_tiles = acc, max_k, k, a_tiles
        self.dataflow, self.depth = dataflow, depth
        self._fa, self._fb = fa, fb
        self.registers = registers_for(dataflow)
        self.la = lanes_log2(rows * fa.element.bits)
        self.las = 0 if ws else lanes_log2(rows * fa.scale.bits)
        self.lb = lanes_log2(cols * fb.element.bits)
        self.lbs = lanes_log2(cols * fb.scale.bits)
        self.lw = lanes_log2(acc.width)
        self.lc = (cols - 1).bit_length()
        super().__init__({"bus": In(BusSignature(UNIT_ADDR_BITS)), "busy": Out(1)})

    @property
    def tile_rows(self):
        """Output rows per START: ``rows`` or (weight-stationary) ``depth``."""
        return self.depth or self.rows

    @property
    def passes_per_block(self):
        """``ceil(k / rows)``: weight-stationary passes per MX block."""
        return -(-self.k // self.rows)

    def geometry(self):
        return encode("GEOMETRY", rows=self.rows, cols=self.cols,
                      log2_max_k=self.max_k.bit_length() - 1,
                      dataflow=DATAFLOW_IDS[self.dataflow],
                      log2_a_tiles=self.a_tiles.bit_length() - 1)

    def formats(self):
        return encode("FORMATS", fmt_a=FORMAT_IDS[self.fmt_a], fmt_b=FORMAT_IDS[self.fmt_b])

    def acc_word(self):
        acc = self.acc
        return encode("ACC", width=acc.width, frac_bits=acc.frac_bits,
                      saturate=acc.overflow == "saturate", rne=acc.rounding == "rne")

    def register_values(self):
        """The read-only description registers: name -> value."""
        values = {"GEOMETRY": self.geometry(), "FORMATS": self.formats(),
                  "ACC": self.acc_word(), "DEPTH": self.depth}
        return {n: v for n, v in values.items() if n in self.registers}

    def elaborate(self, platform):
        m = Module()
        ws = self.dataflow == "weight_stationary"
        R, C, H, k, K_MAX = self.rows, self.cols, self.tile_rows, self.k, self.max_k
        fb, T = self._fb, self.a_tiles
        m.submodules.array = arr = SystolicArray(R, C, self.fmt_a, self.fmt_b,
                                                 dataflow=self.dataflow, acc=self.acc,
                                                 depth=self.depth)
        m.submodules.seq = seq = GemmSequencer(self.dataflow, R, k, K_MAX, depth=self.depth)
        bus, regs = self.bus, {n: r.index for n, r in self.registers.items()}

        K = Signal(range(K_MAX + 1))
        a_tile = Signal(range(T))               # A_TILE: the A tile START reads
        busy, done = Signal(), Signal()
        busy_cycles, stall_cycles = Signal(32), Signal(32)
        m.d.comb += self.busy.eq(busy)

        # ---- operand memories: one 32-bit memory per lane, bus writes, reads at the
        # sequencer's indices (registers: no logic before a read address) whenever the
        # prefetch queue has room; the queue feeds the array, so the array's ready never
        # reaches a memory address. Reads take two cycles (on ECP5 the second is the block
        # RAM's output register: no logic and no long route after its clock-to-out).
        p = seq.step.payload

        def lane_mems(name, lanes_log, depth, rd_index, region):
            return lane_memories(m, bus, busy, name, lanes_log, depth, rd_index,
                                 REGION[region])

        if ws:
            NB, PB = K_MAX // k, self.passes_per_block
            a_bits = lane_mems("a", self.la, NB * PB * H, p.a, "a")
            as_bits = lane_mems("as", 0, NB * H, p.a_scale, "a_scale")
            b_bits = lane_mems("b", self.lb, K_MAX, p.b, "b")
            bs_bits = lane_mems("bs", self.lbs, NB, p.b_scale, "b_scale")
        else:
            rk = p.k
            ks = rk[(k - 1).bit_length():] if K_MAX > k else Const(0, 0)
            a_bits = lane_mems("a", self.la, K_MAX * T, Cat(rk, a_tile), "a")
            as_bits = lane_mems("as", self.las, K_MAX // k * T, Cat(ks, a_tile), "a_scale")
            b_bits = lane_mems("b", self.lb, K_MAX, rk, "b")
            bs_bits = lane_mems("bs", self.lbs, K_MAX // k, ks, "b_scale")

        # the array transfer: the read data, the sequencer's flags delayed alike
        flags = {f: delayed(m, getattr(p, f), 2, f) for f in seq.flags}
        step = Signal(arr.in_layout)
        wf, wsf = ("w", "w_scale") if ws else ("b", "b_scale")
        if ws:      # padding past the block: weights of +0
            pad = delayed(m, p.pad, 2, "pad")
            zb = Const(zero_code(fb), fb.element.bits).replicate(C)
            b_bits = Mux(pad, zb, b_bits[:C * fb.element.bits])
        for name, bits in (("a", a_bits), ("a_scale", as_bits), (wf, b_bits),
                           (wsf, bs_bits)):
            field = getattr(step, name)
            m.d.comb += field.eq(bits[:len(Cat(field))])
        for f, v in flags.items():
            m.d.comb += getattr(step, f).eq(v)

        issue = Signal()
        room = Signal()                         # the prefetch queue has room (see below)
        inflight = Signal()                     # a read issued last cycle
        loaded = Signal()                       # the read before: its data is out now
        m.d.sync += [inflight.eq(issue), loaded.eq(inflight)]
        m.submodules.queue = queue = SyncFIFOBuffered(width=len(Cat(step)),
                                                      depth=QUEUE_DEPTH)
        m.d.comb += [
            seq.step.ready.eq(room),
            issue.eq(seq.step.valid & room),
            queue.w_data.eq(step),
            queue.w_en.eq(loaded),
            arr.i.payload.eq(queue.r_data),
            arr.i.valid.eq(queue.r_rdy),
            queue.r_en.eq(arr.i.ready),
        ]
        # room for this read and those in flight: level + inflight + loaded <= depth - 3
        # after it. The test is a flag register, one cycle old: the claim grows by at
        # most one read a cycle, so a claim of at most depth - 4 a cycle ago leaves room
        # now (and the queue keeps up with a read every cycle: its claim settles at 4 when
        # the array takes a step every cycle)
        m.d.sync += room.eq(queue.level + inflight + loaded <= QUEUE_DEPTH - 4)

        # ---- results: one memory per column, a tile's rows deep; special flags per row
        out_row = Signal(range(H + 1))
        m.d.comb += arr.o.ready.eq(1)
        c_reads, special = result_memories(m, bus, arr.o, out_row, H, self.acc.width,
                                           self.lw, self.lc)

        # ---- control
        writable = {regs["K"]: K, **({regs["A_TILE"]: a_tile} if T > 1 else {})}
        reg_writes(m, bus, busy, writable)
        start = start_strobe(m, bus, regs["START"], busy)
        m.d.comb += [seq.start.eq(start), seq.K.eq(K)]
        with m.If(start):
            m.d.sync += [busy.eq(1), done.eq(0), out_row.eq(0)]
        with m.If(arr.o.valid):
            m.d.sync += out_row.eq(out_row + 1)
            with m.If(out_row == H - 1):
                m.d.sync += [busy.eq(0), done.eq(1)]
        telemetry(m, busy, queue.r_rdy, arr.i.ready, cycles=busy_cycles,
                  stalled=stall_cycles)

        live = {"K": K, "STATUS": Cat(busy, done), "BUSY_CYCLES": busy_cycles,
                "STALL_CYCLES": stall_cycles, "A_TILE": a_tile, **self.register_values()}
        words = {r.index: live[n] for n, r in self.registers.items() if r.access != "W"}
        bus_reads(m, bus, words, c_reads, special, self.lw, self.lc)
        return m
