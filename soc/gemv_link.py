"""The link between the GEMM unit's program sequencer and the BitMoD GEMV unit
(``docs/isa.md``, GEMV instruction).

The GEMV unit keeps its own activation memory: the A memories hold one K index of every
row of a tile per word (``rows`` codes side by side), while the bit-serial engine takes
``lanes`` consecutive K of one row per beat, so a read port on the A memories would need
``lanes`` reads per beat. :class:`GemvLink` copies instead: one A row (``K`` reads, one a
cycle, and a scale read per block) into the GEMV unit's ``x`` memories, then starts a
32-row GEMV (one block of 32 output features, weight rows ``32 * blk ..``), collects its
results and emits them ``cols`` at a time to the GEMM unit's result memories (C tiles) or
to its activation path (:class:`~mxhw.soc.outpath.OutPath`): the one output path of both
units. The copy costs ``K + 4`` cycles against the GEMV's ``32 / pes * K / lanes * prec``.
"""

from amaranth import Cat, Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..lib.params import check_int, check_pow2
from .isa import BLOCK

__all__ = ["GemvPort", "GemvLink", "X_BITS"]

#: the activation block's codes (32 of 8 bits: MXINT8 or MXFP8 E4M3)
X_BITS = BLOCK * 8


def GemvPort(pes, width):
    """The GEMM unit's side of the link (the GEMV unit takes it flipped): ``start`` a GEMV of
    32 rows from row pass ``pass0`` over ``cols`` columns; the ``x`` memories' writes
    (block ``x_idx``: codes ``x_bits``, scale ``xs_bits``); the results (``r_valid``: row
    pass ``r_pass``, ``pes`` values of ``width`` bits, NaN flags) and ``busy``."""
    return wiring.Signature({
        "start": Out(1), "cols": Out(13), "pass0": Out(12),
        "x_en": Out(1), "xs_en": Out(1), "x_idx": Out(7), "x_bits": Out(X_BITS),
        "xs_bits": Out(8),
        "busy": In(1), "r_valid": In(1), "r_pass": In(12), "r_data": In(pes * width),
        "r_nan": In(pes),
    })


class GemvLink(wiring.Component):
    """One GEMV row job of a program's GEMV instruction: copy, run, emit.

    Parameters
    ----------
    rows, cols : int
        The GEMM unit's tile (``cols`` a power of two dividing 32).
    max_k, a_tiles : int
        Its A memories.
    a_bits, s_bits : int
        Bits per A lane word row (``rows`` codes of 8 bits, padded) and per A-scale entry.
    pes, width : int
        The GEMV unit's PEs (rows per pass) and result width.

    Members
    -------
    go : In(1)
        Start a job: A tile ``tile``, row ``row``, ``k_blocks`` blocks, weight block ``wblk``.
    busy : Out(1)
    rd_en, rd_k, rd_tile : Out
        The A (and A-scale, block ``rd_k // 32``) read address while ``rd_en``; ``a_data``
        and ``s_data`` (In) are the read data two cycles later.
    e_valid, e_slot, e_data, e_nan : Out
        The results, ``cols`` a cycle: column tile ``e_slot`` of the block (``32 / cols``
        cycles).
    gemv : Out(GemvPort(pes, width))
    """

    def __init__(self, rows, cols, max_k, a_tiles, a_bits, s_bits, pes, width):
        check_int("rows", rows, 1, 32)
        check_pow2("cols", cols, 1, BLOCK)
        check_pow2("pes", pes, 1, BLOCK)
        check_pow2("max_k", max_k, BLOCK)
        self.rows, self.cols, self.max_k, self.pes, self.width = rows, cols, max_k, pes, width
        self.s_bits = s_bits
        kb = max(1, (max_k // BLOCK - 1).bit_length())
        super().__init__({
            "go": In(1), "tile": In(range(max(2, a_tiles))), "row": In(range(max(2, rows))),
            "k_blocks": In(kb + 1), "wblk": In(8), "busy": Out(1),
            "rd_en": Out(1), "rd_k": Out(range(max_k)), "rd_tile": Out(range(max(2, a_tiles))),
            "a_data": In(a_bits), "s_data": In(s_bits * rows),
            "e_valid": Out(1), "e_slot": Out(range(max(2, BLOCK // cols))),
            "e_data": Out(cols * width), "e_nan": Out(cols),
            "gemv": Out(GemvPort(pes, width)),
        })

    def elaborate(self, platform):
        m = Module()
        C, P, W = self.cols, self.pes, self.width
        S = BLOCK // C
        g = self.gemv
        K = Signal(range(self.max_k + 1))
        k = Signal(range(self.max_k + 1))           # the next read's K index
        got = Signal(range(self.max_k + 1))         # codes arrived
        v1, v2 = Signal(), Signal()                 # a read issued one / two cycles ago
        sr = Signal(X_BITS)
        stage = Signal(BLOCK * W)
        snan = Signal(BLOCK)
        slot = Signal(range(max(2, S)))
        lp = (BLOCK // P - 1).bit_length()
        m.d.comb += [self.rd_k.eq(k), g.cols.eq(K),
                     g.pass0.eq(Cat(Const(0, lp), self.wblk) if lp else self.wblk)]
        m.d.sync += [v1.eq(self.rd_en), v2.eq(v1)]

        # the arriving code of the job's row, shifted in (code j of a block at bits 8j)
        code = self.a_data.word_select(self.row, 8)
        scale = self.s_data.word_select(self.row, self.s_bits)[:8]
        full = Cat(sr[8:], code)
        with m.If(v2):
            m.d.sync += [sr.eq(full), got.eq(got + 1)]
        m.d.comb += [g.x_bits.eq(full), g.xs_bits.eq(scale), g.x_idx.eq(got[5:]),
                     g.x_en.eq(v2 & (got[:5] == BLOCK - 1)), g.xs_en.eq(g.x_en)]

        # the results: pass p of the block fills values p * pes ..
        with m.If(g.r_valid):
            idx = g.r_pass[:lp] if lp else 0
            for j in range(BLOCK // P):
                with m.If(idx == j):
                    m.d.sync += [stage[j * P * W:(j + 1) * P * W].eq(g.r_data),
                                 snan[j * P:(j + 1) * P].eq(g.r_nan)]
        m.d.comb += [self.e_slot.eq(slot), self.e_data.eq(stage.word_select(slot, C * W)),
                     self.e_nan.eq(snan.word_select(slot, C))]

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.go):
                    m.d.sync += [K.eq(Cat(Const(0, 5), self.k_blocks)), k.eq(0), got.eq(0),
                                 self.busy.eq(1), self.rd_tile.eq(self.tile)]
                    m.next = "COPY"
            with m.State("COPY"):
                m.d.comb += self.rd_en.eq(k != K)
                with m.If(k != K):
                    m.d.sync += k.eq(k + 1)
                with m.If(got == K):
                    m.next = "RUN0"
            with m.State("RUN0"):
                m.d.comb += g.start.eq(1)
                m.next = "RUN1"
            with m.State("RUN1"):
                m.next = "RUN"
            with m.State("RUN"):
                with m.If(~g.busy):
                    m.d.sync += slot.eq(0)
                    m.next = "EMIT"
            with m.State("EMIT"):
                m.d.comb += self.e_valid.eq(1)
                m.d.sync += slot.eq(slot + 1)
                with m.If(slot == S - 1):
                    m.d.sync += self.busy.eq(0)
                    m.next = "IDLE"
        return m
