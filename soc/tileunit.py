"""The SoC's tile-format GEMM unit (MX-SAFE ``mxsf_tile``): operands stored once, in their
stored orientation, and read as stored or transposed by a run-time flag.

One tile memory holds ``slots`` matrices of up to ``max_k x max_k`` elements, one memory
entry per ``r x c`` tile (its ``r * c`` codes in ``2**LA`` 32-bit lanes of region A, its
scale code and mode in one word of region A-scale; :func:`tile_index`). The host uploads a
tensor once into a slot; every START computes one ``rows x cols`` output tile of
``op(A) @ op(B)`` with ``A`` and ``B`` any two slots (the same one too) and each read
transposed or not (the OPERANDS register). The memory is held twice (every bus write goes
to both copies): one copy answers A's reads, the other B's, so a K step reads one tile of
each every cycle (a two-read-port memory, as FPGAs build it).

Each K step reads one tile of ``op(A)``'s column ``kk`` (rows ``m0 ..``) and one of
``op(B)``'s row ``kk``: ``A[m0 + i, kk]`` down a stored column, or (transposed)
``A[kk, m0 + i]`` along a stored row; the tile's codes are picked by a multiplexer per
lane (:func:`~mxhw.mem.tilestore.tile_codes`), its scale and mode replicated over the
lanes. golden's K block of a product of tiles is ``gcd`` of ``op(A)``'s tile width and
``op(B)``'s tile height (:func:`~mxhw.systolic.tile.tile_k`): for ``mxsf_tile`` (8 x 4)
8 for ``A^T @ B`` and 4 otherwise. The array is built for the largest (8); a product of
K block 4 runs each block of 4 as 8 steps, the last 4 with codes of zero, so the array
rounds once per 4 elements as golden does (those products take twice the cycles: a
run-time block size in the array would save them).
"""

from __future__ import annotations

import functools
import math
import operator

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.hdl import unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .. import golden
from ..lib.params import check_pow2
from ..lib.signals import delay_line as delayed
from ..mem.tilestore import tile_code_bits, tile_codes
from ..systolic.array import SystolicArray
from ..systolic.driver import zero_code
from ..systolic.seq import telemetry
from ..systolic.tile import is_tile, k_block_format
from .bus import BusSignature
from .regmap import (DATAFLOW_IDS, FORMAT_IDS, REGION, UNIT_ADDR_BITS, encode, lanes_log2,
                     registers_for)
from .unit import bus_reads, lane_memories, reg_writes, result_memories, start_strobe

__all__ = ["TileGemmUnit", "check_tile_unit", "tile_unit_format", "tile_k_run", "tile_index", "tile_lanes_log2",
           "MAX_TILE_K", "MAX_SLOTS", "TILE_RAM_BITS"]

OS = "output_stationary"
#: the largest stored matrix side (elements) and number of matrix slots
MAX_TILE_K = 256
MAX_SLOTS = 16
#: the tile memory's budget (both copies): the block RAM of the largest supported board's
#: ECP5 LFE5U-85F (208 x 18 kbit)
TILE_RAM_BITS = 208 * 18 * 1024


def tile_unit_format(fmt_a, fmt_b, dataflow=OS):
    """The tile unit's format when ``fmt_a`` or ``fmt_b`` has 2-D tiles (None when neither
    has): both must be the same tile format of :data:`~mxhw.soc.regmap.FORMAT_IDS`, on
    the output-stationary dataflow. Raises ``ValueError`` otherwise."""
    fa, fb = golden.formats.get(fmt_a), golden.formats.get(fmt_b)
    if not (is_tile(fa) or is_tile(fb)):
        return None
    if fa.name != fb.name or fa.name not in FORMAT_IDS:
        tiles = ", ".join(f for f in FORMAT_IDS if is_tile(golden.formats.get(f)))
        raise ValueError(f"fmt_a={fmt_a!r}, fmt_b={fmt_b!r}: a tile format is built as the "
                         f"tile unit, with fmt_a and fmt_b the same one of: {tiles}")
    if dataflow != OS:
        raise ValueError(f"fmt {fa.name!r}: the tile unit is output-stationary only, not "
                         f"{dataflow!r}")
    return fa.name


def tile_k_run(fmt, transpose_a, transpose_b):
    """golden's K block of ``op(A) @ op(B)`` with both stored in the tile format ``fmt``
    (``r x c``): ``gcd`` of ``op(A)``'s tile width (``c``, transposed ``r``) and
    ``op(B)``'s tile height (``r``, transposed ``c``)."""
    r, c = golden.formats.get(fmt).block
    return math.gcd(r if transpose_a else c, c if transpose_b else r)


def tile_lanes_log2(fmt):
    """log2 of the 32-bit lanes one tile's codes take in region A."""
    f = golden.formats.get(fmt)
    return lanes_log2(f.block[0] * f.block[1] * tile_code_bits(f))


def tile_index(fmt, max_k, slot, ti, tj):
    """The memory entry of tile ``(ti, tj)`` (tile row, tile column) of slot ``slot``:
    ``(slot * (max_k / r) + ti) * (max_k / c) + tj`` (region A word ``index << LA | lane``,
    region A-scale word ``index``)."""
    r, c = golden.formats.get(fmt).block
    return (slot * (max_k // r) + ti) * (max_k // c) + tj


def check_tile_unit(rows, cols, fmt, acc, max_k, slots):
    """Check :class:`TileGemmUnit`'s parameters (``ValueError`` / ``TypeError`` naming the
    bad one); returns the format's canonical name."""
    from .gemm import check_unit_acc
    fmt = tile_unit_format(fmt, fmt)
    if fmt is None:
        raise ValueError("fmt must be a tile format (mxsf_tile) for the tile unit")
    check_unit_acc(acc)
    r, c = golden.formats.get(fmt).block
    g = math.gcd(r, c)
    check_pow2("rows", rows, 1, g)
    check_pow2("cols", cols, 1, g)
    check_pow2("max_k", max_k, max(r, c), MAX_TILE_K)
    check_pow2("slots", slots, 1, MAX_SLOTS)
    ram = 2 * 32 * ((1 << tile_lanes_log2(fmt)) + 1) * tile_index(fmt, max_k, slots, 0, 0)
    if ram > TILE_RAM_BITS:
        raise ValueError(f"max_k={max_k} with slots={slots}: the tile memory (two copies, "
                         f"{ram} bits) exceeds the largest board's block RAM "
                         f"({TILE_RAM_BITS} bits)")
    return fmt


class TileGemmUnit(wiring.Component):
    """Tile-format GEMM unit on the SoC bus (output-stationary).

    Parameters
    ----------
    rows, cols : int
        Array shape: powers of two dividing both tile sides (``mxsf_tile``: 1, 2 or 4), so
        a read in either orientation lies in one tile.
    fmt : str
        The tile format (:func:`tile_unit_format`; ``"mxsf_tile"``).
    acc : golden.arith.Accumulation
        ``golden.fixed(...)`` (:func:`mxhw.soc.gemm.check_unit_acc`).
    max_k : int
        The largest stored matrix side in elements (a power of two, a multiple of both
        tile sides, at most :data:`MAX_TILE_K`).
    slots : int
        Matrices the tile memory holds (a power of two, at most :data:`MAX_SLOTS`).

    Members
    -------
    bus : In(BusSignature(UNIT_ADDR_BITS))
    busy : Out(1)

    Registers: :data:`~mxhw.soc.regmap.REGISTERS` of the output-stationary unit; ``A_TILE``
    and ``B_TILE`` are the output tile's row block (rows ``A_TILE * rows ..`` of
    ``op(A)``) and column block, ``OPERANDS`` the slots and transpose flags, ``K`` the
    inner dimension (a multiple of :func:`tile_k_run`). Latency: a START is busy for ``K``
    input transfers (``2 K`` with a K block of 4), 3 cycles of read, the array's latency
    and ``rows`` result rows. Golden twin: ``golden.gemm(op(qa), op(qb), acc)`` on one
    output tile (``op(q)``: ``q.T`` when transposed).
    """

    def __init__(self, rows, cols, fmt, acc, max_k=64, slots=4):
        fmt = check_tile_unit(rows, cols, fmt, acc, max_k, slots)
        f = golden.formats.get(fmt)
        self.la = tile_lanes_log2(fmt)
        self.rows, self.cols, self.fmt_a, self.fmt_b = rows, cols, fmt, fmt
        self.acc, self.max_k, self.slots = acc, max_k, slots
        self.dataflow, self.depth = OS, None
        self._f = f
        #: the array's K block: the largest of the products' (:func:`tile_k_run`)
        self.k = max(tile_k_run(fmt, ta, tb) for ta in (0, 1) for tb in (0, 1))
        self.registers = {**registers_for(OS), **registers_for("tile")}
        self.lw = lanes_log2(acc.width)
        self.lc = (cols - 1).bit_length()
        super().__init__({"bus": In(BusSignature(UNIT_ADDR_BITS)), "busy": Out(1)})

    def register_values(self):
        """The read-only description registers: name -> value."""
        return {"GEOMETRY": encode("GEOMETRY", rows=self.rows, cols=self.cols,
                                   log2_max_k=self.max_k.bit_length() - 1,
                                   dataflow=DATAFLOW_IDS[OS],
                                   log2_a_tiles=self.slots.bit_length() - 1),
                "FORMATS": encode("FORMATS", fmt_a=FORMAT_IDS[self.fmt_a],
                                  fmt_b=FORMAT_IDS[self.fmt_b]),
                "ACC": encode("ACC", width=self.acc.width, frac_bits=self.acc.frac_bits,
                              saturate=self.acc.overflow == "saturate",
                              rne=self.acc.rounding == "rne"),
                "CAPS": 0}

    def elaborate(self, platform):
        m = Module()
        R, C, f, kb, KM = self.rows, self.cols, self._f, self.k, self.max_k
        r, c = f.block
        fk = k_block_format(f, kb)
        m.submodules.array = arr = SystolicArray(R, C, fk, fk, acc=self.acc)
        bus, regs = self.bus, {n: reg.index for n, reg in self.registers.items()}

        K = Signal(range(KM + 1))
        a_blk = Signal(range(max(KM // R, 2)))      # A_TILE: op(A)'s row block
        b_blk = Signal(range(max(KM // C, 2)))      # B_TILE: op(B)'s column block
        ops = Signal(10)                            # OPERANDS
        busy, done, run = Signal(), Signal(), Signal()
        busy_cycles, stall_cycles = Signal(32), Signal(32)
        m.d.comb += self.busy.eq(busy)
        reg_writes(m, bus, busy, {regs["K"]: K, regs["A_TILE"]: a_blk,
                                  regs["B_TILE"]: b_blk, regs["OPERANDS"]: ops})
        start = start_strobe(m, bus, regs["START"], busy)
        sbits = max(self.slots - 1, 1).bit_length()
        slot_a, slot_b, ta, tb = ops[0:sbits], ops[4:4 + sbits], ops[8], ops[9]

        # ---- the step counter: K steps, or (a product of K block kmin < kb) each block of
        # kmin real steps followed by kb - kmin steps of zero codes
        kmin = min(tile_k_run(f.name, a, b) for a in (0, 1) for b in (0, 1))
        lk, lp = (kmin - 1).bit_length(), (kb // kmin - 1).bit_length()
        full = Signal()                             # this product's K block is kb
        m.d.comb += full.eq(functools.reduce(operator.or_, [
            (ta == fa_) & (tb == fb_) for fa_ in (0, 1) for fb_ in (0, 1)
            if tile_k_run(f.name, fa_, fb_) == kb]))
        s = Signal(range(KM * kb // kmin + 1))
        n_steps = Signal.like(s)
        m.d.comb += n_steps.eq(Mux(full, K, K << lp))
        pad = Signal()
        kk = Signal(range(KM))
        if lp:
            m.d.comb += [pad.eq(~full & (s[lk:lk + lp] != 0)),
                         kk.eq(Mux(full, s, Cat(s[:lk], s[lk + lp:])))]
        else:
            m.d.comb += kk.eq(s)
        last = Signal()
        m.d.comb += last.eq(s == n_steps - 1)

        # ---- the read addresses (registered: no logic between them and the memories)
        lm, lr, lc = (KM - 1).bit_length(), (r - 1).bit_length(), (c - 1).bit_length()
        m0 = Cat(Const(0, (R - 1).bit_length()), a_blk)[:lm]
        n0 = Cat(Const(0, (C - 1).bit_length()), b_blk)[:lm]
        reads = {}
        for p, (trans, slot, fixed, along) in {"a": (ta, slot_a, m0, ta),
                                               "b": (tb, slot_b, n0, ~tb)}.items():
            # A: (m0, kk), transposed (kk, m0); B: (kk, n0), transposed (n0, kk)
            first, second = (fixed, kk) if p == "a" else (kk, fixed)
            row = Signal(lm, name=f"{p}_row")
            col = Signal(lm, name=f"{p}_col")
            m.d.comb += [row.eq(Mux(trans, second, first)), col.eq(Mux(trans, first, second))]
            idx = Signal(range(tile_index(f.name, KM, self.slots, 0, 0)), name=f"{p}_idx")
            pos = Signal(lr + lc + 1, name=f"{p}_pos")
            m.d.sync += [idx.eq(Cat(col[lc:], row[lr:], slot)),
                         pos.eq(Cat(row[:lr], col[:lc], along))]
            reads[p] = (idx, pos)
        v1, pad1, last1 = Signal(), Signal(), Signal()
        m.d.sync += [v1.eq(run), pad1.eq(pad), last1.eq(last)]

        # ---- the tile memory, twice: region A (codes) and A-scale (scale | mode << bits)
        tiles = tile_index(f.name, KM, self.slots, 0, 0)
        cb, scb = tile_code_bits(f), f.scale.bits
        zero = Const(zero_code(fk), cb)
        beat = arr.i.payload
        pad2 = delayed(m, pad1, 2, "pad")
        for p, n in (("a", R), ("b", C)):
            idx, pos = reads[p]
            codes_bits = lane_memories(m, bus, busy, f"t{p}", self.la, tiles, idx, REGION["a"])
            sm = lane_memories(m, bus, busy, f"ts{p}", 0, tiles, idx, REGION["a_scale"])
            pos2 = delayed(m, pos, 2, f"{p}_pos")
            codes = data.ArrayLayout(unsigned(cb), r * c)(codes_bits[:r * c * cb])
            picked = tile_codes(m, codes, pos2[:lr], pos2[lr:lr + lc], pos2[lr + lc], r, c,
                                n, f"{p}_idx")
            for i, code in enumerate(picked):
                m.d.comb += [getattr(beat, p)[i].eq(Mux(pad2, zero, code)),
                             getattr(beat, f"{p}_scale")[i].eq(sm[:scb])]
                if fk.mode_bits:
                    m.d.comb += getattr(beat, f"{p}_mode")[i].eq(sm[scb:scb + fk.mode_bits])
        # the array takes a transfer every cycle here: a START waits for the previous
        # tile's results, so no tile is in the array while one is fed (STALL_CYCLES would
        # count a refusal)
        m.d.comb += [arr.i.valid.eq(delayed(m, v1, 2, "v")),
                     beat.last.eq(delayed(m, last1, 2, "last"))]

        # ---- results and control
        out_row = Signal(range(R + 1))
        m.d.comb += arr.o.ready.eq(1)
        c_reads, special = result_memories(m, bus, arr.o, out_row, R, self.acc.width,
                                           self.lw, self.lc)
        tile_done = Signal()
        m.d.comb += tile_done.eq(arr.o.valid & (out_row == R - 1))
        with m.If(start):
            m.d.sync += [busy.eq(K != 0), done.eq(K == 0), out_row.eq(0), s.eq(0),
                         run.eq(K != 0)]
        with m.If(run):
            m.d.sync += s.eq(s + 1)
            with m.If(last):
                m.d.sync += run.eq(0)
        with m.If(arr.o.valid):
            m.d.sync += out_row.eq(out_row + 1)
        with m.If(tile_done):
            m.d.sync += [busy.eq(0), done.eq(1)]
        telemetry(m, busy, arr.i.valid, arr.i.ready, cycles=busy_cycles,
                  stalled=stall_cycles)

        live = {"K": K, "STATUS": Cat(busy, done), "BUSY_CYCLES": busy_cycles,
                "STALL_CYCLES": stall_cycles, "A_TILE": a_blk, "B_TILE": b_blk,
                "OPERANDS": ops, "PEEK_DATA": 0, "PROG_STATUS": 0, "PROG_CYCLES": 0,
                **self.register_values()}
        words = {reg.index: live[n] for n, reg in self.registers.items() if reg.access != "W"}
        bus_reads(m, bus, words, c_reads, special, self.lw, self.lc)
        return m
