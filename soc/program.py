"""The GEMM unit's program sequencer: runs the instructions of :mod:`mxhw.soc.isa` from the
program memory, driving the unit's tile engine and its activation path
(:mod:`mxhw.soc.outpath`) as a hardware loop (Gemmini-style: one LINEAR is a whole tiled
matmul: row tiles x column tiles x K).
"""

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..lib.params import check_int, check_pow2
from .isa import BLOCK, ERRORS, FIELDS, OPCODES, WORDS

__all__ = ["ProgramSequencer"]

#: cycles from a program-memory address to its data (the lane memories' read latency 2,
#: and the fetch state that latches the fields)
FETCH_WAIT = 3


class ProgramSequencer(wiring.Component):
    """Fetch, check and run :mod:`mxhw.soc.isa` instructions.

    Parameters
    ----------
    rows, cols, max_k, a_tiles, b_tiles, c_tiles : int
        The unit's geometry and memories (``cols`` a power of two dividing 32 when
        ``out_id``).
    n_instr : int
        Program memory size in instructions (a power of two).
    out_id : int
        The activation path's format id (``FORMAT_IDS``), 0 when it is not built.
    gemv_blocks, gemv_max_k : int
        The linked GEMV unit (:mod:`mxhw.soc.gemv_link`): blocks of 32 weight rows it holds
        (0: none linked, GEMV is an opcode error) and its largest K.

    Members
    -------
    start : In(1)
        Run from instruction 0 (ignored while busy).
    pc : Out(range(n_instr))
        The program memory's read address; ``instr`` (In(64)) its data two cycles later.
    busy, done, error, fail_pc : Out
        PROG_STATUS (``error``: :data:`~mxhw.soc.isa.ERRORS`).
    run_cycles : Out(32)
        PROG_CYCLES.
    load, go : Out(1)
        A tile: ``load`` asks the unit to take ``K``, ``a_tile``, ``b_tile``, ``c_tile``
        and ``to_c`` (results to C, else to the activation path's ``slot``); ``go`` (the
        next cycle) starts it. ``tile_done`` (In) ends it.
    out_go : Out(1)
        Re-quantise the collected block into A tile ``dst_tile``, K block ``out_kb``;
        ``out_busy`` (In) until written.
    v_go, v_row, v_wblk, v_busy : Out / In
        GEMV: a row job of the link (A tile ``a_tile``, row ``v_row``, weight block
        ``v_wblk``; results to C tile ``c_tile`` + column tile, or to the activation path);
        ``v_busy`` until it is done.
    cyc_addr, cyc_data : In / Out
        The per-instruction cycle counters: the cycles of instruction ``cyc_addr`` in the
        last run, one cycle after the address.
    """

    def __init__(self, rows, cols, max_k, a_tiles, b_tiles, c_tiles, n_instr, out_id=0,
                 gemv_blocks=0, gemv_max_k=0):
        for name, v in (("a_tiles", a_tiles), ("b_tiles", b_tiles), ("c_tiles", c_tiles),
                        ("n_instr", n_instr)):
            check_pow2(name, v, 1, 1 << 15)
        check_pow2("max_k", max_k, BLOCK)
        check_int("rows", rows, 1, 255)
        check_int("cols", cols, 1, 32)
        check_int("out_id", out_id, 0, 255)
        if out_id:
            check_pow2("cols", cols, 1, BLOCK)
        self.rows, self.cols, self.max_k = rows, cols, max_k
        self.a_tiles, self.b_tiles, self.c_tiles = a_tiles, b_tiles, c_tiles
        self.n_instr, self.out_id = n_instr, out_id
        check_int("gemv_blocks", gemv_blocks, 0, 255)
        if gemv_blocks:
            check_pow2("cols", cols, 1, BLOCK)
            check_pow2("gemv_max_k", gemv_max_k, BLOCK)
        self.gemv_blocks, self.gemv_max_k = gemv_blocks, gemv_max_k
        S = BLOCK // cols if out_id else 1
        self.per_block = S
        super().__init__({
            "start": In(1), "pc": Out(range(max(2, n_instr))), "instr": In(32 * WORDS),
            "busy": Out(1), "done": Out(1), "error": Out(8), "fail_pc": Out(16),
            "run_cycles": Out(32),
            "load": Out(1), "go": Out(1), "tile_done": In(1),
            "K": Out(range(max_k + 1)), "a_tile": Out(range(max(2, a_tiles))),
            "b_tile": Out(range(max(2, b_tiles))), "c_tile": Out(range(max(2, c_tiles))),
            "to_c": Out(1), "slot": Out(range(max(2, S))),
            "out_go": Out(1), "out_busy": In(1), "dst_tile": Out(range(max(2, a_tiles))),
            "out_kb": Out(range(max(2, max_k // BLOCK))),
            "cyc_addr": In(range(max(2, n_instr))), "cyc_data": Out(32),
            "v_go": Out(1), "v_row": Out(range(max(2, rows))), "v_wblk": Out(8),
            "v_busy": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        S, NI = self.per_block, self.n_instr
        f = {n: Signal(w, name=f"f_{n}") for n, (_, w) in FIELDS.items()}
        q = Signal()                        # the results are re-quantised (out_fmt != 0)
        vec = Signal()                      # a GEMV instruction (of a linked unit)
        vi = Signal(range(max(2, self.rows)))
        VB, SC = self.gemv_blocks, BLOCK // self.cols
        err = Signal(8)
        r, c, ct = Signal(8), Signal(8), Signal(16)
        wait = Signal(range(FETCH_WAIT + 1))
        icyc = Signal(32)
        rec = Signal()

        m.submodules.cycles = cmem = Memory(shape=32, depth=max(2, NI), init=[])
        cw, cr = cmem.write_port(), cmem.read_port()
        m.d.comb += [cw.addr.eq(self.pc), cw.data.eq(icyc), cw.en.eq(rec),
                     cr.addr.eq(self.cyc_addr), self.cyc_data.eq(cr.data)]

        lg_s = (S - 1).bit_length()
        m.d.comb += [
            self.K.eq(Cat(Const(0, (BLOCK - 1).bit_length()), f["k_blocks"])),
            self.a_tile.eq(f["src"] + r), self.b_tile.eq(f["b"] + c),
            self.c_tile.eq(ct), self.to_c.eq(~q), self.slot.eq(c[:lg_s] if lg_s else 0),
            self.dst_tile.eq(f["dst"] + r), self.out_kb.eq(Mux(vec, c, c >> lg_s)),
            self.v_row.eq(vi), self.v_wblk.eq(f["b"] + c),
        ]
        with m.If(self.busy):
            m.d.sync += [self.run_cycles.eq(self.run_cycles + 1), icyc.eq(icyc + 1)]

        # the checks of isa.check, on the latched fields (registered in DECODE)
        mt, nt, kb = f["m_tiles"], f["n_tiles"], f["k_blocks"]
        prod = Signal(16)        # m_tiles * n_tiles, registered (PREP): a multiplier's
        # output straight into the checks was the unit's critical path (ECP5: 83 MHz)
        src, dst, b = f["src"], f["dst"], f["b"]
        shape_bad = ((kb == 0) | (kb > self.max_k // BLOCK) | (mt == 0) | (nt == 0)
                     | (q & (nt[:lg_s] != 0 if lg_s else 0))
                     | (q & (nt > self.max_k // self.cols)))
        region_bad = ((src + mt > self.a_tiles) | (b + nt > self.b_tiles)
                      | (q & ((dst + mt > self.a_tiles) | ((src < dst + mt) & (dst < src + mt))))
                      | (~q & (prod > self.c_tiles)))
        if VB:
            # GEMV (isa.check): n_tiles counts blocks of 32 outputs; weights in the GEMV unit
            vkmax = min(self.max_k, self.gemv_max_k) // BLOCK
            v_shape_bad = ((kb == 0) | (kb > vkmax) | (mt == 0) | (nt == 0)
                           | (q & (nt > self.max_k // BLOCK)))
            v_region_bad = ((src + mt > self.a_tiles) | (b + nt > VB)
                            | (q & ((dst + mt > self.a_tiles)
                                    | ((src < dst + mt) & (dst < src + mt))))
                            | (~q & (prod > self.c_tiles // SC)))
            shape_bad = Mux(vec, v_shape_bad, shape_bad)
            region_bad = Mux(vec, v_region_bad, region_bad)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [self.busy.eq(1), self.done.eq(0), self.error.eq(0),
                                 self.fail_pc.eq(0), self.pc.eq(0), self.run_cycles.eq(0),
                                 icyc.eq(0), wait.eq(FETCH_WAIT)]
                    m.next = "FETCH"
            with m.State("FETCH"):
                m.d.sync += wait.eq(wait - 1)
                with m.If(wait == 1):
                    m.d.sync += [s.eq(self.instr[lo:lo + len(s)])
                                 for s, (lo, _) in zip(f.values(), FIELDS.values())]
                    m.d.sync += q.eq(self.instr[FIELDS["out_fmt"][0]:][:8] != 0)
                    m.d.sync += vec.eq(self.instr[:4] == OPCODES["GEMV"] if VB else 0)
                    m.next = "PREP"
            with m.State("PREP"):
                m.d.sync += prod.eq(mt * nt)
                m.next = "DECODE"
            with m.State("DECODE"):
                with m.If((f["op"] > OPCODES["LINEAR"]) & ~vec):
                    m.d.sync += err.eq(ERRORS["opcode"])
                with m.Elif(f["op"] == OPCODES["END"]):
                    m.d.sync += err.eq(0)
                with m.Elif(q & (f["out_fmt"] != self.out_id)):
                    m.d.sync += err.eq(ERRORS["format"])
                with m.Elif(shape_bad):
                    m.d.sync += err.eq(ERRORS["shape"])
                with m.Elif(region_bad):
                    m.d.sync += err.eq(ERRORS["region"])
                with m.Else():
                    m.d.sync += err.eq(0)
                m.next = "CHECK"
            with m.State("CHECK"):
                m.d.sync += [r.eq(0), c.eq(0), ct.eq(0), vi.eq(0)]
                with m.If(err != 0):
                    m.d.sync += [self.error.eq(err), self.fail_pc.eq(self.pc),
                                 self.busy.eq(0), self.done.eq(1)]
                    m.next = "IDLE"
                with m.Elif(f["op"] == OPCODES["END"]):
                    m.d.comb += rec.eq(1)
                    m.d.sync += [self.busy.eq(0), self.done.eq(1)]
                    m.next = "IDLE"
                with m.Elif(vec):
                    m.next = "VROW"
                with m.Else():
                    m.next = "LOAD"
            with m.State("VROW"):
                # GEMV: one row job (copy the row, 32-row GEMV, results out) per row
                m.d.comb += self.v_go.eq(1)
                m.next = "VWAIT0"
            with m.State("VWAIT0"):
                m.next = "VWAIT"
            with m.State("VWAIT"):
                with m.If(~self.v_busy):
                    m.d.sync += vi.eq(vi + 1)
                    with m.If(vi == self.rows - 1):
                        m.d.sync += vi.eq(0)
                        with m.If(q):
                            m.next = "OUT"
                        with m.Else():
                            m.next = "NEXT"
                    with m.Else():
                        m.next = "VROW"
            with m.State("LOAD"):
                m.d.comb += self.load.eq(1)
                m.next = "GO"
            with m.State("GO"):
                m.d.comb += self.go.eq(1)
                m.next = "TILE"
            with m.State("TILE"):
                with m.If(self.tile_done):
                    if S > 1:
                        last = c[:lg_s] == S - 1
                    else:
                        last = 1
                    with m.If(q & last):
                        m.next = "OUT"
                    with m.Else():
                        m.next = "NEXT"
            with m.State("OUT"):
                m.d.comb += self.out_go.eq(1)
                m.next = "OUT_WAIT0"
            with m.State("OUT_WAIT0"):
                m.next = "OUT_WAIT"
            with m.State("OUT_WAIT"):
                with m.If(~self.out_busy):
                    m.next = "NEXT"
            with m.State("NEXT"):
                m.d.sync += [c.eq(c + 1), ct.eq(ct + Mux(vec, SC, 1))]
                again = "VROW" if VB else "LOAD"
                with m.If(c == nt - 1):
                    m.d.sync += [c.eq(0), r.eq(r + 1)]
                    with m.If(r == mt - 1):
                        m.d.comb += rec.eq(1)
                        m.d.sync += icyc.eq(0)
                        m.next = "ADVANCE"
                    with m.Elif(vec):
                        m.next = again
                    with m.Else():
                        m.next = "LOAD"
                with m.Elif(vec):
                    m.next = again
                with m.Else():
                    m.next = "LOAD"
            with m.State("ADVANCE"):
                # the instruction's cycles were recorded at its pc (in NEXT); the next one
                with m.If(self.pc == NI - 1):
                    m.d.sync += [self.error.eq(ERRORS["region"]), self.fail_pc.eq(NI),
                                 self.busy.eq(0), self.done.eq(1)]
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += [self.pc.eq(self.pc + 1), wait.eq(FETCH_WAIT)]
                    m.next = "FETCH"
        return m
