"""The SoC's GEMM unit: a systolic array (either dataflow) and the GEMM sequencer behind
banked operand memories and result memories, on the word bus.

One START computes one output tile ``C = A @ B`` (``rows x cols`` output-stationary,
``depth x cols`` weight-stationary) over ``K`` (a multiple of the block size, at most
``max_k``); the host driver tiles larger M and N over it. An output-stationary unit may
also hold several B and C tiles, a program sequencer (:mod:`mxhw.soc.program`, the
instructions of :mod:`mxhw.soc.isa`) that runs whole layers from tile to tile, and the
activation path (:mod:`mxhw.soc.outpath`) that re-quantises a layer's results into the A
memories for the next layer. The registers are
:data:`~mxhw.soc.regmap.REGISTERS`; the operand and result regions and their layouts are
specified in ``soc/PROTOCOL.md`` ("GEMM unit address map").
"""

from types import SimpleNamespace

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
from .ascale import entry_bits, moded, split_entries
from .bus import BusSignature
from .gemv_link import GemvLink, GemvPort
from .isa import WORDS
from .outpath import OutPath
from .program import ProgramSequencer
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


def unit_format(name, fmt, dataflow="output_stationary"):
    """A GEMM unit's operand format ``fmt`` by its golden name (aliases resolved through
    ``golden.formats.get``): one of :data:`~mxhw.soc.regmap.FORMAT_IDS`. A format with
    element modes per block (MXSF) is an output-stationary unit's ``fmt_a`` (or
    ``out_fmt``) only: its A-scale memory holds the modes (:mod:`mxhw.soc.ascale`)."""
    canon = golden.formats.get(fmt).name
    if canon not in FORMAT_IDS:
        raise ValueError(f"{name} must be one of {', '.join(FORMAT_IDS)} (the GEMM unit's "
                         f"formats), not {fmt!r}")
    if isinstance(golden.formats.get(canon).block, tuple):
        raise ValueError(f"{name}={fmt!r} has 2-D tiles: it is the tile unit's format "
                         f"(mxhw.soc.tileunit, fmt_a = fmt_b = {canon!r}), not this unit's")
    if moded(golden.formats.get(canon)) and (name not in ("fmt_a", "out_fmt")
                                             or dataflow != "output_stationary"):
        raise ValueError(f"{name}={fmt!r}: a format with block modes is an output-stationary "
                         f"unit's fmt_a only (its A-scale memory holds the modes), not "
                         f"{name} of a {dataflow} unit")
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
    b_tiles, c_tiles : int
        Output-stationary: B tiles (``max_k x cols``, selected by ``B_TILE``) and C tiles
        (``rows x cols`` results) the memories hold (powers of two, 1..32768). A host
        START reads B tile ``B_TILE`` and writes C tile 0.
    prog_words : int
        Output-stationary: program memory words (0: no sequencer; else a power of two,
        4..65536; :mod:`mxhw.soc.isa`, ``docs/isa.md``).
    out_fmt : str or None
        Output-stationary with a sequencer: the activation path's format (must be
        ``fmt_a``: it writes the A memories; ``cols`` must divide 32 and ``acc.width`` be
        at most 53); None: no activation path.
    gemv : tuple or None
        With a sequencer: ``(pes, max_rows, max_cols)`` of a BitMoD GEMV unit linked to it
        (the ``gemv`` port, :mod:`mxhw.soc.gemv_link`; ``fmt_a`` its 8-bit activation
        format, ``cols`` dividing 32): programs run GEMV instructions.

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
                 dataflow="output_stationary", depth=None, b_tiles=1, c_tiles=1,
                 prog_words=0, out_fmt=None, gemv=None):
        check_choice("dataflow", dataflow, tuple(DATAFLOW_IDS))
        fmt_a, fmt_b = (unit_format("fmt_a", fmt_a, dataflow),
                        unit_format("fmt_b", fmt_b, dataflow))
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
        check_pow2("b_tiles", b_tiles, 1, 1 if ws else 1 << 15)
        check_pow2("c_tiles", c_tiles, 1, 1 if ws else 1 << 15)
        if prog_words:
            if ws:
                raise ValueError(f"prog_words applies to the output-stationary dataflow "
                                 f"only, not {dataflow!r} (leave it 0)")
            check_pow2("prog_words", prog_words, WORDS * 2, 1 << 16)
        if out_fmt is not None:
            out_fmt = unit_format("out_fmt", out_fmt)
            if out_fmt != fmt_a or not prog_words:
                raise ValueError(f"out_fmt must be fmt_a ({fmt_a!r}: the activation path "
                                 f"writes the A memories) and needs a program sequencer "
                                 f"(prog_words > 0); got out_fmt={out_fmt!r}, "
                                 f"prog_words={prog_words}")
            check_pow2("cols", cols, 1, 32)
            check_int("acc.width", acc.width, 2, 53)
        if gemv is not None:
            if not prog_words or fa.element.bits != 8 or 32 % cols or len(gemv) != 3:
                raise ValueError(f"gemv=(pes, max_rows, max_cols) needs a program sequencer, "
                                 f"8-bit fmt_a and cols dividing 32; got gemv={gemv!r}, "
                                 f"prog_words={prog_words}, fmt_a={fmt_a!r}, cols={cols}")
            check_pow2("gemv max_rows", gemv[1], 32)
            check_pow2("gemv max_cols", gemv[2], 32)
        self.gemv_geom = gemv
        self.b_tiles, self.c_tiles, self.prog_words, self.out_fmt = (b_tiles, c_tiles,
                                                                      prog_words, out_fmt)
        self.rows, self.cols, self.fmt_a, self.fmt_b = rows, cols, fmt_a, fmt_b
        self.acc, self.max_k, self.k, self.a_tiles = acc, max_k, k, a_tiles
        self.dataflow, self.depth = dataflow, depth
        self._fa, self._fb = fa, fb
        self.registers = registers_for(dataflow)
        self.la = lanes_log2(rows * fa.element.bits)
        self.las = 0 if ws else lanes_log2(rows * entry_bits(fa))
        self.lb = lanes_log2(cols * fb.element.bits)
        self.lbs = lanes_log2(cols * fb.scale.bits)
        self.lw = lanes_log2(acc.width)
        self.lc = (cols - 1).bit_length()
        ports = {"bus": In(BusSignature(UNIT_ADDR_BITS)), "busy": Out(1)}
        if gemv is not None:
            ports["gemv"] = Out(GemvPort(gemv[0], acc.width))
        super().__init__(ports)

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

    def caps(self):
        lg = lambda n: n.bit_length() - 1   # noqa: E731
        return encode("CAPS", log2_b_tiles=lg(self.b_tiles), log2_c_tiles=lg(self.c_tiles),
                      log2_prog_words=lg(self.prog_words) if self.prog_words else 0,
                      out_fmt=FORMAT_IDS[self.out_fmt] if self.out_fmt else 0,
                      gemv=self.gemv_geom is not None)

    def register_values(self):
        """The read-only description registers: name -> value."""
        values = {"GEOMETRY": self.geometry(), "FORMATS": self.formats(),
                  "ACC": self.acc_word(), "DEPTH": self.depth, "CAPS": self.caps()}
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

        BT, CT, NI = self.b_tiles, self.c_tiles, self.prog_words // WORDS
        K = Signal(range(K_MAX + 1))
        a_tile = Signal(range(T))               # A_TILE: the A tile START reads
        b_tile = Signal(range(BT))              # B_TILE
        c_tile = Signal(range(CT))              # the C tile results go to
        c_wen = Signal(init=1)                  # results to C (else to the activation path)
        slot = Signal(range(32))                # the activation path's column tile
        busy, done = Signal(), Signal()         # a tile
        busy_any = Signal()                     # a tile or a program: the bus waits
        busy_cycles, stall_cycles = Signal(32), Signal(32)
        m.d.comb += self.busy.eq(busy_any)
        prog = out = None
        if NI:
            g = self.gemv_geom
            m.submodules.prog = prog = ProgramSequencer(
                R, C, K_MAX, T, BT, CT, NI, FORMAT_IDS[self.out_fmt] if self.out_fmt else 0,
                g[1] // k if g else 0, g[2] if g else 0)
            m.d.comb += busy_any.eq(busy | prog.busy)
        else:
            m.d.comb += busy_any.eq(busy)
        if self.out_fmt:
            m.submodules.out = out = OutPath(R, C, self.out_fmt, self.acc.width,
                                             self.acc.frac_bits)
        peek = Signal(32)
        link = None
        if self.gemv_geom is not None:
            m.submodules.gemv_link = link = GemvLink(
                R, C, K_MAX, T, 32 << self.la, entry_bits(self._fa), self.gemv_geom[0],
                self.acc.width)
            wiring.connect(m, link.gemv, wiring.flipped(self.gemv))

        # ---- operand memories: one 32-bit memory per lane, bus writes, reads at the
        # sequencer's indices (registers: no logic before a read address) whenever the
        # prefetch queue has room; the queue feeds the array, so the array's ready never
        # reaches a memory address. Reads take two cycles (on ECP5 the second is the block
        # RAM's output register: no logic and no long route after its clock-to-out).
        p = seq.step.payload

        def lane_mems(name, lanes_log, depth, rd_index, region, alt=None):
            return lane_memories(m, bus, busy_any, name, lanes_log, depth, rd_index,
                                 REGION[region], alt)

        if ws:
            NB, PB = K_MAX // k, self.passes_per_block
            a_bits = lane_mems("a", self.la, NB * PB * H, p.a, "a")
            as_bits = lane_mems("as", 0, NB * H, p.a_scale, "a_scale")
            b_bits = lane_mems("b", self.lb, K_MAX, p.b, "b")
            bs_bits = lane_mems("bs", self.lbs, NB, p.b_scale, "b_scale")
        else:
            rk = p.k
            ks = rk[(k - 1).bit_length():] if K_MAX > k else Const(0, 0)
            a_rd, as_rd, a_alt, as_alt = Cat(rk, a_tile), Cat(ks, a_tile), None, None
            if link is not None:
                # a GEMV row job copies an A row into the GEMV unit (gemv_link)
                lk, lt = link.rd_k, link.rd_tile[:len(a_tile)]
                a_rd = Mux(link.busy, Cat(lk, lt), a_rd)
                as_rd = Mux(link.busy, Cat(lk[(k - 1).bit_length():] if K_MAX > k
                                           else Const(0, 0), lt), as_rd)
            if out is not None:
                # the activation path writes A tile dst, K block out_kb; PEEK reads back
                tb, kbb = (T - 1).bit_length(), (K_MAX // k - 1).bit_length()
                dst, okb = prog.dst_tile[:tb], prog.out_kb[:kbb]
                a_alt = (out.w_en, Cat(out.w_k, okb, dst), out.w_codes)
                as_alt = (out.s_en, Cat(okb, dst), out.s_codes)
                a_rd = Mux(busy_any, a_rd, peek[self.la:31])
                as_rd = Mux(busy_any, as_rd, peek[self.las:31])
            a_bits = lane_mems("a", self.la, K_MAX * T, a_rd, "a", a_alt)
            as_bits = lane_mems("as", self.las, K_MAX // k * T, as_rd, "a_scale", as_alt)
            b_bits = lane_mems("b", self.lb, K_MAX * BT, Cat(rk, b_tile), "b")
            bs_bits = lane_mems("bs", self.lbs, K_MAX // k * BT, Cat(ks, b_tile), "b_scale")

        # the array transfer: the read data, the sequencer's flags delayed alike
        flags = {f: delayed(m, getattr(p, f), 2, f) for f in seq.flags}
        step = Signal(arr.in_layout)
        wf, wsf = ("w", "w_scale") if ws else ("b", "b_scale")
        if ws:      # padding past the block: weights of +0
            pad = delayed(m, p.pad, 2, "pad")
            zb = Const(zero_code(fb), fb.element.bits).replicate(C)
            b_bits = Mux(pad, zb, b_bits[:C * fb.element.bits])
        a_scales, a_modes = (as_bits, None) if ws else split_entries(as_bits, self._fa, R)
        for name, bits in (("a", a_bits), ("a_scale", a_scales), (wf, b_bits),
                           (wsf, bs_bits), ("a_mode", a_modes)):
            if bits is None:
                continue
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
        res, res_row, res_tile, res_en = arr.o, out_row, c_tile, c_wen
        if link is not None:
            # the GEMV link's results share the result memories (and the activation path)
            W = self.acc.width
            m.d.comb += [link.a_data.eq(a_bits), link.s_data.eq(as_bits[:len(link.s_data)]),
                         link.go.eq(prog.v_go), link.tile.eq(prog.a_tile),
                         link.row.eq(prog.v_row), link.k_blocks.eq(prog.K[5:]),
                         link.wblk.eq(prog.v_wblk), prog.v_busy.eq(link.busy)]
            pay = Signal(arr.o.payload.shape())
            with m.If(link.e_valid):
                m.d.comb += [pay.data[j].eq(link.e_data[j * W:(j + 1) * W]) for j in range(C)]
                m.d.comb += [pay.special[j].eq(link.e_nan[j]) for j in range(C)]
            with m.Else():
                m.d.comb += pay.eq(arr.o.payload)
            res = SimpleNamespace(valid=arr.o.valid | link.e_valid, payload=pay)
            ev = link.e_valid
            res_row = Mux(ev, prog.v_row, out_row)
            res_tile = Mux(ev, prog.c_tile + link.e_slot, c_tile)
            res_en = Mux(ev, prog.to_c, c_wen)
        c_reads, special = result_memories(m, bus, res, res_row, H, self.acc.width,
                                           self.lw, self.lc, res_tile, CT, res_en)

        # ---- control
        writable = {regs["K"]: K, **({regs["A_TILE"]: a_tile} if T > 1 else {}),
                    **({regs["B_TILE"]: b_tile} if BT > 1 else {}),
                    **({regs["PEEK"]: peek} if out is not None else {})}
        reg_writes(m, bus, busy_any, writable)
        start = start_strobe(m, bus, regs["START"], busy_any)
        tile_start = Signal()
        tile_done = Signal()
        m.d.comb += [seq.start.eq(tile_start), seq.K.eq(K),
                     tile_done.eq(arr.o.valid & (out_row == H - 1))]
        m.d.comb += tile_start.eq(start | (prog.go if prog is not None else 0))
        with m.If(start):
            m.d.sync += [c_tile.eq(0), c_wen.eq(1)]
        with m.If(tile_start):
            m.d.sync += [busy.eq(1), done.eq(0), out_row.eq(0)]
        with m.If(arr.o.valid):
            m.d.sync += out_row.eq(out_row + 1)
        with m.If(tile_done):
            m.d.sync += [busy.eq(0), done.eq(1)]
        extra = ()
        if prog is not None:
            pstart = start_strobe(m, bus, regs["PROG_START"], busy_any)
            m.d.comb += [prog.start.eq(pstart), prog.tile_done.eq(tile_done),
                         prog.instr.eq(lane_mems("prog", 1, NI, prog.pc, "prog")),
                         prog.cyc_addr.eq(bus.addr),
                         prog.out_busy.eq(out.busy if out is not None else 0)]
            with m.If(prog.load):
                m.d.sync += [K.eq(prog.K), a_tile.eq(prog.a_tile), b_tile.eq(prog.b_tile),
                             c_tile.eq(prog.c_tile), c_wen.eq(prog.to_c),
                             slot.eq(prog.slot)]
            # a finished program leaves A_TILE and B_TILE at 0 (what a host START expects
            # after a reset)
            was = Signal()
            m.d.sync += was.eq(prog.busy)
            with m.If(was & ~prog.busy):
                m.d.sync += [a_tile.eq(0), b_tile.eq(0)]
            extra = ((REGION["prog_cycles"], prog.cyc_data),)
        peek_data = Signal(32)
        if out is not None:
            m.d.comb += [out.start.eq(prog.out_go), out.col_en.eq(res.valid & ~res_en),
                         out.col_row.eq(res_row),
                         out.col_slot.eq(Mux(link.e_valid, link.e_slot, slot)
                                         if link is not None else slot),
                         out.col_data.eq(Cat(*res.payload.data))]
            sel = Mux(peek[31], as_bits.word_select(peek[:self.las], 32) if self.las
                      else as_bits[:32],
                      a_bits.word_select(peek[:self.la], 32) if self.la else a_bits[:32])
            m.d.sync += peek_data.eq(sel)
        telemetry(m, busy, queue.r_rdy, arr.i.ready, cycles=busy_cycles,
                  stalled=stall_cycles)

        live = {"K": K, "STATUS": Cat(busy, done), "BUSY_CYCLES": busy_cycles,
                "STALL_CYCLES": stall_cycles, "A_TILE": a_tile, "B_TILE": b_tile,
                "PEEK_DATA": peek_data, **self.register_values()}
        if prog is not None:
            live.update(PROG_STATUS=Cat(prog.busy, prog.done, Const(0, 6), prog.error,
                                        prog.fail_pc),
                        PROG_CYCLES=prog.run_cycles)
        else:
            live.update(PROG_STATUS=0, PROG_CYCLES=0)
        words = {r.index: live[n] for n, r in self.registers.items() if r.access != "W"}
        bus_reads(m, bus, words, c_reads, special, self.lw, self.lc, extra)
        return m
