"""Bit-serial GEMV engine: weight mappers, a row of bit-serial PEs, bit-serial dequantisers.

Golden twin: :func:`mxhw.golden.bitserial.gemv`.
"""

from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden import bitserial as _golden
from ..dequant.bitserial import BitSerialDequant
from ..lib.params import check_bool, check_int, clog2
from ..lib.trees import max_tree
from .bitserial import BitSerialPE, WeightMapper
from .weights import check_weight_types

__all__ = ["BitSerialGEMV", "DEFAULT_TYPES"]

#: Weight types the engine maps by default: both BitMoD families and INT3/4/8.
DEFAULT_TYPES = (*_golden.FAMILIES["bitmod_fp4"], *_golden.FAMILIES["bitmod_fp3"],
                 "int3", "int4", "int8")


class BitSerialGEMV(wiring.Component):
    """``y = W x`` for group-quantised weights (integer codes of a per-group type plus an
    unsigned integer group scale) and integer activations, bit-serially.

    Structure: ``pes`` output rows are computed at once (a *pass*). Per pass the producer
    streams ``cols / lanes`` beats; each beat carries ``lanes`` activations (broadcast to
    every PE) and, per PE, ``lanes`` weight codes, the group's type select and the group's
    scale. Per PE a :class:`WeightMapper` turns codes into the signed serial form, a
    :class:`BitSerialPE` (``lanes`` lanes) forms each group's exact partial sum, and a
    :class:`BitSerialDequant` multiplies it by the group scale one scale bit per cycle
    (MSB first) and accumulates the row. The engine counts beats: every ``group / lanes``
    beats end a group, every ``cols / group`` groups end a pass, which emits one output
    beat of ``pes`` results.

    Precision: the PEs run each group at the widest serial precision of the types the
    ``pes`` rows use in that group (``golden.bitserial.WeightType.bits``: INTn n, BitMoD
    FP3 4, BitMoD FP4 5 or 6), so one engine runs 3-, 4-, 8-bit weights without
    re-synthesis, and all PEs stay in lock step. The type select (and hence precision)
    must be constant over a group; the scale is taken from the group's last beat.

    Parameters
    ----------
    pes : int
        Rows computed in parallel.
    lanes : int
        Weights per PE per cycle.
    group : int
        Weights per group (a multiple of ``lanes``).
    cols : int
        Columns of ``W`` (length of ``x``; a multiple of ``group``).
    act_width : int
        Activation width (signed; INT8 by default).
    scale_width : int
        Integer group scale width (unsigned).
    types : sequence of str
        Weight types (``golden.bitserial.WEIGHT_TYPES``); ``sel`` indexes them.
    msb_first : bool
        PE weight bit order.

    Members
    -------
    i : In(stream.Signature(StructLayout{a: lanes x signed(act_width), code: pes x lanes x
        unsigned(code_bits), sel: pes x unsigned, scale: pes x unsigned(scale_width)}))
    o : Out(stream.Signature(pes x signed(acc_width)))

    ``acc_width = act_width + wbits + clog2(group) + scale_width + clog2(cols / group)``
    (``wbits`` the widest type's bits): exact, no wrap.

    Latency and throughput
    ----------------------
    One beat per ``prec`` cycles (``pes * lanes`` weights); a pass takes ``cols / lanes *
    prec`` cycles plus, for the last one, ``prec + scale_width + 3`` cycles of drain
    (the dequantiser overlaps the next group while ``scale_width + 1 <= group / lanes *
    prec``). A GEMV of ``R`` rows takes about ``ceil(R / pes) * cols / lanes * prec``
    cycles; ``python -m mxhw.bench bitserial`` measures it.

    Timing: the group sums pass a one-entry register slice between the PEs and the
    dequantisers (one cycle of the drain; the PEs' registered accumulation is another),
    so ``i.ready`` is the PEs' own ``i.ready`` (their state registers only) and no
    combinational path joins the dequantisers' handshake to the PEs'. The group scales
    wait in a two-entry FIFO until their sums leave the PEs. ``o.valid`` is a register;
    ``o.ready`` reaches only the dequantisers' control.

    Golden twin: ``golden.bitserial.gemv`` (``y_int`` per row).
    """

    def __init__(self, pes=4, lanes=4, group=128, cols=256, act_width=8, scale_width=8,
                 types=DEFAULT_TYPES, msb_first=True):
        check_int("pes", pes, 1, 256)
        check_int("lanes", lanes, 1, 256)
        check_int("group", group, 1)
        check_int("cols", cols, 1)
        check_int("act_width", act_width, 2, 32)
        check_int("scale_width", scale_width, 1, 32)
        if group % lanes:
            raise ValueError(f"group must be a multiple of lanes ({lanes}), not {group}")
        if cols % group:
            raise ValueError(f"cols must be a multiple of group ({group}), not {cols}")
        check_bool("msb_first", msb_first)
        types, descs = check_weight_types(types)
        self._pes, self._lanes, self._group, self._cols = pes, lanes, group, cols
        self._act_width, self._scale_width = act_width, scale_width
        self._types, self._msb_first = types, msb_first
        self._wbits = max(d.bits for d in descs)
        self._code_bits = max(d.code_bits for d in descs)
        self._sum_width = act_width + self._wbits + clog2(group)
        self._acc_width = self._sum_width + scale_width + clog2(cols // group)
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "a": data.ArrayLayout(signed(act_width), lanes),
                "code": data.ArrayLayout(data.ArrayLayout(self._code_bits, lanes), pes),
                "sel": data.ArrayLayout(range(max(len(self._types), 2)), pes),
                "scale": data.ArrayLayout(scale_width, pes),
            }))),
            "o": Out(stream.Signature(data.ArrayLayout(signed(self._acc_width), pes))),
        })

    pes = property(lambda self: self._pes)
    lanes = property(lambda self: self._lanes)
    group = property(lambda self: self._group)
    cols = property(lambda self: self._cols)
    act_width = property(lambda self: self._act_width)
    scale_width = property(lambda self: self._scale_width)
    types = property(lambda self: self._types)
    msb_first = property(lambda self: self._msb_first)
    wbits = property(lambda self: self._wbits)
    code_bits = property(lambda self: self._code_bits)
    acc_width = property(lambda self: self._acc_width)

    def beats(self, q, x):
        """The input beats (``i.payload`` values, in order) computing ``golden.bitserial.gemv
        (q, x)``: ``ceil(rows / pes)`` passes; a last partial pass is padded with zero rows
        (scale 0). Output beat ``p`` holds rows ``p * pes ...``.

        ``q`` is a :class:`golden.bitserial.BitModInt` with ``q.group == group`` and
        ``cols`` columns whose types this engine maps; ``x`` the ``cols`` activations.
        """
        R, K = q.codes.shape
        if K != self._cols or q.group != self._group:
            raise ValueError(f"q is {R} x {K} in groups of {q.group}; this engine takes "
                             f"{self._cols} columns in groups of {self._group}")
        names = q.type_names
        missing = sorted(set(names.ravel()) - set(self._types))
        if missing:
            raise ValueError(f"this engine does not map the types {missing}")
        sel = {t: i for i, t in enumerate(self._types)}
        selv = [[sel[t] for t in row] for row in names]
        x = [int(v) for v in x]
        P, L, G = self._pes, self._lanes, self._group
        out = []
        for r0 in range(0, R, P):
            rows = [r if r < R else None for r in range(r0, r0 + P)]
            for k0 in range(0, K, L):
                gi = k0 // G
                out.append({
                    "a": x[k0:k0 + L],
                    "code": [[int(c) for c in q.codes[r, k0:k0 + L]] if r is not None
                             else [0] * L for r in rows],
                    # a padding row reuses row r0's type: same precision, no extra cycles
                    "sel": [selv[r if r is not None else r0][gi] for r in rows],
                    "scale": [int(q.scale_int[r, gi]) if r is not None else 0 for r in rows],
                })
        return out

    def elaborate(self, platform):
        m = Module()
        P, L = self._pes, self._lanes
        bpg = self._group // L
        groups = self._cols // self._group

        maps = [WeightMapper(self._types, L, self._wbits) for _ in range(P)]
        pes = [BitSerialPE(self._act_width, self._wbits, L, self._msb_first, self._sum_width)
               for _ in range(P)]
        dqs = [BitSerialDequant(self._sum_width, self._scale_width, self._acc_width)
               for _ in range(P)]
        for n, (mp, pe, dq) in enumerate(zip(maps, pes, dqs)):
            m.submodules[f"map{n}"] = mp
            m.submodules[f"pe{n}"] = pe
            m.submodules[f"dq{n}"] = dq

        beat = Signal(range(max(bpg, 2)))
        grp = Signal(range(max(groups, 2)))
        grp_end = Signal()
        row_end = Signal()
        m.d.comb += [grp_end.eq(beat == bpg - 1), row_end.eq(grp_end & (grp == groups - 1))]

        # The PEs (and the dequantisers) get identical control inputs, so their handshakes
        # are in lock step: the first one's stands for all (no P-input AND in the path).
        pe0, dq0 = pes[0], dqs[0]
        m.d.comb += self.i.ready.eq(pe0.i.ready)
        take = self.i.valid & self.i.ready

        # Group scales (and "the row's last group") wait in a 2-entry FIFO from a group's
        # last beat until its sums leave the PEs: at most two groups are between the two
        # (one in the PEs' shift registers, one finished in their result registers; a PE
        # takes no beat while a finished last beat's result still waits).
        ent = data.StructLayout({"scale": data.ArrayLayout(self._scale_width, P), "last": 1})
        fifo = [Signal(ent, name=f"scale_fifo{j}") for j in range(2)]
        fcount = Signal(range(3))
        push = take & grp_end
        pe_xfer = pe0.o.valid & pe0.o.ready
        entry = Signal(ent)
        m.d.comb += [entry.scale.eq(self.i.payload.scale), entry.last.eq(row_end)]
        # (a pop shifts entry 1 to 0; a push writes the first free entry after it)
        with m.If(pe_xfer):
            m.d.sync += fifo[0].eq(fifo[1])
            with m.If(push):
                with m.If(fcount[1]):
                    m.d.sync += fifo[1].eq(entry)
                with m.Else():
                    m.d.sync += fifo[0].eq(entry)
            with m.Else():
                m.d.sync += fcount.eq(fcount - 1)
        with m.Elif(push):
            with m.If(fcount[0]):
                m.d.sync += fifo[1].eq(entry)
            with m.Else():
                m.d.sync += fifo[0].eq(entry)
            m.d.sync += fcount.eq(fcount + 1)

        # Register slice between PEs and dequantisers: its ready (to the PEs) and valid
        # (to the dequantisers) are flip-flops, so no combinational path runs from the
        # dequantisers' handshake to the PEs' or to i.ready. One entry suffices: a group
        # takes the PEs group / lanes * prec cycles and the dequantisers scale_width.
        full = Signal()
        buf_sum = [Signal(signed(self._sum_width), name=f"buf_sum{n}") for n in range(P)]
        buf_ent = Signal(ent)
        with m.If(dq0.i.valid & dq0.i.ready):
            m.d.sync += full.eq(0)
        with m.If(pe_xfer):
            m.d.sync += [full.eq(1), buf_ent.eq(fifo[0]),
                         *[b.eq(pe.o.payload) for b, pe in zip(buf_sum, pes)]]

        # the group's precision: the widest of the types the rows use (mappers' bits), a
        # balanced maximum tree (depth clog2(pes) comparators)
        prec = Signal(range(self._wbits + 1))
        m.d.comb += prec.eq(max_tree(m, [mp.bits for mp in maps], prec.shape(), "widest"))

        for n, (mp, pe, dq) in enumerate(zip(maps, pes, dqs)):
            m.d.comb += [
                mp.sel.eq(self.i.payload.sel[n]),
                *[mp.code[l].eq(self.i.payload.code[n][l]) for l in range(L)],
                pe.i.valid.eq(take),
                pe.i.payload.a.eq(self.i.payload.a),
                *[pe.i.payload.w[l].eq(mp.w[l]) for l in range(L)],
                pe.i.payload.prec.eq(prec),
                pe.i.payload.last.eq(grp_end),
                pe.o.ready.eq(~full),
                dq.i.valid.eq(full),
                dq.i.payload.sum.eq(buf_sum[n]),
                dq.i.payload.scale.eq(buf_ent.scale[n]),
                dq.i.payload.last.eq(buf_ent.last),
                self.o.payload[n].eq(dq.o.payload),
                dq.o.ready.eq(self.o.ready),
            ]
        m.d.comb += self.o.valid.eq(dq0.o.valid)

        with m.If(take):
            m.d.sync += beat.eq(Mux(grp_end, 0, beat + 1))
            with m.If(grp_end):
                m.d.sync += grp.eq(Mux(row_end, 0, grp + 1))
        return m
