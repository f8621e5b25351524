"""The GEMM unit's on-chip activation path: accumulator results -> re-quantiser -> A memory.

:class:`OutPath` collects the fixed-point result rows of the ``32 / cols`` column tiles
that make one block of 32 output features, re-quantises each of the ``rows`` rows with
a :class:`~mxhw.dequant.Requantizer` (``in_kind="fixed"``: the accumulator's width and
fractional bits) and writes the codes and scales in the A memories' layout (one word
per K index holding every row's code, one scale word holding every row's scale and, for
MXSF, the block mode the re-quantiser chose: :mod:`mxhw.soc.ascale`), so a later GEMM
reads them as its A operand. Golden twin: ``golden.quantize(y, fmt)`` along N of the
results ``y`` (:func:`mxhw.golden.chain.linear`).
"""

from amaranth import Cat, Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .. import golden
from ..dequant.requant import Requantizer
from ..lib.params import check_int, check_pow2
from .ascale import entry_bits, join_entries, moded
from .isa import BLOCK
from .unit import pow2

__all__ = ["OutPath"]


class OutPath(wiring.Component):
    """Collect, re-quantise and emit one ``rows x 32`` block of GEMM results.

    Parameters
    ----------
    rows : int
        Rows per tile (1..32).
    cols : int
        Columns per tile: a power of two dividing 32.
    fmt : str
        The output block format (golden name; block size 32; MXSF: the mode of each
        block chosen as golden chooses it, stored beside its scale).
    acc_width, acc_frac : int
        The fixed-point results: ``acc_width``-bit signed integers (2..53, the
        re-quantiser's input width) with ``acc_frac`` fractional bits.

    Members
    -------
    col_en, col_row, col_slot, col_data : In
        A result row into the collection: row ``col_row`` of column tile ``col_slot``
        (0 .. 32/cols - 1), ``cols`` results of ``acc_width`` bits (column 0 low).
    start : In(1)
        Re-quantise the collected block and emit it (ignored while busy).
    busy : Out(1)
    w_en, w_k, w_codes : Out
        The codes, one K index a cycle for 32 cycles: ``w_k`` (0..31) and every row's
        element code (row 0 in the low bits).
    s_en, s_codes : Out
        The A-scale entries (in the first of those cycles): every row's E8M0 code (and
        MXSF mode above it, :mod:`mxhw.soc.ascale`).

    Latency: ``rows + Requantizer.latency + 1`` cycles after ``start``, then the 32
    write cycles.
    """

    def __init__(self, rows, cols, fmt, acc_width, acc_frac):
        check_int("rows", rows, 1, 32)
        check_pow2("cols", cols, 1, BLOCK)
        check_int("acc_width", acc_width, 2, 53)
        f = golden.formats.get(fmt)
        if f.block_size != BLOCK:
            raise ValueError(f"fmt must be an MX format with blocks of {BLOCK}, not "
                             f"{fmt!r}")
        self.rows, self.cols, self.fmt = rows, cols, f
        self.acc_width, self.acc_frac = acc_width, acc_frac
        self.f_scale_bits = f.scale.bits
        self.rq = Requantizer(f.name, in_kind="fixed", in_width=acc_width, in_frac=acc_frac)
        self.ebits, self.sbits = f.element.bits, entry_bits(f)
        super().__init__({
            "col_en": In(1), "col_row": In(range(pow2(rows))),
            "col_slot": In(range(max(2, BLOCK // cols))),
            "col_data": In(cols * acc_width), "start": In(1), "busy": Out(1),
            "w_en": Out(1), "w_k": Out(range(BLOCK)), "w_codes": Out(rows * self.ebits),
            "s_en": Out(1), "s_codes": Out(rows * self.sbits),
        })

    def elaborate(self, platform):
        m = Module()
        R, C, W, E = self.rows, self.cols, self.acc_width, self.ebits
        S = BLOCK // C
        m.submodules.rq = rq = self.rq
        m.submodules.collect = mem = Memory(shape=BLOCK * W, depth=max(2, pow2(R)), init=[])
        wp, rp = mem.write_port(granularity=W), mem.read_port()
        slot_en = Cat(*[(self.col_slot == s).replicate(C) for s in range(S)])
        m.d.comb += [wp.addr.eq(self.col_row), wp.data.eq(self.col_data.replicate(S)),
                     wp.en.eq(self.col_en.replicate(BLOCK) & slot_en)]

        busy, feeding, fed = Signal(), Signal(), Signal()
        rd = Signal(range(max(2, R)))
        oi = Signal(range(max(2, R)))
        writing = Signal()
        wk = Signal(range(BLOCK))
        m.d.comb += [self.busy.eq(busy), rp.addr.eq(rd), rq.o.ready.eq(1),
                     rq.i.valid.eq(fed), rq.i.payload.as_value().eq(rp.data)]
        m.d.sync += fed.eq(feeding)
        with m.If(self.start & ~busy):
            m.d.sync += [busy.eq(1), feeding.eq(1), rd.eq(0), oi.eq(0)]
        with m.If(feeding):
            m.d.sync += rd.eq(rd + 1)
            with m.If(rd == R - 1):
                m.d.sync += feeding.eq(0)

        # the code buffer: rows x 32 codes, filled a row per re-quantised block, shifted
        # one K index a cycle towards index 0 while it is written out
        buf = [[Signal(E, name=f"code{i}_{j}") for j in range(BLOCK)] for i in range(R)]
        scales = [Signal(self.f_scale_bits, name=f"scale{i}") for i in range(R)]
        modes = ([Signal(self.fmt.mode_bits, name=f"mode{i}") for i in range(R)]
                 if moded(self.fmt) else None)
        els = rq.o.payload.elements
        for i in range(R):
            with m.If(rq.o.valid & (oi == i)):
                m.d.sync += [buf[i][j].eq(Value.cast(els[j])) for j in range(BLOCK)]
                m.d.sync += scales[i].eq(rq.o.payload.scale)
                if modes is not None:
                    m.d.sync += modes[i].eq(rq.o.payload.mode)
            with m.Elif(writing):
                m.d.sync += [buf[i][j].eq(buf[i][j + 1]) for j in range(BLOCK - 1)]
        with m.If(rq.o.valid):
            m.d.sync += oi.eq(oi + 1)
            with m.If(oi == R - 1):
                m.d.sync += [writing.eq(1), wk.eq(0)]
        with m.If(writing):
            m.d.sync += wk.eq(wk + 1)
            with m.If(wk == BLOCK - 1):
                m.d.sync += [writing.eq(0), busy.eq(0)]
        m.d.comb += [self.w_en.eq(writing), self.w_k.eq(wk),
                     self.w_codes.eq(Cat(*[buf[i][0] for i in range(R)])),
                     self.s_en.eq(writing & (wk == 0)), self.s_codes.eq(join_entries(scales, modes))]
        return m
