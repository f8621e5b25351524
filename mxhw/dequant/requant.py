"""Re-quantiser: a block of k fixed-point or FP32 results to an MX block (E8M0 scale, OCP
floor rule, elements RNE with saturation), for the OCP MX formats and MXSF (whose mode it
chooses per block by the exact squared error, as golden does)."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .. import golden
from ..formats import layout_of, lookup_format
from ..golden.formats import BlockFormat
from .aligner import _check_k, max_levels

__all__ = ["Requantizer", "IN_KINDS"]

#: Input kinds the re-quantiser accepts: ``"fixed"`` (signed integers with a fixed number of
#: fractional bits) and ``"fp32"`` (IEEE 754 binary32 bit patterns).
IN_KINDS = ("fixed", "fp32")

_SE_LO, _SE_HI = -127, 127  # unbiased exponents E8M0 holds (255 is NaN)

#: The register boundaries of each ``pipeline`` depth (besides the output register), in
#: data-flow order: ``front`` (magnitudes, signs, exponents of the elements), ``tree``
#: (the OR of the magnitudes (fixed) / half of the exponent maximum tree (fp32)),
#: ``scale`` (the block scale(s) and the block's terms of the shift amounts, after
#: max|x|), ``shift`` (per element the shift amount, before the barrel shifter), ``round``
#: (per element the shifted magnitude with its guard and sticky bits, before rounding,
#: packing and saturation).
_CUTS = {1: (), 2: ("scale",), 3: ("scale", "shift"), 4: ("scale", "shift", "round"),
         5: ("front", "scale", "shift", "round"),
         6: ("front", "tree", "scale", "shift", "round")}
_F32_SIG = 24  # binary32 significand width with the hidden bit


def _msb(m, x, width, name):
    """Index of the highest set bit of ``x`` (0 when ``x == 0``): a priority encoder."""
    p = Signal(range(max(2, width)), name=name)
    for b in range(width):  # later assignments win: the highest set bit
        with m.If(x[b]):
            m.d.comb += p.eq(b)
    return p


def _balanced(values, op):
    """``op`` over ``values`` as a balanced tree (depth ``ceil(log2(len(values)))``)."""
    level = list(values)
    while len(level) > 1:
        level = [op(level[j], level[j + 1]) if j + 1 < len(level) else level[j]
                 for j in range(0, len(level), 2)]
    return level[0]


def _gt_const(x, c):
    """``x > c`` for an unsigned value ``x`` and an int ``c``, as AND/OR gates of ``x``'s
    bits (LSB first), not a subtractor: a function of ``len(x)`` bits that maps to one
    or two LUT levels."""
    if c < 0:
        return Const(1, 1)
    if c >= (1 << len(x)) - 1:
        return Const(0, 1)
    r = Const(0, 1)
    for i in range(len(x)):
        r = x[i] & r if (c >> i) & 1 else x[i] | r
    return r


def _is_mxsf(fmt):
    return tuple(c.name for c in fmt.candidates) == ("mxsf_w", "mxsf_s")


def block_format(fmt):
    """The :class:`BlockFormat` named by ``fmt`` that the re-quantiser supports: an OCP MX
    format (one fp or int element format) or ``mxsf`` (1-D blocks)."""
    fmt = lookup_format(fmt, "fmt", "block")
    common = (fmt.scale.kind == "pow2" and fmt.scale.bits == 8 and fmt.scale.bias == 127
              and fmt.scale_rule == "ocp_floor" and fmt.rounding == "rne"
              and not isinstance(fmt.block, tuple))
    ocp = len(fmt.candidates) == 1 and fmt.candidates[0].kind in ("fp", "int")
    if not (common and (ocp or _is_mxsf(fmt))):
        raise ValueError(f"fmt must be an OCP MX block format (one fp or int element format, "
                         f"E8M0 scale, floor rule, RNE, 1-D blocks) or mxsf, not {fmt.name!r}")
    return fmt


def _hw_modes(fmt):
    """The element descriptors the hardware quantises to, one per candidate. MXSF mode S is
    the fp6_e3m2 value set in the low 6 bits of its code (golden.mxsf), so it is quantised
    as fp6_e3m2 and zero-extended."""
    if _is_mxsf(fmt):
        return [fmt.candidates[0], golden.formats.get("fp6_e3m2")]
    return [fmt.element]


def _emin(e):
    return 1 - e.bias


def _lsb(e):
    """Exponent of the smallest step of the fp element ``e``: ``emin - man_bits``."""
    return _emin(e) - e.man_bits


def _max_code(e):
    """Largest finite magnitude code (fp, without the sign) or integer (int, symmetric)."""
    if e.kind == "fp":
        return max(c for c in range(e.n_codes >> 1) if not e.nonfinite_mask[c])
    return (1 << (e.bits - 1)) - 1


def _sum_tree(m, terms, width, name):
    """Balanced adder tree over unsigned ``terms`` (result ``width`` bits)."""
    level, n = list(terms), 0
    while len(level) > 1:
        nxt = []
        for j in range(0, len(level) - 1, 2):
            s = Signal(width, name=f"{name}_{n}")
            n += 1
            m.d.comb += s.eq(level[j] + level[j + 1])
            nxt.append(s)
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


class Requantizer(wiring.Component):
    """Quantise a block of ``k`` fixed-point or FP32 values to an MX block, as golden does.

    **Input.** ``in_kind="fixed"``: element ``j`` is ``v_j * 2**-in_frac`` with
    ``v_j = i.payload[j]`` a signed ``in_width``-bit integer. ``in_kind="fp32"``: element
    ``j`` is the IEEE binary32 number whose bit pattern is ``i.payload[j]`` (subnormals
    included, ``-0`` keeps its sign); a block holding a NaN or +-Inf gives the NaN scale
    ``0xFF`` and all element codes 0, as golden does (for ``mxsf`` also mode 0: golden
    chooses the mode of an all-zero block, a tie).

    **Scale.** The OCP floor rule: with ``L = floor(log2(max |x|))`` (the highest set bit
    of the OR of the magnitudes (fixed); the largest exponent field, or for a block without
    a normal number the highest set bit of the OR of the significands (fp32)),
    ``shared_exp = L - emax_elem`` clamped to ``[-127, 127]`` (an all-zero block gets code
    0, ``shared_exp = -127``).

    **Elements.** ``x_i / 2**shared_exp`` rounded to nearest, ties to even, saturating to
    the element's largest finite value (``fp``) or to ``+-(2**(bits-1) - 1)`` (symmetric
    ``int``, MXINT). A negative value that rounds to zero gives ``-0`` in fp formats (and
    in MXSF mode S), as golden does.

    **MXSF** (``fmt="mxsf"``, the quantising side of the MXSF mode switch): the block is
    quantised in both modes (W: E2M5 bias 1, emax 2; S: fp6_e3m2 in the low 6 bits, emax 4),
    each with its own scale by the rule above; per element the error ``y - x`` of each
    mode is formed exactly as an integer on the grid ``2**(g - sig_width)``,
    ``g = min over modes of (shared_exp + lsb_exp)``, ``sig_width = in_width`` (fixed) or
    24 (fp32): every element that either mode quantises to non-zero lies on that grid, and
    elements both modes quantise to zero add the same (truncated) term to both errors, so
    the comparison of the sums of squares is exact. ``|y - x| <= 2**(L - 2)`` and
    ``g >= L - 8`` bound each error to ``sig_width + 7`` bits: ``2k`` squarers of that
    width and two adder trees. The block takes the mode with the smaller squared error,
    ties to mode W (0), and outputs that mode's scale and codes.

    Parameters
    ----------
    fmt : str or BlockFormat
        An OCP MX block format (``"mxfp8_e4m3"``, ..., ``"mxfp4"``, ``"mxint8"``) or
        ``"mxsf"``.
    k : int
        Elements per block.
    in_kind : "fixed" or "fp32"
        The input representation (see :data:`IN_KINDS`).
    in_width : int or None
        ``fixed``: input integer width, 2..53 (values stay exact in float64 for the golden
        twin); default 24. ``fp32``: must be ``None`` (the input is 32 bits).
    in_frac : int or None
        ``fixed``: fractional bits of the input, such that every scale exponent fits E8M0;
        default 16. ``fp32``: must be ``None``.
    pipeline : int
        1..6, the number of register stages (the latency; ``mxsf`` adds one). Each depth
        keeps the registers of the smaller ones and adds one boundary:

        1. the output register only (all of the logic in one cycle);
        2. ``scale``: also after max|x| and the block scale (with the block's terms of the
           elements' shift amounts, the magnitudes, signs, exponents and NaN flag);
        3. ``shift``: also per element after the shift amount and exponent field, before
           the barrel shifter (from 3 on, each element's highest set bit is found before
           the ``scale`` register, beside max|x|);
        4. ``round``: also per element after the barrel shifter (the truncated magnitude, its
           guard and sticky bits), before rounding, packing and saturation;
        5. ``front``: also after the front end (magnitudes and signs; fp32: significands,
           exponents, NaN/Inf flag), before max|x|;
        6. ``tree``: also inside max|x|: after the OR of the magnitudes (fixed), after half
           of the levels of the exponent maximum tree (fp32).

        Default 2. ``mxhw.bench.ppa`` measures depth 6 (ECP5, k=32, fixed 24-bit input:
        MXFP4 93 MHz, MXFP8 E4M3 102 MHz; depth 2 before these boundaries: 20 MHz; the
        depths between were not measured).

    Members
    -------
    i : In(stream.Signature(ArrayLayout(signed(in_width), k)))
        (``fp32``: ``ArrayLayout(unsigned(32), k)``, binary32 bit patterns.)
    o : Out(stream.Signature(StructLayout({"scale": unsigned(8),
        "elements": ArrayLayout(layout_of(fmt.element), k)})))
        (``mxsf``: ``StructLayout({"elements": ArrayLayout(unsigned(8), k),
        "mode": unsigned(1), "scale": unsigned(8)})``, the payload
        :class:`~mxhw.dequant.MXSFDecoder` takes.)

    Latency ``pipeline`` cycles (``mxsf``: ``pipeline + 1``, a register between the
    per-element quantisers/error terms and the squared-error sums and mode select); one
    block per cycle (the pipeline stalls as a whole while ``o`` is not ready:
    ``i.ready`` follows ``o`` combinationally, every register holds; a block is never
    lost or repeated).
    Golden twin: ``golden.quantize(x, fmt)`` on the block (its ``scales``, ``elements``
    and, for ``mxsf``, ``modes``), with ``x = v * 2.0**-in_frac`` (fixed) or the float32
    values (fp32).

    Raises
    ------
    TypeError, ValueError
        A parameter out of range (message names it and what is allowed).
    """

    def __init__(self, fmt, k=32, in_kind="fixed", in_width=None, in_frac=None, pipeline=2):
        fmt = block_format(fmt)
        _check_k(k)
        if in_kind not in IN_KINDS:
            raise ValueError(f"in_kind must be one of {IN_KINDS}, not {in_kind!r}")
        modes = _hw_modes(fmt)
        if in_kind == "fixed":
            in_width = 24 if in_width is None else in_width
            in_frac = 16 if in_frac is None else in_frac
            if not isinstance(in_width, int) or isinstance(in_width, bool) \
                    or not 2 <= in_width <= 53:
                raise ValueError(f"in_width must be an integer in 2..53, not {in_width!r}")
            if not isinstance(in_frac, int) or isinstance(in_frac, bool):
                raise TypeError(f"in_frac must be an integer, not {in_frac!r}")
            top = in_width - 1 - in_frac - min(e.emax for e in modes)
            if top > _SE_HI or in_frac > 1000:
                raise ValueError(f"in_frac {in_frac} with in_width {in_width} gives scale "
                                 f"exponents in [-127, {top}], outside E8M0's [-127, 127] "
                                 f"(or in_frac above 1000)")
        else:
            for name, v in (("in_width", in_width), ("in_frac", in_frac)):
                if v is not None:
                    raise ValueError(f"{name} applies to in_kind 'fixed' only; leave it None "
                                     f"for 'fp32', not {v!r}")
        if not isinstance(pipeline, int) or isinstance(pipeline, bool):
            raise TypeError(f"pipeline must be an integer, not {pipeline!r}")
        if pipeline not in _CUTS:
            raise ValueError(f"pipeline must be in 1..{max(_CUTS)}, not {pipeline!r}")
        self._fmt, self._k, self._modes = fmt, k, modes
        self._in_kind, self._in_width, self._in_frac = in_kind, in_width, in_frac
        self._pipeline = pipeline
        in_shape = signed(in_width) if in_kind == "fixed" else unsigned(32)
        if _is_mxsf(fmt):
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
    in_kind = property(lambda self: self._in_kind)
    #: Bits per input element: ``in_width`` (fixed) or 32 (fp32).
    in_width = property(lambda self: 32 if self._in_kind == "fp32" else self._in_width)
    #: Fractional input bits (fixed); ``None`` for fp32.
    in_frac = property(lambda self: self._in_frac)
    latency = property(lambda self: self._pipeline + (len(self._modes) > 1))

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
        m.d.comb += orm.eq(_balanced(live["mag"], lambda a, b: a | b))
        live["mag_or"] = orm
        if early:
            live["p"] = [_msb(m, x, W, f"msb{j}") for j, x in enumerate(live["mag"])]
        live = cut("tree", live)
        orm = live.pop("mag_or")
        live.update(ex=[Const(-Fi, signed(16))] * k, bad=Const(0, 1))
        # L = msb - in_frac
        return live, _msb(m, orm, W, "amax_msb"), orm == 0, (-Fi, W - 1 - Fi)

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
        m.d.comb += bad.eq(~_all(fins))
        live = cut("front", {"valid": self.i.valid, "mag": mags, "neg": negs, "ex": exs,
                             "ef": efs, "bad": bad})
        # the largest biased exponent of the finite elements; when it is 0 (no normal
        # element) the highest set bit of the OR of the (subnormal) significands
        orm = Signal(_F32_SIG, name="sig_or")
        m.d.comb += orm.eq(_balanced(live["mag"], lambda a, b: a | b))
        levels = (k - 1).bit_length()
        efs = max_levels(m, live.pop("ef"), 8, "efmax_a", (levels + 1) // 2)
        live.update(sig_or=orm, efmax=efs)
        if early:
            live["p"] = [_msb(m, x, _F32_SIG, f"msb{j}") for j, x in enumerate(live["mag"])]
        live = cut("tree", live)
        orm = live.pop("sig_or")
        efm = max_levels(m, live.pop("efmax"), 8, "efmax_b")[0]
        L = Signal(signed(16), name="lmax")
        m.d.comb += L.eq(Mux(efm == 0, _msb(m, orm[:23], 23, "amax_msb") - 149, efm - 127))
        return live, L, (efm == 0) & (orm == 0), (-149, 127)

    def _lmax(self, e, se_lo):
        """Left pre-shift of the magnitude that makes the element's right shift ``sh``
        non-negative for every input (``-min sh``, or 0), from the input kind's bounds."""
        Fi = self._in_frac
        if self._in_kind == "fixed":
            if e.kind == "fp":
                return max(0, e.man_bits - Fi - se_lo - _emin(e))
            return max(0, e.frac_bits - Fi - se_lo)
        # fp32: a normal x has a 24-bit significand (msb 23), and se >= L - emax; a
        # subnormal x has exponent -149 and se >= -127
        if e.kind == "fp":
            return max(0, e.man_bits - 23, e.man_bits - 22 - _emin(e))
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
            emin = _emin(e)
            return (se + emin - xe, se - e.bias - xe, se - xe + (emin - e.man_bits + lmax))
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
        sticky = _balanced([mg[b] & _gt_const(sc, b + lmax + 1) for b in range(SW)],
                           lambda a, b: a | b)
        gs = Signal(2, name=f"{name}_gs")
        m.d.comb += gs.eq(Cat(guard, sticky))
        return q0, gs

    def _pack(self, m, e, q0, gs, ec, zero, name):
        """Step 3: RNE and the saturated code magnitude (fp, no sign bit) or integer
        magnitude (int). ``gs``: guard and sticky bits."""
        inc = gs[0] & (gs[1] | q0[0])
        max_code = _max_code(e)
        out = Signal(range(max_code + 1), name=f"{name}_mag")
        if e.kind == "fp":
            # normal: q0 has its hidden bit at man, ec is the field plus one; subnormal:
            # q0 < 2**man and ec == 0. A carry of the rounding goes into the exponent.
            cm = Signal(e.exp_bits + e.man_bits + 1, name=f"{name}_cm")
            m.d.comb += cm.eq(Cat(q0[:e.man_bits], ec) + inc)
            m.d.comb += out.eq(Mux(zero, 0, Mux(cm > max_code, max_code, cm)))
        else:
            q = Signal(len(q0) + 1, name=f"{name}_q")
            m.d.comb += q.eq(q0 + inc)
            m.d.comb += out.eq(Mux(q > max_code, max_code, q))
        return out

    def elaborate(self, platform):
        m = Module()
        k, modes, cuts = self._k, self._modes, _CUTS[self._pipeline]
        mxsf = len(modes) > 1
        early = "shift" in cuts   # the elements' highest set bits before the scale register
        en = Signal()
        m.d.comb += [en.eq(~self.o.valid | self.o.ready), self.i.ready.eq(en)]

        def reg(value, shape, name, reset_less=True):
            # data registers need no reset (``valid`` says what they hold)
            r = Signal(shape, name=name, reset_less=reset_less)
            with m.If(en):
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
        ses, se_los, terms = [], [], []
        for i, e in enumerate(modes):
            se = Signal(signed(16), name=f"se{i}")
            lo = max(_SE_LO, l_lo - e.emax)
            ts = self._term_signals(e, SW, lo, f"blk{i}")
            if self._in_kind == "fixed":
                # a table of the highest set bit of max|x| (L = pos - in_frac)
                def consts(se_v):
                    return [se.eq(se_v), *(a.eq(b) for a, b in zip(
                        ts, self._clamp_terms(e, self._terms(e, se_v, lo, SW), SW, lo)))]
                with m.If(zero):
                    m.d.comb += consts(_SE_LO)
                with m.Else():
                    with m.Switch(pos):
                        for pv in range(SW):
                            raw = pv - self._in_frac - e.emax
                            with m.Case(pv):
                                m.d.comb += consts(min(max(raw, _SE_LO), _SE_HI))
            else:
                raw = L - e.emax
                hi = Mux(raw > _SE_HI, _SE_HI, raw) if l_hi - e.emax > _SE_HI else raw
                m.d.comb += se.eq(Mux(zero | (raw < _SE_LO), _SE_LO, hi))
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
            _msb(m, x, SW, f"msb{j}") for j, x in enumerate(live["mag"])]
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
            with m.If(en):
                m.d.sync += [self.o.valid.eq(valid),
                             self.o.payload.scale.eq(Mux(bad, 0xFF, ses[0] + 127))]
                for j in range(k):
                    out = self.o.payload.elements[j]
                    if e.kind == "fp":
                        m.d.sync += out.as_value().eq(
                            Mux(bad, 0, codes[0][j] | (negs[j] << (e.bits - 1))))
                    else:
                        m.d.sync += out.value.eq(
                            Mux(bad, 0, Mux(negs[j], -codes[0][j], codes[0][j])))
            return m
        return self._mode_select(m, en, reg, valid, modes, codes, live["mag"], negs,
                                 live["ex"], ses, bad, SW, (l_lo, l_hi))

    def _mode_select(self, m, en, reg, valid, modes, codes, mags, negs, exs, ses, bad, SW,
                     l_range):
        """MXSF: exact per-element errors of both modes, registered; then the sums of
        squares, the comparison (ties to mode 0) and the output register."""
        k = self._k
        lsbs = [_lsb(e) for e in modes]
        # g = min over modes of (se + lsb); the largest offset se_i + lsb_i - g, over every
        # block maximum L (and the all-zero block) fixes the width of the Y shifters
        def se_of(L, e):
            return _SE_LO if L is None else min(max(L - e.emax, _SE_LO), _SE_HI)
        offs = 0
        for L in [None, *range(l_range[0], l_range[1] + 1)]:
            t = [se_of(L, e) + b for e, b in zip(modes, lsbs)]
            offs = max(offs, max(t) - min(t))
        tg = [Signal(signed(16), name=f"g{i}") for i in range(len(modes))]
        for t, se, b in zip(tg, ses, lsbs):
            m.d.comb += t.eq(se + b)
        g = Signal(signed(16), name="gmin")
        m.d.comb += g.eq(Mux(tg[0] < tg[1], tg[0], tg[1]))

        # |d| <= 2**(L - 2) and g >= L - 8: |d| < 2**(SW + 7) on the grid 2**(g - SW);
        # X < 2**(L + 1) < 2**(SW + 9); Y <= 2**(L + 1)
        XW, YW, DW = SW + 9, SW + 10, SW + 7
        ds = [[None] * k for _ in modes]
        for j in range(k):
            ax = Signal(signed(16), name=f"ax{j}")
            m.d.comb += ax.eq(exs[j] - g + SW)
            axl = Signal(range(SW + 9), name=f"axl{j}")
            axr = Signal(range(SW + 1), name=f"axr{j}")
            m.d.comb += [axl.eq(Mux(ax < 0, 0, Mux(ax > SW + 8, SW + 8, ax))),
                         axr.eq(Mux(ax >= 0, 0, Mux(-ax > SW, SW, -ax)))]
            X = Signal(XW, name=f"X{j}")
            # elements below the grid (ax < 0) quantise to 0 in both modes: truncation
            # changes both errors by the same term
            m.d.comb += X.eq((mags[j] << axl) >> axr)
            for i, e in enumerate(modes):
                c = codes[i][j]
                man = e.man_bits
                E = c >> man
                sig = Mux(E == 0, c[:man], c[:man] | (1 << man))
                ay = Signal(range(offs + (1 << e.exp_bits) - 1 + SW), name=f"ay{i}_{j}")
                m.d.comb += ay.eq(tg[i] - g + Mux(E == 0, 0, E - 1) + SW)
                Y = Signal(YW, name=f"Y{i}_{j}")
                m.d.comb += Y.eq(sig << ay)
                d = Signal(signed(YW + 1), name=f"d{i}_{j}")
                m.d.comb += d.eq(Y - X)
                ad = Signal(DW, name=f"ad{i}_{j}")
                m.d.comb += ad.eq(Mux(d < 0, -d, d))
                ds[i][j] = ad

        # stage 3 register: codes with their signs, |errors|, scales, bad, valid
        valid = reg(valid, 1, "s2_valid", reset_less=False)
        bad = reg(bad, 1, "bad_s2")
        ses = [reg(se, signed(16), f"se_s2_{i}") for i, se in enumerate(ses)]
        full = []
        for i, e in enumerate(modes):
            full.append([reg(codes[i][j] | (negs[j] << (e.bits - 1)), 8, f"code_s2_{i}_{j}")
                         for j in range(k)])
        ds = [[reg(ds[i][j], DW, f"ad_s2_{i}_{j}") for j in range(k)]
              for i in range(len(modes))]

        SQ = 2 * DW + max(1, (k - 1).bit_length())
        errs = []
        for i in range(len(modes)):
            sqs = []
            for j in range(k):
                s = Signal(2 * DW, name=f"sq{i}_{j}")
                m.d.comb += s.eq(ds[i][j] * ds[i][j])
                sqs.append(s)
            err = Signal(SQ, name=f"err{i}")
            m.d.comb += err.eq(_sum_tree(m, sqs, SQ, f"sum{i}"))
            errs.append(err)
        mode = Signal(name="mode")
        # ties to mode W (0); a NaN/Inf block is all zeros to golden's mode choice: W
        m.d.comb += mode.eq(~bad & (errs[1] < errs[0]))
        with m.If(en):
            m.d.sync += [self.o.valid.eq(valid),
                         self.o.payload.mode.eq(mode),
                         self.o.payload.scale.eq(Mux(bad, 0xFF, Mux(mode, ses[1], ses[0])
                                                     + 127))]
            for j in range(k):
                m.d.sync += self.o.payload.elements[j].eq(
                    Mux(bad, 0, Mux(mode, full[1][j], full[0][j])))
        return m


def _all(bits):
    acc = Const(1, 1)
    for b in bits:
        acc = acc & b
    return acc
