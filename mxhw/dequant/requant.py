"""Re-quantiser: a block of k fixed-point or FP32 results to an MX block (E8M0 scale, OCP
floor rule, elements RNE with saturation), for the OCP MX formats and MXSF (whose mode it
chooses per block by the exact squared error, as golden does)."""

from __future__ import annotations

import re

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..formats import layout_of, lookup_format
from ..lib.params import check_choice, check_int
from ..lib.pipe import drive_output, stall_all
from ..lib.trees import all_of, max_levels, or_tree
from .blocks import block_size
from .requant_logic import (SE_HI, SE_LO, emin, gt_const, hw_modes, is_mxsf, max_code, msb,
                            mxsf_select, rceil_thresholds, requant_block_format)
from .requant_tile import tile_block_format

__all__ = ["Requantizer", "IN_KINDS", "requant_block_format"]

#: Input kinds the re-quantiser accepts: ``"fixed"`` (signed integers with a fixed number of
#: fractional bits) and ``"fp32"`` (IEEE 754 binary32 bit patterns).
IN_KINDS = ("fixed", "fp32")

#: The register boundaries of each depth (register stages besides the output register
#: and, for ``mxsf``, the mode-select register), in data-flow order: ``front``
#: (magnitudes, signs, exponents of the elements), ``tree`` (the OR of the magnitudes
#: (fixed) / half of the exponent maximum tree (fp32)), ``scale`` (the block scale(s) and
#: the block's terms of the shift amounts, after max|x|), ``shift`` (per element the shift
#: amount, before the barrel shifter), ``round`` (per element the shifted magnitude with
#: its guard and sticky bits, before rounding, packing and saturation), ``pos`` (the
#: position of max|x|'s highest set bit (fixed) / the block exponent (fp32), before the
#: table of the block's scale and shift terms).
_CUTS = {0: (), 1: (), 2: ("scale",), 3: ("scale", "shift"), 4: ("scale", "shift", "round"),
         5: ("front", "scale", "shift", "round"),
         6: ("front", "tree", "scale", "shift", "round"),
         7: ("front", "tree", "pos", "scale", "shift", "round")}
_DEEPEST = max(_CUTS)
_F32_SIG = 24  # binary32 significand width with the hidden bit


class Requantizer(wiring.Component):
    """Quantise a block of ``k`` fixed-point or FP32 values to an MX block, as golden does:
    the OCP floor rule for the scale (``shared_exp = floor(log2 max|x|) - emax_elem``,
    clamped to E8M0's ``[-127, 127]``), elements rounded to nearest, ties to even,
    saturating (MXINT: symmetric); a block holding a NaN or +-Inf (fp32 input) gives the
    NaN scale ``0xFF`` and all codes 0. ``fmt="mxsf"`` (the quantising side of the MXSF
    mode switch) quantises the block in both modes and keeps the one with the smaller
    exact squared error (ties to mode W). ``fmt="mxsf_tile"`` (or ``mxsf_tile(r, c)``; 2-D
    tiles of MXSF only) quantises one ``r x c`` tile per block, ``k = r * c``
    elements in row-major order within the tile (element ``j``: row ``j // c``, column
    ``j % c``); :func:`~mxhw.dequant.requant_tile.tile_blocks` cuts a tensor into that
    stream. ``docs/components.md`` (Requantizer) derives the datapath and its exactness.

    Parameters
    ----------
    fmt : str or BlockFormat
        An OCP MX block format (golden name or alias: ``"mxfp8_e4m3"``, ``"mxfp4"``,
        ``"mxint8"``, ...) or ``"mxsf"``, or an MXSF tile format (``"mxsf_tile"``); its block
        size is ``k`` (32 for OCP MX; ``r * c`` for a tile; other sizes are
        :class:`~mxhw.golden.formats.BlockFormat` descriptors).
    k : int or None
        Deprecated: ``None`` or the block size of ``fmt`` (a tile: ``r * c``).
    in_kind : "fixed" or "fp32"
        The input representation (see :data:`IN_KINDS`).
    in_width : int or None
        ``fixed``: input integer width, 2..53 (values stay exact in float64 for the golden
        twin); default 24. ``fp32``: must be ``None`` (the input is 32 bits).
    in_frac : int or None
        ``fixed``: fractional bits of the input, such that every scale exponent fits E8M0;
        default 16. ``fp32``: must be ``None``.
    pipeline : int or None
        Register stages (the latency): 0..7 (0: combinational), ``mxsf`` 2..8 (it always
        registers the error terms before the mode select). Each depth keeps the registers
        of the smaller ones and adds one boundary (``mxsf``: depth ``pipeline - 1``):
        1 the output register; 2 ``scale``; 3 ``shift``; 4 ``round``; 5 ``front``;
        6 ``tree``; 7 ``pos`` (see :data:`_CUTS`). ``None`` (default): the deepest, 7
        (``mxsf`` 8). ECP5, k=32, fixed 24-bit input, depth 6: MXFP4 108.6 MHz, MXFP8
        E4M3 102 MHz (depth 2: 20 MHz); depth 7: README, "Performance".

    Members
    -------
    i : In(stream.Signature(ArrayLayout(signed(in_width), k)))
        (``fp32``: ``ArrayLayout(unsigned(32), k)``, binary32 bit patterns.)
    o : Out(stream.Signature(StructLayout({"scale": unsigned(8),
        "elements": ArrayLayout(layout_of(fmt.element), k)})))
        (``mxsf``: ``StructLayout({"elements": ArrayLayout(unsigned(8), k),
        "mode": unsigned(1), "scale": unsigned(8)})``, the payload
        :class:`~mxhw.dequant.MXSFDecoder` takes.)

    Latency ``pipeline`` cycles; one block per cycle (the pipeline stalls as a whole while
    ``o`` is not ready, one cycle late: from ``pipeline`` 1 up the stages' enables and
    ``i.ready`` are registers, and a skid register keeps the block ``o`` did not take in
    the cycle the stages still advanced; a block is never lost or repeated;
    ``pipeline=0``: ``i.ready`` is ``o.ready``).
    Golden twin: ``golden.quantize(x, fmt)`` on the block (its ``scales``, ``elements``
    and, for ``mxsf``, ``modes``; a tile format: on the ``r x c`` tile), with ``x = v * 2.0**-in_frac`` (fixed) or the float32
    values (fp32).

    Raises
    ------
    TypeError, ValueError
        A parameter out of range (message names it and what is allowed).
    """

    def __init__(self, fmt, k=None, in_kind="fixed", in_width=None, in_frac=None,
                 pipeline=None):
        tile_fmt = lookup_format(fmt, "fmt", "block")
        fmt, tile = tile_block_format(tile_fmt, k)
        fmt = requant_block_format(fmt)
        k = block_size(fmt, k)
        check_choice("in_kind", in_kind, IN_KINDS)
        modes = hw_modes(fmt)
        if in_kind == "fixed":
            in_width = 24 if in_width is None else in_width
            in_frac = 16 if in_frac is None else in_frac
            check_int("in_width", in_width, 2, 53)
            check_int("in_frac", in_frac)
            top = in_width - 1 - in_frac - min(e.emax for e in modes)
            top += fmt.scale_rule == "ocp_rceil"   # RCEIL: up to one above the floor rule
            if top > SE_HI or in_frac > 1000:
                raise ValueError(f"in_frac {in_frac} with in_width {in_width} gives scale "
                                 f"exponents in [-127, {top}], outside E8M0's [-127, 127] "
                                 f"(or in_frac above 1000)")
        else:
            if fmt.scale_rule == "ocp_rceil":
                raise ValueError(f"{fmt.name}: the RCEIL scale rule is implemented for "
                                 f"in_kind 'fixed' only, not 'fp32'")
            for name, v in (("in_width", in_width), ("in_frac", in_frac)):
                if v is not None:
                    raise ValueError(f"{name} applies to in_kind 'fixed' only; leave it None "
                                     f"for 'fp32', not {v!r}")
        mode_reg = int(len(modes) > 1)         # mxsf: the mode-select register
        if pipeline is None:
            pipeline = _DEEPEST + mode_reg
        check_int("pipeline", pipeline, 2 * mode_reg, _DEEPEST + mode_reg)
        self._fmt = tile_fmt if tile else fmt
        self._k, self._modes, self._tile = k, modes, tile
        self._in_kind, self._in_width, self._in_frac = in_kind, in_width, in_frac
        self._pipeline, self._depth = pipeline, pipeline - mode_reg
        in_shape = signed(in_width) if in_kind == "fixed" else unsigned(32)
        if is_mxsf(fmt):
            o_layout = data.StructLayout({"elements": data.ArrayLayout(unsigned(8), k),
                                          "mode": unsigned(1), "scale": unsigned(8)})
        else:
            o_layout = data.StructLayout({
                "scale": unsigned(8),
                "elements": data.ArrayLayout(layout_of(fmt.element), k)})
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(in_shape, k))),
            "o": Out(stream.Signature(o_layout)),
        })

    fmt = property(lambda self: self._fmt)
    k = property(lambda self: self._k)
    #: ``(r, c)`` for a tile format (one tile per block, row-major), else ``None``.
    tile = property(lambda self: self._tile)
    in_kind = property(lambda self: self._in_kind)
    #: Bits per input element: ``in_width`` (fixed) or 32 (fp32).
    in_width = property(lambda self: 32 if self._in_kind == "fp32" else self._in_width)
    #: Fractional input bits (fixed); ``None`` for fp32.
    in_frac = property(lambda self: self._in_frac)
    latency = property(lambda self: self._pipeline)

    # ---- front ends: per element magnitude ``mag`` (SW bits), sign ``neg``, exponent ``ex``
    # (the value is (-1)**neg * mag * 2**ex); per block L = floor(log2 max|x|), ``zero``
    # (every element 0) and ``bad`` (a NaN or Inf). ``live`` holds what later stages use,
    # ``cut`` registers it at a boundary of this pipeline depth ----------------------------

    def _front_fixed(self, m, cut, early):
        W, Fi, k = self._in_width, self._in_frac, self._k
        mags, negs = [], []
        for j in range(k):
            v = self.i.payload[j]
            mg = Signal(W, name=f"mag{j}")
            m.d.comb += mg.eq(Mux(v < 0, -v, v))
            mags.append(mg)
            negs.append(v < 0)
        live = cut("front", {"valid": self.i.valid, "mag": mags, "neg": negs})
        # floor(log2 max|x|) is the highest set bit of the OR of the magnitudes
        orm = Signal(W, name="mag_or")
        m.d.comb += orm.eq(or_tree(live["mag"]))
        live["mag_or"] = orm
        if early:
            live["p"] = [msb(m, x, W, f"msb{j}") for j, x in enumerate(live["mag"])]
        live = cut("tree", live)
        orm = live.pop("mag_or")
        live.update(ex=[Const(-Fi, signed(16))] * k, bad=Const(0, 1))
        # L = msb - in_frac
        return live, msb(m, orm, W, "amax_msb"), orm == 0, (-Fi, W - 1 - Fi)

    def _front_fp32(self, m, cut, early):
        k = self._k
        mags, negs, exs, efs, fins = [], [], [], [], []
        for j in range(k):
            b = self.i.payload[j]
            ef, f = b[23:31], b[:23]
            fin = Signal(name=f"fin{j}")
            m.d.comb += fin.eq(ef != 0xFF)
            mg = Signal(_F32_SIG, name=f"sig{j}")
            m.d.comb += mg.eq(Mux(fin, Mux(ef == 0, f, f | (1 << 23)), 0))
            ex = Signal(signed(9), name=f"ex{j}")
            m.d.comb += ex.eq(Mux(ef == 0, 1, ef) - 150)
            efm = Signal(8, name=f"ef{j}")
            m.d.comb += efm.eq(Mux(fin, ef, 0))
            mags.append(mg)
            negs.append(b[31])
            exs.append(ex)
            efs.append(efm)
            fins.append(fin)
        bad = Signal(name="bad")
        m.d.comb += bad.eq(~all_of(fins))
        live = cut("front", {"valid": self.i.valid, "mag": mags, "neg": negs, "ex": exs,
                             "ef": efs, "bad": bad})
        # the largest biased exponent of the finite elements; when it is 0 (no normal
        # element) the highest set bit of the OR of the (subnormal) significands
        orm = Signal(_F32_SIG, name="sig_or")
        m.d.comb += orm.eq(or_tree(live["mag"]))
        levels = (k - 1).bit_length()
        efs = max_levels(m, live.pop("ef"), 8, "efmax_a", (levels + 1) // 2)
        live.update(sig_or=orm, efmax=efs)
        if early:
            live["p"] = [msb(m, x, _F32_SIG, f"msb{j}") for j, x in enumerate(live["mag"])]
        live = cut("tree", live)
        orm = live.pop("sig_or")
        efm = max_levels(m, live.pop("efmax"), 8, "efmax_b")[0]
        L = Signal(signed(16), name="lmax")
        m.d.comb += L.eq(Mux(efm == 0, msb(m, orm[:23], 23, "amax_msb") - 149, efm - 127))
        return live, L, (efm == 0) & (orm == 0), (-149, 127)

    def _lmax(self, e, se_lo):
        """Left pre-shift of the magnitude that makes the element's right shift ``sh``
        non-negative for every input (``-min sh``, or 0), from the input kind's bounds."""
        Fi = self._in_frac
        if self._in_kind == "fixed":
            if e.kind == "fp":
                return max(0, e.man_bits - Fi - se_lo - emin(e))
            return max(0, e.frac_bits - Fi - se_lo)
        # fp32: a normal x has a 24-bit significand (msb 23), and se >= L - emax; a
        # subnormal x has exponent -149 and se >= -127
        if e.kind == "fp":
            return max(0, e.man_bits - 23, e.man_bits - 22 - emin(e))
        return max(0, e.emax + e.frac_bits - 23, e.frac_bits - 22)

    # ---- per element, in three steps with a possible register between them. ``mg * 2**ex``
    # is the input magnitude, ``p`` the index of its highest set bit, ``se`` the block scale;
    # ``se >= L - emax`` (E8M0's upper clamp is out of reach, __init__ checks) bounds every
    # element's exponent to ``emax`` and its rounded magnitude to the element's range ------

    def _terms(self, e, se, se_lo, SW):
        """The terms of the elements' shift amounts and exponent fields that depend on the
        block only (fixed: the input exponent too, the same for every element), as Python
        arithmetic on ``se`` (an int or an Amaranth value): fp ``(t, u, v)``, int ``(v,)``.
        An element (``pe = p + ex``, fixed: ``p``) is below the normal range iff
        ``pe < t``; its exponent field plus the hidden bit is ``pe - u`` (modulo
        ``2**exp_bits``); its shift
        below the normal range (int: always) is ``v - ex`` (fixed: ``v``)."""
        lmax = self._lmax(e, se_lo)
        xe = -self._in_frac if self._in_kind == "fixed" else 0
        if e.kind == "fp":
            e_min = emin(e)
            return (se + e_min - xe, se - e.bias - xe, se - xe + (e_min - e.man_bits + lmax))
        return (se - xe + (lmax - e.frac_bits),)

    def _term_signals(self, e, SW, se_lo, name):
        """Signals for :meth:`_terms` (fixed: clamped to the range they are compared in)."""
        XW = SW + self._lmax(e, se_lo)
        v = Signal(range(XW + 2) if self._in_kind == "fixed" else signed(16), name=f"{name}_v")
        if e.kind != "fp":
            return (v,)
        t = Signal(range(SW + 1) if self._in_kind == "fixed" else signed(16), name=f"{name}_t")
        return (t, Signal(e.exp_bits, name=f"{name}_u"), v)

    def _clamp_terms(self, e, terms, SW, se_lo):
        """Fixed input: ``t`` clamped to ``[0, SW]`` (``p`` is in ``[0, SW)``), ``v`` to
        ``[0, XW + 1]`` (``lmax`` makes it non-negative for every block with a non-zero
        element), as Python ints."""
        XW = SW + self._lmax(e, se_lo)
        *tu, v = terms
        v = min(max(v, 0), XW + 1)
        if e.kind != "fp":
            return (v,)
        t, u = tu
        return (min(max(t, 0), SW), u % (1 << e.exp_bits), v)

    def _shift_amount(self, m, e, p, ex, terms, SW, se_lo, name):
        """Step 1: the right shift ``sc`` of ``mg << lmax`` (clamped to ``XW + 1``, which
        gives 0 as any larger shift does) and, for fp, the code's exponent field plus one
        (the hidden bit of the shifted magnitude), ``ec``: ``ee + bias`` (0 below the
        normal range)."""
        lmax = self._lmax(e, se_lo)
        XW = SW + lmax
        fixed = self._in_kind == "fixed"
        sc = Signal(range(XW + 2), name=f"{name}_sc")
        if fixed:
            ssc = terms[-1]
        else:
            ss = Signal(signed(16), name=f"{name}_ss")
            m.d.comb += ss.eq(terms[-1] - ex)
            ssc = Mux(ss > XW + 1, XW + 1, ss)
        if e.kind != "fp":
            m.d.comb += sc.eq(ssc)
            return sc, None
        t, u, _ = terms
        pe = p
        if not fixed:
            pe = Signal(signed(16), name=f"{name}_pe")
            m.d.comb += pe.eq(p + ex)
        sub = Signal(name=f"{name}_sub")
        m.d.comb += sub.eq(pe < t)
        # subnormal: the block's shift; normal: p - man (below XW + 1)
        m.d.comb += sc.eq(Mux(sub, ssc, p + (lmax - e.man_bits)))
        ec = Signal(e.exp_bits, name=f"{name}_ec")   # ee + bias <= emax + bias
        m.d.comb += ec.eq(Mux(sub, 0, pe - u))
        return sc, ec

    def _shift(self, m, e, mg, sc, SW, se_lo, name):
        """Step 2: the shifted magnitude ``q0`` (truncated), its guard and sticky bits."""
        lmax = self._lmax(e, se_lo)
        XW = SW + lmax
        # fp: below 2**(man + 1) (man + 1 significant bits); int: |x| / 2**se < 2**(emax + 1)
        QW = e.man_bits + 1 if e.kind == "fp" else e.emax + 1 + e.frac_bits
        x = Signal(XW + 1, name=f"{name}_x")
        m.d.comb += x.eq(mg << lmax)
        q0 = Signal(QW, name=f"{name}_q0")
        m.d.comb += q0.eq(x >> sc)
        guard = (Cat(Const(0, 1), x) >> sc)[0]          # x[sc - 1], 0 for sc == 0
        # sticky: a bit of x below the guard bit (x's low lmax bits are 0): mg[b] with
        # sc > b + lmax + 1, each compare as gates of sc's bits (no carry chain)
        sticky = or_tree([mg[b] & gt_const(sc, b + lmax + 1) for b in range(SW)])
        gs = Signal(2, name=f"{name}_gs")
        m.d.comb += gs.eq(Cat(guard, sticky))
        return q0, gs

    def _pack(self, m, e, q0, gs, ec, zero, name):
        """Step 3: RNE and the saturated code magnitude (fp, no sign bit) or integer
        magnitude (int). ``gs``: guard and sticky bits."""
        inc = gs[0] & (gs[1] | q0[0])
        top = max_code(e)
        out = Signal(range(top + 1), name=f"{name}_mag")
        if e.kind == "fp":
            # normal: q0 has its hidden bit at man, ec is the field plus one; subnormal:
            # q0 < 2**man and ec == 0. A carry of the rounding goes into the exponent.
            cm = Signal(e.exp_bits + e.man_bits + 1, name=f"{name}_cm")
            m.d.comb += cm.eq(Cat(q0[:e.man_bits], ec) + inc)
            m.d.comb += out.eq(Mux(zero, 0, Mux(cm > top, top, cm)))
        else:
            q = Signal(len(q0) + 1, name=f"{name}_q")
            m.d.comb += q.eq(q0 + inc)
            m.d.comb += out.eq(Mux(q > top, top, q))
        return out

    def _skid(self, m, q, copies):
        """The output side of a registered pipeline: ``q`` is its last stage (registers
        updated under the enables), ``o`` shows a skid register while it holds a block,
        else ``q``. Returns ``copies`` equal enable registers (``keep``: synthesis keeps
        them apart, each drives a share of the stages), each loaded with ``~o.valid |
        o.ready``: the enable of a stall-all pipeline one cycle late. When ``o`` does not
        take a block ``q`` shows, the stages still advance that cycle and the skid
        register keeps the block; they then hold (the enables low) until ``o`` takes it.
        ``i.ready`` is copy 0: a register, not ``o.ready``'s logic."""
        o = self.o
        ens = [Signal(init=1, name=f"stage_en{c}", attrs={"keep": 1}) for c in range(copies)]
        m.d.sync += [e.eq(~o.valid | o.ready) for e in ens]
        full = Signal(name="skid_full")
        skid = Signal(len(Value.cast(q.payload)), name="skid", reset_less=True)
        m.d.comb += [o.valid.eq(full | q.valid), self.i.ready.eq(ens[0]),
                     Value.cast(o.payload).eq(Mux(full, skid, Value.cast(q.payload)))]
        with m.If(full):
            with m.If(o.ready):
                m.d.sync += full.eq(0)
        with m.Elif(ens[0] & q.valid & ~o.ready):
            m.d.sync += [full.eq(1), skid.eq(Value.cast(q.payload))]
        return ens

    def elaborate(self, platform):
        m = Module()
        k, modes, cuts = self._k, self._modes, _CUTS[self._depth]
        mxsf = len(modes) > 1
        early = "shift" in cuts   # the elements' highest set bits before the scale register
        if self._pipeline:
            # the stages' enables are registers (copies, one per element), the output a
            # skid register: o.ready reaches no stage's enable (see _skid)
            q = stream.Signature(self.o.payload.shape()).create()
            ens = self._skid(m, q, k + 2)
            en = ens[1]                      # the output stage's copy
        else:
            q, ens = self.o, None
            en = stall_all(m, self.i, self.o, self._pipeline)

        def en_of(name):
            # element j's registers (names ending in j) share copy j of the enable
            if ens is None:
                return en
            j = re.search(r"(\d+)$", name)
            return ens[2 + int(j.group(1)) % (len(ens) - 2)] if j else ens[0]

        def reg(value, shape, name, reset_less=True):
            # data registers need no reset (``valid`` says what they hold)
            r = Signal(shape, name=name, reset_less=reset_less)
            with m.If(en_of(name)):
                m.d.sync += r.eq(value)
            return r

        def cut(name, live):
            """``live`` through the register boundary ``name`` if this depth has it."""
            if name not in cuts:
                return live
            def one(v, n):
                return v if isinstance(v, Const) else reg(v, Value.cast(v).shape(), n,
                                                          reset_less=n != f"{name}_valid")
            return {key: [one(x, f"{name}_{key}{j}") for j, x in enumerate(v)]
                    if isinstance(v, list) else one(v, f"{name}_{key}")
                    for key, v in live.items()}

        # decode, magnitudes, max|x|, one scale exponent per mode and the block's terms of
        # the elements' shift amounts
        if self._in_kind == "fixed":
            live, pos, zero, (l_lo, l_hi) = self._front_fixed(m, cut, early)
            SW = self._in_width
        else:
            live, L, zero, (l_lo, l_hi) = self._front_fp32(m, cut, early)
            SW = _F32_SIG
        # the block's highest bit position (fixed) / exponent (fp32), registered apart
        # from the table of terms below at the deepest pipeline
        live.update(blk_pos=pos if self._in_kind == "fixed" else L, blk_zero=zero)
        live = cut("pos", live)
        zero = live.pop("blk_zero")
        if self._in_kind == "fixed":
            pos = live.pop("blk_pos")
        else:
            L = live.pop("blk_pos")
        ses, se_los, terms = [], [], []
        up = None                  # RCEIL: the scale is one above the floor rule's
        if self._fmt.scale_rule == "ocp_rceil":
            # max|x| above the largest value of its binade that keeps the floor exponent
            # (rceil_thresholds: a constant per highest-bit position) iff some |x| is
            thr = Signal(SW, name="rceil_thr")
            with m.Switch(pos):
                for pv, tv in enumerate(rceil_thresholds(modes[0], SW, self._in_frac)):
                    with m.Case(pv):
                        m.d.comb += thr.eq(tv)
            up = Signal(name="rceil_up")
            m.d.comb += up.eq(or_tree([x > thr for x in live["mag"]]))
        for i, e in enumerate(modes):
            se = Signal(signed(16), name=f"se{i}")
            lo = max(SE_LO, l_lo - e.emax)
            ts = self._term_signals(e, SW, lo, f"blk{i}")
            if self._in_kind == "fixed":
                # a table of the highest set bit of max|x| (L = pos - in_frac)
                def consts(se_v):
                    return [se.eq(se_v), *(a.eq(b) for a, b in zip(
                        ts, self._clamp_terms(e, self._terms(e, se_v, lo, SW), SW, lo)))]
                with m.If(zero):
                    m.d.comb += consts(SE_LO)
                with m.Else():
                    with m.Switch(pos):
                        for pv in range(SW):
                            raw = pv - self._in_frac - e.emax
                            with m.Case(pv):
                                if up is None:
                                    m.d.comb += consts(min(max(raw, SE_LO), SE_HI))
                                    continue
                                with m.If(up):
                                    m.d.comb += consts(min(max(raw + 1, SE_LO), SE_HI))
                                with m.Else():
                                    m.d.comb += consts(min(max(raw, SE_LO), SE_HI))
            else:
                raw = L - e.emax
                hi = Mux(raw > SE_HI, SE_HI, raw) if l_hi - e.emax > SE_HI else raw
                m.d.comb += se.eq(Mux(zero | (raw < SE_LO), SE_LO, hi))
                m.d.comb += [a.eq(b) for a, b in zip(ts, self._terms(e, se, lo, SW))]
            ses.append(se)
            se_los.append(lo)
            terms.append(ts)
        live["se"] = ses
        for i, ts in enumerate(terms):
            live[f"blk{i}"] = list(ts)
        live = cut("scale", live)

        # per mode and element: shift amount; shift with RNE; encode, saturate
        ps = live.pop("p") if early else [
            msb(m, x, SW, f"msb{j}") for j, x in enumerate(live["mag"])]
        zs = []
        for j, x in enumerate(live["mag"]):
            z = Signal(name=f"zero{j}")
            m.d.comb += z.eq(x == 0)
            zs.append(z)
        live["zero"] = zs
        for i, e in enumerate(modes):
            ts = live.pop(f"blk{i}")
            st = [self._shift_amount(m, e, ps[j], live["ex"][j], ts, SW, se_los[i],
                                     f"m{i}_{j}") for j in range(k)]
            live[f"sc{i}"] = [s for s, _ in st]
            if e.kind == "fp":
                live[f"ec{i}"] = [c for _, c in st]
        if not mxsf:
            del live["ex"]
        live = cut("shift", live)
        for i, e in enumerate(modes):
            scs = live.pop(f"sc{i}")
            st = [self._shift(m, e, live["mag"][j], scs[j], SW, se_los[i], f"m{i}_{j}")
                  for j in range(k)]
            live[f"q{i}"] = [q for q, _ in st]
            live[f"gs{i}"] = [r for _, r in st]
        if not mxsf:
            del live["mag"]
        live = cut("round", live)
        codes = [[self._pack(m, e, live[f"q{i}"][j], live[f"gs{i}"][j],
                             live[f"ec{i}"][j] if e.kind == "fp" else None,
                             live["zero"][j], f"m{i}_{j}") for j in range(k)]
                 for i, e in enumerate(modes)]
        valid, negs, ses, bad = live["valid"], live["neg"], live["se"], live["bad"]

        if not mxsf:
            e = modes[0]
            out = [q.valid.eq(valid), q.payload.scale.eq(Mux(bad, 0xFF, ses[0] + 127))]
            for j in range(k):
                el = q.payload.elements[j]
                if e.kind == "fp":
                    out.append(el.as_value().eq(
                        Mux(bad, 0, codes[0][j] | (negs[j] << (e.bits - 1)))))
                else:
                    out.append(el.value.eq(Mux(bad, 0, Mux(negs[j], -codes[0][j], codes[0][j]))))
            drive_output(m, out, en, self._pipeline)
            return m
        return mxsf_select(m, q, en, reg, valid, modes, codes, live["mag"], negs,
                           live["ex"], ses, bad, SW, (l_lo, l_hi))
