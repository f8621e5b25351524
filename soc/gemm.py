"""The SoC's compute unit: a systolic array behind banked scratchpads, on the word bus.

One START computes one output tile ``C = A @ B`` of ``rows x cols`` over ``K`` (a multiple
of the block size, at most ``max_k``); the host driver tiles larger M and N over it.

Address map inside the unit (byte offsets from :data:`GEMM_BASE`; every region is
word-addressed, regions 4 MiB apart):

========== ===================================================================
offset     contents
========== ===================================================================
0x000000   registers: +0x0 K (R/W), +0x4 START (W 1) / STATUS (R: bit0 busy, bit1
           done), +0x8 BUSY_CYCLES, +0xC STALL_CYCLES, +0x10 GEOMETRY
           (rows | cols << 8 | log2(max_k) << 16), +0x14 FORMATS (id_a | id_b << 8),
           +0x18 ACC (width | frac_bits << 8 | saturate << 16), +0x1C A_TILE (R/W: the A
           tile the next START reads, 0 .. a_tiles-1). Writes to K, A_TILE and START
           take effect on the cycle after the bus write (their decode is registered);
           K and A_TILE writes while the unit is busy are ignored
0x400000   A codes: word ``(t * max_k + k) << LA | lane`` for A tile ``t``: lane ``l``
           holds bits ``32l..32l+31`` of the concatenated codes ``A[0..rows-1, k]`` of
           that tile (row 0 in the low bits)
0x800000   A scales: word ``(t * max_k / block + kb) << LAS | lane`` for block ``kb``
           of tile ``t``: the scale codes of rows ``0..rows-1``, concatenated the same way
0xC00000   B codes: word ``k << LB | lane`` for ``B[k, 0..cols-1]``
0x1000000  B scales: word ``kb << LBS | lane``
0x1400000  C results (read only): word ``(i << LC | j) << LW | w``: bits ``32w..`` of
           the signed ``acc.width``-bit result ``C[i, j]`` (sign-extended)
0x1800000  C special flags (read only): word ``i``: bit ``j`` set where ``C[i, j]`` is NaN
========== ===================================================================

``LX`` is ``ceil(log2(number of 32-bit lanes))``; unused lanes ignore writes. The A
memories hold ``a_tiles`` tiles (row blocks of A, each ``rows x max_k``): a host that
loads several row blocks once and then streams B past them sends each operand once
(``GEOMETRY`` bits 28-31: ``log2(a_tiles)``; bit 24 is 0, the output-stationary
dataflow). The operand
regions are write-only (they read as 0); writes to them while the unit is busy are ignored.
"""

import functools
import math
import operator

from amaranth import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .. import golden
from ..mem import BlockRAM
from ..systolic import SystolicArray
from .bus import word_select

__all__ = ["GemmUnit", "GEMM_BASE", "FORMAT_IDS", "REGION", "GEMM_REGS", "lanes_log2",
           "check_unit_acc"]

GEMM_BASE = 0x2000_0000
REGION = {"regs": 0, "a": 1, "a_scale": 2, "b": 3, "b_scale": 4, "c": 5, "c_special": 6}
REGION_SHIFT = 20  # word-address bit of the region number (4 MiB regions)
GEMM_REGS = {"K": 0, "START": 1, "STATUS": 1, "BUSY_CYCLES": 2, "STALL_CYCLES": 3,
             "GEOMETRY": 4, "FORMATS": 5, "ACC": 6, "A_TILE": 7}

#: stable ids of the block formats a SoC can be built with (the FORMATS register)
FORMAT_IDS = {"mxfp8_e4m3": 1, "mxfp8_e5m2": 2, "mxfp6_e3m2": 3, "mxfp6_e2m3": 4,
              "mxfp4_e2m1": 5, "mxint8": 6}


def lanes_log2(bits):
    """log2 of the number of 32-bit lanes (a power of two) holding ``bits`` bits."""
    return max(0, math.ceil(math.log2(math.ceil(bits / 32))))


def check_unit_acc(acc):
    """Validate a GEMM unit's ``acc``: fixed-point accumulation only. The units' ACC
    register and result words describe ``golden.fixed(...)`` results (and
    :class:`~mxhw.soc.top.SoCConfig` builds only those); the arrays' ``golden.arith.FP32``
    mode is not offered through the SoC."""
    if not isinstance(acc, golden.arith.Accumulation):
        raise TypeError(f"acc must be a golden.arith.Accumulation, not {acc!r}")
    if acc.mode != "fixed":
        raise ValueError(f"acc must be fixed-point accumulation (golden.fixed(...)) for the "
                         f"SoC's GEMM units, not {acc.mode!r}: their ACC register and result "
                         f"words hold fixed-point results")


def _bus_slave():
    return wiring.Signature({
        "addr": In(30), "w_data": In(32), "w_en": In(1), "r_en": In(1), "r_data": Out(32),
    })


class GemmUnit(wiring.Component):
    """Systolic-array GEMM tile unit on the SoC bus.

    Parameters
    ----------
    rows, cols : int
        Array shape (``cols`` <= 32).
    fmt_a, fmt_b : str
        Block formats, keys of :data:`FORMAT_IDS`.
    acc : golden.arith.Accumulation
        ``golden.fixed(...)``: the array's cross-block accumulation (fixed-point only,
        :func:`check_unit_acc`).
    max_k : int
        Largest K per tile (a power of two, a multiple of the block size).
    a_tiles : int
        A tiles the A memories hold (a power of two, default 1), selected by ``A_TILE``.

    Members
    -------
    bus : In(bus signature)
        Word bus slave (word addresses relative to the unit; read data one cycle later,
        0 in the cycles after no read).
    busy : Out(1)

    Golden twin: ``golden.gemm(qa, qb, acc)`` on one ``rows x cols`` tile.

    Raises
    ------
    TypeError, ValueError
        Formats not in ``FORMAT_IDS``; ``cols``, ``max_k`` or ``a_tiles`` out of range;
        ``acc`` not a fixed-point accumulation (:func:`check_unit_acc`).
    """

    def __init__(self, rows, cols, fmt_a, fmt_b, acc, max_k=1024, a_tiles=1):
        for name, f in (("fmt_a", fmt_a), ("fmt_b", fmt_b)):
            if f not in FORMAT_IDS:
                raise ValueError(f"{name} must be one of {', '.join(FORMAT_IDS)}, not {f!r}")
        if not isinstance(cols, int) or not 1 <= cols <= 32:
            raise ValueError(f"cols must be an integer in [1, 32], not {cols!r}")
        self._array_args = (rows, cols, fmt_a, fmt_b)
        fa, fb = golden.formats.get(fmt_a), golden.formats.get(fmt_b)
        k = fa.block_size
        if (not isinstance(max_k, int) or max_k < k or max_k % k or max_k & (max_k - 1)):
            raise ValueError(f"max_k must be a power of two and a multiple of {k}, "
                             f"not {max_k!r}")
        if (not isinstance(a_tiles, int) or isinstance(a_tiles, bool) or a_tiles < 1
                or a_tiles & (a_tiles - 1) or a_tiles > 1 << 15):
            raise ValueError(f"a_tiles must be a power of two in [1, 32768], not {a_tiles!r}")
        check_unit_acc(acc)
        self.a_tiles = a_tiles
        self.rows, self.cols, self.fmt_a, self.fmt_b = rows, cols, fmt_a, fmt_b
        self.acc, self.max_k, self.k = acc, max_k, k
        self.bits_a, self.bits_b = fa.element.bits, fb.element.bits
        self.sbits_a, self.sbits_b = fa.scale.bits, fb.scale.bits
        self.la = lanes_log2(rows * self.bits_a)
        self.las = lanes_log2(rows * self.sbits_a)
        self.lb = lanes_log2(cols * self.bits_b)
        self.lbs = lanes_log2(cols * self.sbits_b)
        self.lw = lanes_log2(acc.width)
        self.lc = max(0, math.ceil(math.log2(cols)))
        super().__init__({"bus": In(_bus_slave()), "busy": Out(1)})

    def geometry(self):
        return (self.rows | self.cols << 8 | (self.max_k.bit_length() - 1) << 16
                | (self.a_tiles.bit_length() - 1) << 28)

    def formats(self):
        return FORMAT_IDS[self.fmt_a] | FORMAT_IDS[self.fmt_b] << 8

    def acc_word(self):
        return (self.acc.width | (self.acc.frac_bits & 0xFF) << 8
                | (self.acc.overflow == "saturate") << 16
                | (self.acc.rounding == "rne") << 17)

    def elaborate(self, platform):
        m = Module()
        rows, cols, K_MAX, kb = self.rows, self.cols, self.max_k, self.k
        m.submodules.array = arr = SystolicArray(*self._array_args, acc=self.acc)
        bus = self.bus
        region = bus.addr[REGION_SHIFT:REGION_SHIFT + 4]
        index = bus.addr[:REGION_SHIFT]

        K = Signal(range(K_MAX + 1))
        busy, done = Signal(), Signal()
        busy_cycles, stall_cycles = Signal(32), Signal(32)
        m.d.comb += self.busy.eq(busy)

        # ---- operand memories: one 32-bit memory per lane, bus writes, sequencer reads.
        # The sequencer reads K step ``rk`` (a register: no logic before the read address)
        # whenever the prefetch queue has room, and the queue feeds the array: the array's
        # ready never reaches a memory address. Reads take two cycles (on ECP5 the second
        # is the block RAM's output register: no logic and no long route after a block
        # RAM's clock-to-out).
        rk = Signal(range(K_MAX + 1))       # next K step to read
        left = Signal(range(K_MAX + 1))     # K steps still to read
        more = Signal()                     # left != 0, a flag register
        room = Signal()                     # the prefetch queue has room (see below)
        issue = Signal()                    # read K step rk this cycle
        inflight = Signal()                 # a read issued last cycle
        last_d = Signal()                   # ... and it was the tile's last K step
        loaded = Signal()                   # the read before: its data is out now
        last_q = Signal()                   # ... and it was the tile's last K step

        def lane_mems(name, lanes_log, depth, rd_index, region_id):
            return lane_memories(m, bus, region, index, busy, name, lanes_log, depth,
                                 rd_index, region_id)

        rk_i = rk[:max(1, (K_MAX - 1).bit_length())]
        a_tile = Signal(range(self.a_tiles))     # A_TILE: the A tile START reads
        T = self.a_tiles
        a_bits = lane_mems("a", self.la, K_MAX * T, Cat(rk_i, a_tile), REGION["a"])
        as_bits = lane_mems("as", self.las, K_MAX // kb * T,
                            Cat(rk_i[(kb - 1).bit_length():], a_tile) if K_MAX > kb else a_tile,
                            REGION["a_scale"])
        b_bits = lane_mems("b", self.lb, K_MAX, rk_i, REGION["b"])
        bs_bits = lane_mems("bs", self.lbs, K_MAX // kb, rk_i // kb, REGION["b_scale"])

        step = Cat(a_bits[:rows * self.bits_a], as_bits[:rows * self.sbits_a],
                   b_bits[:cols * self.bits_b], bs_bits[:cols * self.sbits_b], last_q)
        # the memories' read data goes straight into the queue
        m.d.sync += [loaded.eq(inflight), last_q.eq(last_d)]
        # depth 7: the buffered FIFO's output register and the two reads in flight leave
        # room to issue a read every cycle
        m.submodules.queue = queue = SyncFIFOBuffered(width=len(step), depth=7)
        m.d.comb += [
            issue.eq(busy & more & room),
            queue.w_data.eq(step),
            queue.w_en.eq(loaded),
            arr.i.payload.eq(queue.r_data),
            arr.i.valid.eq(queue.r_rdy),
            queue.r_en.eq(arr.i.ready),
        ]
        # room for this read and those in flight: level + inflight + loaded <= depth - 3
        # after it. The test is a flag register, one cycle old: the claim (level +
        # inflight + loaded) grows by at most one read a cycle, so a claim of at most 3
        # a cycle ago leaves room now (the queue still keeps up with a read every cycle:
        # its claim settles at 3 when the array takes a step every cycle)
        m.d.sync += room.eq(queue.level + inflight + loaded <= 3)
        m.d.sync += [inflight.eq(issue), last_d.eq(left == 1)]
        with m.If(issue):
            m.d.sync += [rk.eq(rk + 1), left.eq(left - 1), more.eq(left != 1)]

        # ---- results: one memory per column, rows deep; special flags per row
        out_row = Signal(range(rows + 1))
        m.d.comb += arr.o.ready.eq(1)
        c_reads = []
        for j in range(cols):
            # power-of-two depths: every bus index reads inside the memory (a simulator
            # checks reads; the extra words cost no block RAM)
            mem = Memory(shape=self.acc.width, depth=1 << (rows - 1).bit_length(), init=[])
            m.submodules[f"c{j}"] = mem
            wp, rp = mem.write_port(), mem.read_port()
            m.d.comb += [wp.addr.eq(out_row), wp.data.eq(arr.o.payload.data[j]),
                         wp.en.eq(arr.o.valid), rp.addr.eq(index[self.lw + self.lc:])]
            c_reads.append(rp.data)
        spec = Memory(shape=cols, depth=1 << (rows - 1).bit_length(), init=[])
        m.submodules.special = spec
        swp, srp = spec.write_port(), spec.read_port()
        m.d.comb += [swp.addr.eq(out_row), swp.data.eq(Cat(*arr.o.payload.special)),
                     swp.en.eq(arr.o.valid), srp.addr.eq(index)]

        # ---- control
        reg_writes(m, bus, region, index, busy,
                   {GEMM_REGS["K"]: K, **({GEMM_REGS["A_TILE"]: a_tile} if T > 1 else {})})
        start = start_strobe(m, bus, region, index, GEMM_REGS["START"], busy)
        with m.If(start):
            m.d.sync += [busy.eq(1), done.eq(0), rk.eq(0), left.eq(K), more.eq(K != 0),
                         out_row.eq(0)]
        with m.If(arr.o.valid):
            m.d.sync += out_row.eq(out_row + 1)
            with m.If(out_row == rows - 1):
                m.d.sync += [busy.eq(0), done.eq(1)]
        count_cycles(m, busy, queue.r_rdy & ~arr.i.ready, busy_cycles, stall_cycles)

        regs = {GEMM_REGS["K"]: K, GEMM_REGS["STATUS"]: Cat(busy, done),
                GEMM_REGS["BUSY_CYCLES"]: busy_cycles, GEMM_REGS["STALL_CYCLES"]: stall_cycles,
                GEMM_REGS["GEOMETRY"]: self.geometry(), GEMM_REGS["FORMATS"]: self.formats(),
                GEMM_REGS["ACC"]: self.acc_word(), GEMM_REGS["A_TILE"]: a_tile}
        bus_reads(m, bus, region, index, regs, c_reads, srp.data, self.lw, self.lc)
        return m


def lane_memories(m, bus, region, index, busy, name, lanes_log, depth, rd_index,
                  region_id):
    """A GEMM unit's operand memories for one region: ``2**lanes_log`` 32-bit
    :class:`~mxhw.mem.BlockRAM` lanes of ``depth`` words (read latency 2), written by the
    bus (lane = the index's low bits, unless ``busy``) and all read at ``rd_index``;
    returns their read data side by side."""
    words = []
    for lane in range(1 << lanes_log):
        m.submodules[f"{name}{lane}"] = mem = BlockRAM(32, max(depth, 2))
        hit = (region == region_id) & (index[:lanes_log] == lane) & ~busy
        m.d.comb += [mem.w_addr.eq(index[lanes_log:]), mem.w_data.eq(bus.w_data),
                     mem.w_en.eq(bus.w_en & hit), mem.r_addr.eq(rd_index)]
        words.append(mem.r_data)
    return Cat(*words)


def reg_writes(m, bus, region, index, busy, regs):
    """A GEMM unit's writable registers (``regs``: index -> signal), written the cycle
    after the bus write, unless the unit is busy then. The write's decode is registered:
    a flag (a write to the register region whose index is below ``2**rbits``, the
    only wide compare), the low index bits and the data; the register then meets a
    ``rbits``-bit compare, not the whole region and index (a START that follows a write on
    the next bus cycle still sees the new value: START too is acted on a cycle late)."""
    rbits = max(1, max(regs).bit_length())
    w_hit = Signal()
    w_idx = Signal(rbits)
    w_data = Signal(32)
    m.d.sync += [w_hit.eq(bus.w_en & (region == REGION["regs"]) & (index[rbits:] == 0)),
                 w_idx.eq(index[:rbits]), w_data.eq(bus.w_data)]
    for i, sig in regs.items():
        with m.If(w_hit & (w_idx == i) & ~busy):
            m.d.sync += sig.eq(w_data)


def start_strobe(m, bus, region, index, start_index, busy):
    """A GEMM unit's start: a bus write of 1 to its START register, acted on the cycle after
    the write (the address decode is registered, so it does not reach the unit's control
    registers in the bus cycle), unless the unit is busy."""
    req = Signal()
    m.d.sync += req.eq(bus.w_en & (region == REGION["regs"]) & (index == start_index)
                       & bus.w_data[0])
    start = Signal()
    m.d.comb += start.eq(req & ~busy)
    return start


def count_cycles(m, busy, stalled, busy_cycles, stall_cycles):
    """A GEMM unit's BUSY_CYCLES / STALL_CYCLES counters: cycles busy, and of those the
    cycles an operand waits for the array (``stalled``)."""
    with m.If(busy):
        m.d.sync += busy_cycles.eq(busy_cycles + 1)
        with m.If(stalled):
            m.d.sync += stall_cycles.eq(stall_cycles + 1)


def bus_reads(m, bus, region, index, regs, c_reads, special, lw, lc):
    """A GEMM unit's bus read side (data on the next cycle, 0 unless ``bus.r_en`` asked for
    a read): the registers ``regs`` (index -> value), the results (``c_reads``: one memory
    read port's data per column, addressed by the caller with ``index``; word ``w`` of
    column ``j`` at index bits ``lw`` and up, ``j`` above them) and the special flags
    (``special``)."""
    # the register words: a multiplexer on the index's low bits, registered every cycle
    # (reads have no side effects; no reset: the domain reset's wide fan-out would
    # otherwise enter the logic in front of the 32 data flip-flops)
    reg_data = Signal(32, reset_less=True)
    word, rbits = word_select(regs, index)
    m.d.sync += reg_data.eq(word)
    # the read decode, registered beside the reads as one-hot flags (a read of the register
    # region with the higher index bits zero; of each result word; of the special flags):
    # the read data is one AND-OR of the sources, no compare or multiplexer after the
    # memories' read ports
    read = bus.r_en
    sources = [(read & (region == REGION["regs"]) & (index[rbits:] == 0), reg_data),
               (read & (region == REGION["c_special"]), special)]
    c_read = read & (region == REGION["c"])
    for j, data in enumerate(c_reads):
        ext = Signal(32 << lw, name=f"c_ext{j}")    # the result, sign-extended to words
        m.d.comb += ext.eq(data.as_signed())
        for w in range(1 << lw):
            hit = c_read
            if lc:
                hit &= index[lw:lw + lc] == j
            if lw:
                hit &= index[:lw] == w
            sources.append((hit, ext.word_select(w, 32)))
    terms = []
    for i, (hit, data) in enumerate(sources):
        flag = Signal(name=f"rd_hit{i}")
        m.d.sync += flag.eq(hit)
        terms.append(flag.replicate(32) & data)
    m.d.comb += bus.r_data.eq(functools.reduce(operator.or_, terms))
