"""The SoC's GEMV unit: the BitMoD bit-serial engine (:class:`~mxhw.pe.BitSerialGEMV`) behind
weight, activation and result memories on the word bus.

One START computes ``y = W x`` for ``ROWS x COLS`` weights (BitMoD FP4/FP3 or INT4/INT3
codes, a per-group type and integer scale, a per-row exponent) and an MX activation vector
(MXINT8; or MXFP8 E4M3 aligned on chip by the shared-exponent
:class:`~mxhw.dequant.Aligner`), in blocks of 32 columns. Each block's exact integer term
is shifted onto the fixed-point grid ``golden.fixed(width, frac)`` (floor) and added to
the row's saturating register: the result words the host reads. Golden twin:
:func:`mxhw.golden.gemv_unit.gemv_fixed`. Map: :mod:`mxhw.soc.gemv_map`; layouts:
``docs/gemv.md``.
"""

from types import SimpleNamespace

from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.fifo import SyncFIFO, SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from .. import golden
from ..dequant.aligner import Aligner
from ..golden import bitserial as _bs
from ..golden.gemv_unit import BLOCK, FAMILIES, exact_align_width
from ..lib.params import check_choice, check_int, check_pow2
from ..lib.signals import delay_line
from ..pe.bitserial_engine import BitSerialGEMV
from .bus import BusSignature
from .gemm import check_unit_acc
from .gemv_link import GemvPort
from .gemv_map import FAMILY_BITS, GEMV_KIND, GEMV_REGION, GEMV_REGISTERS, gemv_encode
from .regmap import FORMAT_IDS, UNIT_ADDR_BITS, encode, lanes_log2
from .unit import bus_reads, lane_memories, reg_writes, result_memories, start_strobe

__all__ = ["GemvUnit", "gemv_unit_for", "unit_types", "parse_families", "META_BITS",
           "EXP_BITS", "LIMITS"]

#: bits per row of a group's metadata word: type select in bits 0-7, scale in bits 8-15
META_BITS = 16
#: bits of a row exponent (signed): ``row_exp + lsb_exp`` of the weights
EXP_BITS = 8
#: bounds of the unit's parameters
LIMITS = {"pes": 32, "lanes": BLOCK, "max_rows": 4096, "max_cols": 4096, "width": 64,
          "frac": 127}
#: read queue entries (memory read latency, aligner, the buffered queue's own two cycles)
QUEUE_DEPTH = 8


def parse_families(families):
    """A tuple of weight families (:data:`mxhw.golden.gemv_unit.FAMILIES`, in that order)
    from a sequence or a comma-separated string; ``ValueError`` for an unknown one."""
    if isinstance(families, str):
        families = [f.strip() for f in families.split(",") if f.strip()]
    if not hasattr(families, "__iter__"):
        raise TypeError(f"families must be a sequence of weight family names, not "
                        f"{families!r}")
    families = tuple(families)
    for f in families:
        check_choice("families", f, FAMILIES)
    if not families:
        raise ValueError(f"families must name at least one of {', '.join(FAMILIES)}")
    return tuple(f for f in FAMILIES if f in families)


def unit_types(families):
    """``(types, offsets)``: the engine's weight types (``golden.bitserial`` names; the
    type select indexes them) of ``families``, and each family's first index."""
    types, offsets = [], {}
    for f in parse_families(families):
        offsets[f] = len(types)
        types += _bs.FAMILIES[f]
    return tuple(types), offsets


class GemvUnit(wiring.Component):
    """BitMoD bit-serial GEMV unit on the SoC bus.

    Parameters
    ----------
    pes : int
        Rows computed at once (a power of two, 1..32).
    lanes : int
        Weights per PE per cycle (a power of two dividing 32).
    max_rows, max_cols : int
        Largest ROWS and COLS (powers of two; ``max_rows >= pes``, ``max_cols >= 32``;
        at most 4096).
    act_fmt : str
        Activation format: ``"mxint8"`` or ``"mxfp8_e4m3"`` (golden names or aliases).
    families : sequence of str or str
        Weight families built (``golden.gemv_unit.FAMILIES``; comma-separated string ok).
    acc : golden.arith.Accumulation
        ``golden.fixed(width, frac)`` (saturating, floor), width 2..64, frac 0..127.
    scale_bits : int
        Width of the integer group scales (1..8).
    linked : bool
        Also the ``prog`` port (:func:`~mxhw.soc.gemv_link.GemvPort`, flipped): the GEMM
        unit's program sequencer writes the ``x`` memories and starts 32-row GEMVs from a
        row pass (``docs/isa.md``, GEMV); its results stream out beside the result words.

    Members
    -------
    bus : In(BusSignature(UNIT_ADDR_BITS))
    busy : Out(1)

    Latency: a START of ``R x K`` is busy ``ceil(R / pes) * K / lanes * prec`` cycles
    plus about 17 (the engine's drain, the read, shift and write pipeline; BUSY_CYCLES
    counts them), ``prec`` being per block the widest serial precision of the pass's
    types (BitMoD FP4 5 or 6, FP3 4, INT4 4, INT3 3). Throughput ``pes * lanes``
    weights per ``prec`` cycles. Golden twin: :func:`mxhw.golden.gemv_unit.gemv_fixed`
    (the result registers).

    Raises
    ------
    TypeError, ValueError
        A parameter out of range (the message names it and what is allowed).
    """

    def __init__(self, pes=4, lanes=4, max_rows=64, max_cols=256, act_fmt="mxint8",
                 families=FAMILIES, acc=golden.fixed(32, 16), scale_bits=8, linked=False):
        check_pow2("pes", pes, 1, LIMITS["pes"])
        check_pow2("lanes", lanes, 1, LIMITS["lanes"])
        check_pow2("max_rows", max_rows, pes, LIMITS["max_rows"])
        check_pow2("max_cols", max_cols, BLOCK, LIMITS["max_cols"])
        if not isinstance(act_fmt, str):
            raise TypeError(f"act_fmt must be a format name, not {act_fmt!r}")
        try:
            act = golden.formats.get(act_fmt).name
        except KeyError:
            act = act_fmt
        check_choice("act_fmt", act, ("mxint8", "mxfp8_e4m3"))
        families = parse_families(families)
        check_unit_acc(acc)
        if acc.overflow != "saturate" or acc.rounding != "floor":
            raise ValueError(f"acc must saturate and floor (golden.fixed(width, frac)), "
                             f"not {acc!r}")
        check_int("acc width", acc.width, 2, LIMITS["width"])
        check_int("acc frac_bits", acc.frac_bits, 0, LIMITS["frac"])
        check_int("scale_bits", scale_bits, 1, 8)
        self.pes, self.lanes, self.max_rows, self.max_cols = pes, lanes, max_rows, max_cols
        self.act_fmt, self.families, self.acc, self.scale_bits = act, families, acc, scale_bits
        self._fa = golden.formats.get(act)
        self.align_width = exact_align_width(act) if self._fa.element.kind == "fp" else 0
        self.act_width = self.align_width or self._fa.element.bits
        self.types, self.offsets = unit_types(families)
        self.code_bits = max(_bs.weight_type(t).code_bits for t in self.types)
        self.registers = {r.name: r for r in GEMV_REGISTERS}
        self.lw = lanes_log2(acc.width)
        self.lc = (pes - 1).bit_length()
        if linked and (self._fa.element.bits != 8 or max_rows < BLOCK):
            raise ValueError(f"linked needs 8-bit activations and max_rows >= {BLOCK} (one "
                             f"block of output features), not max_rows={max_rows}")
        self.linked = bool(linked)
        ports = {"bus": In(BusSignature(UNIT_ADDR_BITS)), "busy": Out(1)}
        if linked:
            ports["prog"] = In(GemvPort(pes, acc.width))
        super().__init__(ports)

    @property
    def max_passes(self):
        return self.max_rows // self.pes

    def register_values(self):
        """The read-only description registers: name -> value."""
        acc = self.acc
        return {
            "GEOMETRY": gemv_encode("GEOMETRY", pes=self.pes, lanes=self.lanes,
                                    log2_max_cols=self.max_cols.bit_length() - 1,
                                    log2_max_rows=self.max_rows.bit_length() - 1,
                                    align_width=self.align_width),
            "FORMATS": gemv_encode("FORMATS", act=FORMAT_IDS[self.act_fmt],
                                   families=sum(1 << FAMILY_BITS[f] for f in self.families),
                                   scale_bits=self.scale_bits),
            "ACC": encode("ACC", width=acc.width, frac_bits=acc.frac_bits, saturate=1, rne=0),
            "KIND": GEMV_KIND,
        }

    def _shift_const(self):
        """The constant part of a block term's shift onto the result grid: the activation
        element's LSB exponent, the E8M0 bias and ``frac`` (the row exponent and the block
        scale, plus its shared exponent when aligned, are added at run time)."""
        lsb = -(self.align_width - 2) if self.align_width else self._fa.element.lsb_exp
        return lsb - 127 + self.acc.frac_bits

    def elaborate(self, platform):
        m = Module()
        P, L, W = self.pes, self.lanes, self.acc.width
        BPB = BLOCK // L                                  # beats per block
        lb = (BPB - 1).bit_length()
        kb_bits = (self.max_cols // L - 1).bit_length()   # beat index within a row pass
        blk_bits = (self.max_cols // BLOCK - 1).bit_length()
        pass_bits = (self.max_passes - 1).bit_length()
        bus, regs = self.bus, {n: r.index for n, r in self.registers.items()}
        eng = BitSerialGEMV(pes=P, lanes=L, group=BLOCK, cols=BLOCK,
                            act_width=self.act_width, scale_width=8, types=self.types)
        m.submodules.engine = eng
        cb = self.code_bits

        cols = Signal(range(self.max_cols + 1))
        rows = Signal(range(self.max_rows + 1))
        busy, done = Signal(), Signal()
        busy_cycles = Signal(32)
        m.d.comb += self.busy.eq(busy)

        # ---- the read sequencer: one beat (lanes columns of pes rows) per issue
        nbeats = Signal(kb_bits + 1)                      # beats per row pass
        nblk = Signal(blk_bits + 1)
        npass = Signal(pass_bits + 1)
        kbeat = Signal(kb_bits + 1)
        pss = Signal(pass_bits + 1)
        run = Signal()
        issue = Signal()
        blk = kbeat[lb:]
        jb = kbeat[:lb] if lb else Const(0, 1)

        def mems(name, lanes_log, depth, index, region, alt=None):
            return lane_memories(m, bus, busy, name, lanes_log, depth, index,
                                 GEMV_REGION[region], alt)

        pp = self.prog if self.linked else None
        x_alt = (pp.x_en, pp.x_idx, pp.x_bits) if pp is not None else None
        xs_alt = (pp.xs_en, pp.x_idx, pp.xs_bits) if pp is not None else None
        x_bits = mems("x", lanes_log2(BLOCK * self._fa.element.bits), self.max_cols // BLOCK,
                      blk[:blk_bits], "x", x_alt)
        xs_bits = mems("xs", 0, self.max_cols // BLOCK, blk[:blk_bits], "x_scale", xs_alt)
        w_bits = mems("w", lanes_log2(P * L * cb), self.max_passes * self.max_cols // L,
                      Cat(kbeat[:kb_bits], pss[:pass_bits]), "w")
        meta_bits = mems("meta", lanes_log2(P * META_BITS),
                         self.max_passes * self.max_cols // BLOCK,
                         Cat(blk[:blk_bits], pss[:pass_bits]), "w_meta")
        exp_bits = mems("exp", lanes_log2(P * EXP_BITS), self.max_passes, pss[:pass_bits],
                        "w_exp")

        # the activations: the block's integers (MXINT8 codes, or aligned MXFP8) and its
        # exponent (E8M0 scale, plus the shared exponent when aligned), then the beat's lanes
        ew = 12
        if self.align_width:
            m.submodules.aligner = al = Aligner(self.act_fmt, out_width=self.align_width,
                                                rounding="truncate", pipeline=1)
            m.d.comb += [al.i.valid.eq(1), al.o.ready.eq(1),
                         al.i.payload.elements.eq(x_bits[:BLOCK * self._fa.element.bits]),
                         al.i.payload.scale.eq(xs_bits[:8])]
            ints = Cat(al.o.payload.ints)
            bexp = Signal(signed(ew))
            nan = al.o.payload.nan
            m.d.comb += bexp.eq(al.o.payload.scale + al.o.payload.shared_exp)
            lat = al.latency
        else:
            ints = x_bits[:BLOCK * 8]
            bexp = Signal(signed(ew))
            m.d.comb += bexp.eq(xs_bits[:8])
            nan = xs_bits[:8] == 0xFF
            lat = 0
        ctl = {"jb": jb, "first": blk == 0, "last": blk == nblk - 1,
               "pass": pss[:max(pass_bits, 1)]}
        ctl = {k: delay_line(m, v, 2 + lat, f"ctl_{k}") for k, v in ctl.items()}
        aw = self.act_width
        beat_a = ints.word_select(ctl["jb"], L * aw) if lb else ints[:L * aw]
        entry = data.StructLayout({
            "a": L * aw, "code": P * L * cb, "meta": P * META_BITS, "rexp": P * EXP_BITS,
            "bexp": signed(ew), "nan": 1, "jb": max(lb, 1), "first": 1, "last": 1,
            "rpass": max(pass_bits, 1)})
        e_in = Signal(entry)
        m.d.comb += [e_in.a.eq(beat_a), e_in.bexp.eq(bexp), e_in.nan.eq(nan),
                     e_in.code.eq(delay_line(m, w_bits[:P * L * cb], lat, "w_d")),
                     e_in.meta.eq(delay_line(m, meta_bits[:P * META_BITS], lat, "meta_d")),
                     e_in.rexp.eq(delay_line(m, exp_bits[:P * EXP_BITS], lat, "exp_d")),
                     e_in.jb.eq(ctl["jb"]), e_in.first.eq(ctl["first"]),
                     e_in.last.eq(ctl["last"]), e_in.rpass.eq(ctl["pass"])]
        loaded = delay_line(m, issue, 2 + lat, "loaded")
        m.submodules.queue = queue = SyncFIFOBuffered(width=entry.size, depth=QUEUE_DEPTH)
        inflight = Signal(range(QUEUE_DEPTH + 1))
        room = Signal()
        m.d.sync += inflight.eq(inflight + issue - loaded)
        # room for this read and those in flight (a flag one cycle old: the claim grows by
        # at most one a cycle, so <= depth - 2 then leaves room for one more now)
        m.d.sync += room.eq(queue.level + inflight <= QUEUE_DEPTH - 2)
        m.d.comb += [issue.eq(run & room), queue.w_data.eq(e_in), queue.w_en.eq(loaded)]

        # ---- the engine: beats from the queue; a group's exponents and flags wait in the
        # side queue from its first beat until the engine's result for it
        head = data.View(entry, queue.r_data)
        side = data.StructLayout({"rexp": P * EXP_BITS, "bexp": signed(ew), "nan": 1,
                                  "first": 1, "last": 1, "rpass": max(pass_bits, 1)})
        m.submodules.side = sideq = SyncFIFO(width=side.size, depth=4)
        s_in = Signal(side)
        gate = sideq.w_rdy | (head.jb != 0)
        m.d.comb += [eng.i.valid.eq(queue.r_rdy & gate), queue.r_en.eq(eng.i.ready & gate),
                     eng.i.payload.a.eq(head.a), eng.i.payload.code.eq(head.code)]
        for n in range(P):
            meta = head.meta[n * META_BITS:(n + 1) * META_BITS]
            m.d.comb += [eng.i.payload.sel[n].eq(meta[:8]),
                         eng.i.payload.scale[n].eq(meta[8:8 + self.scale_bits])]
        m.d.comb += [s_in.rexp.eq(head.rexp), s_in.bexp.eq(head.bexp), s_in.nan.eq(head.nan),
                     s_in.first.eq(head.first), s_in.last.eq(head.last),
                     s_in.rpass.eq(head.rpass),
                     sideq.w_data.eq(s_in),
                     sideq.w_en.eq(eng.i.valid & eng.i.ready & (head.jb == 0))]

        # ---- the result path: shift each block term onto the grid, saturate, accumulate
        m.d.comb += [eng.o.ready.eq(1), sideq.r_en.eq(eng.o.valid)]
        sv = data.View(side, sideq.r_data)
        T = len(eng.o.payload[0])
        C = self._shift_const()
        lim = 1 << W
        # two stages: the shift amounts (registered with the term), then the shift and
        # the clamp to +-2**W (registered), so no adder feeds the barrel shifter
        flags = {"valid": eng.o.valid, "first": sv.first, "last": sv.last, "nan": sv.nan,
                 "rpass": sv.rpass}
        a = {k: delay_line(m, v, 2, f"a_{k}") for k, v in flags.items()}
        a_valid, a_first, a_last, a_nan, a_pass = (a[k] for k in flags)
        vs = [Signal(signed(W + 2), name=f"v{n}") for n in range(P)]
        for n in range(P):
            sh = Signal(signed(ew + 2), name=f"sh{n}")
            rexp = sv.rexp[n * EXP_BITS:(n + 1) * EXP_BITS].as_signed()
            m.d.comb += sh.eq(rexp + sv.bexp + C)
            t = Signal(signed(T), name=f"t{n}")
            left = Signal(name=f"left{n}")
            ls = Signal(range(W + 2), name=f"ls{n}")
            rs = Signal(range(T + 1), name=f"rs{n}")
            m.d.sync += [t.eq(eng.o.payload[n]), left.eq(sh >= 0),
                         ls.eq(Mux(sh > W + 1, W + 1, Mux(sh > 0, sh, 0))),
                         rs.eq(Mux(-sh > T, T, Mux(sh < 0, -sh, 0)))]
            x = Signal(signed(T + W + 2), name=f"x{n}")
            m.d.comb += x.eq(Mux(left, t << ls, t >> rs))
            m.d.sync += vs[n].eq(Mux(x > lim, lim, Mux(x < -lim, -lim, x)))

        res = Signal(data.StructLayout({"data": data.ArrayLayout(signed(W), P),
                                        "special": data.ArrayLayout(1, P)}))
        res_valid = Signal()
        res_row = Signal(max(pass_bits, 1))
        accs = [Signal(signed(W), name=f"acc{n}") for n in range(P)]
        nan_acc = Signal()
        hi, lo = (1 << (W - 1)) - 1, -(1 << (W - 1))
        new_nan = Signal()
        m.d.comb += new_nan.eq(Mux(a_first, 0, nan_acc) | a_nan)
        m.d.sync += res_valid.eq(a_valid & a_last)
        with m.If(a_valid):
            m.d.sync += [nan_acc.eq(new_nan), res_row.eq(a_pass)]
        for n in range(P):
            s = Signal(signed(W + 3), name=f"s{n}")
            m.d.comb += s.eq(Mux(a_first, 0, accs[n]) + vs[n])
            new = Mux(s > hi, hi, Mux(s < lo, lo, s))
            with m.If(a_valid):
                m.d.sync += [accs[n].eq(new), res.data[n].eq(new), res.special[n].eq(new_nan)]
        o = SimpleNamespace(valid=res_valid, payload=res)
        c_reads, special = result_memories(m, bus, o, res_row, self.max_passes, W,
                                           self.lw, self.lc)

        # ---- control
        reg_writes(m, bus, busy, {regs["COLS"]: cols, regs["ROWS"]: rows})
        start = start_strobe(m, bus, regs["START"], busy)
        p_log = (P - 1).bit_length()
        plast = Signal(pass_bits + 1)           # the last row pass of this START
        if pp is not None:
            # the program's start: 32 rows (one block of outputs) from row pass pass0
            m.d.comb += [pp.busy.eq(busy), pp.r_valid.eq(res_valid), pp.r_pass.eq(res_row),
                         pp.r_data.eq(res.data), pp.r_nan.eq(res.special)]
            p_start, s_cols = pp.start, Mux(pp.start, pp.cols, cols)
            s_rows, p0 = Mux(pp.start, BLOCK, rows), Mux(pp.start, pp.pass0, 0)
        else:
            p_start, s_cols, s_rows, p0 = 0, cols, rows, 0
        with m.If(start | p_start):
            nb = s_cols >> 5
            np_ = (s_rows + P - 1) >> p_log
            empty = (nb == 0) | (s_rows == 0)
            m.d.sync += [nblk.eq(nb), nbeats.eq(nb << lb), npass.eq(np_), kbeat.eq(0),
                         pss.eq(p0), plast.eq(p0 + np_ - 1), run.eq(~empty),
                         busy.eq(~empty), done.eq(empty)]
        with m.If(issue):
            with m.If(kbeat == nbeats - 1):
                m.d.sync += [kbeat.eq(0), pss.eq(pss + 1)]
                with m.If(pss == plast):
                    m.d.sync += run.eq(0)
            with m.Else():
                m.d.sync += kbeat.eq(kbeat + 1)
        with m.If(res_valid & (res_row == plast[:len(res_row)])):
            m.d.sync += [busy.eq(0), done.eq(1)]
        with m.If(busy):
            m.d.sync += busy_cycles.eq(busy_cycles + 1)

        live = {"COLS": cols, "ROWS": rows, "STATUS": Cat(busy, done),
                "BUSY_CYCLES": busy_cycles, **self.register_values()}
        words = {r.index: live[n] for n, r in self.registers.items() if r.access != "W"}
        bus_reads(m, bus, words, c_reads, special, self.lw, self.lc)
        return m


def gemv_unit_for(gemv_pes=0, gemv_lanes=4, gemv_max_rows=64, gemv_max_cols=256,
                  gemv_act="mxint8", gemv_families=",".join(FAMILIES), acc_width=32,
                  acc_frac=16, linked=False):
    """The GEMV unit of a SoC configuration's fields (None when ``gemv_pes`` is 0): what
    :meth:`mxhw.soc.top.SoCConfig.units` adds at :data:`~mxhw.soc.gemv_map.GEMV_BASE`."""
    check_int("gemv_pes", gemv_pes, 0, LIMITS["pes"])
    if not gemv_pes:
        return None
    return GemvUnit(gemv_pes, gemv_lanes, gemv_max_rows, gemv_max_cols, gemv_act,
                    gemv_families, golden.fixed(acc_width, acc_frac), linked=linked)
