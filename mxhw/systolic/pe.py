"""The bit-parallel MX multiply-accumulate PE of the systolic arrays."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .. import golden
from ..formats import lookup_format, moded_code, operand_element
from ..pe.multiplier import ElementMultiplier, multiply_sign_magnitude, product_width
from .fp32acc import F32_INF, F32_NAN, f32_add, int_to_f32, product_class

__all__ = ["MXMacPE", "MXBlockSumPE", "PE_PIPELINE_MAX", "block_format", "mode_port",
           "scale_exp_range", "block_sum_width", "scale_sum_shape"]



def delay_line(m, sig, n, name, keep=False):
    """``sig`` delayed by ``n`` registers in ``m``'s sync domain (``sig`` itself for 0).

    ``keep``: the registers carry the ``keep`` attribute. The arrays set it on the control
    bits that travel beside each row's or column's operands: every row gets the same
    control, one cycle later per step, so synthesis would merge the equal registers of
    all rows into one per anti-diagonal, whose fan-out then crosses the whole array.
    Vivado honours ``keep`` on a register; Yosys flows need :data:`mxhw.build.KEEP_FLOPS`
    (which the builds and the PPA harness run) to carry it over to the flip-flop."""
    for t in range(n):
        r = Signal.like(sig, name=f"{name}_d{t}", attrs={"keep": 1} if keep else {})
        m.d.sync += r.eq(sig)
        sig = r
    return sig


def block_format(fmt, name="fmt"):
    """The :class:`golden.formats.BlockFormat` named by ``fmt``, with a power-of-two scale
    and 1-D blocks (what the arrays accept). A format with several element modes chosen
    per block (MXSF) is accepted when its modes make one :func:`~mxhw.formats.operand_element`
    (equal widths, no Inf codes)."""
    fmt = lookup_format(fmt, name, "block")
    if isinstance(fmt.block, tuple):
        raise ValueError(f"{name}: {fmt.name} has 2-D blocks {fmt.block}; the arrays take "
                         f"1-D blocks along K")
    if fmt.scale.kind != "pow2":
        raise ValueError(f"{name}: {fmt.name} has {fmt.scale.name} scales; the arrays take "
                         f"power-of-two scales")
    try:
        operand_element(fmt)
    except ValueError as e:
        raise ValueError(f"{name}: {e}") from None
    return fmt


def mode_port(fmt):
    """The per-block mode port shape of ``fmt`` (``fmt.mode_bits`` wide), or None for a
    single-mode format."""
    return unsigned(fmt.mode_bits) if fmt.mode_bits else None


def scale_exp_range(fmt):
    """``(min, max)`` exponent of ``fmt``'s finite scale codes."""
    s = fmt.scale
    top = (1 << s.bits) - 1 - (1 if s.nan_code is not None else 0)
    return -s.bias, top - s.bias


def block_sum_width(fmt_a, fmt_b, k):
    """Width of the exact sum of ``k`` exact products (signed) of elements of ``fmt_a``
    and ``fmt_b`` (element formats: :func:`~mxhw.formats.operand_element`)."""
    return product_width(fmt_a, fmt_b) + max(k - 1, 1).bit_length()


PE_PIPELINE_MAX = 4


def check_pipeline(pipeline):
    """Validate a PE ``pipeline`` (register stages, 0..:data:`PE_PIPELINE_MAX`)."""
    golden.formats.check_int("pipeline", pipeline, 0, PE_PIPELINE_MAX)


def stage(m, sig, on, name):
    """``sig`` through one register when ``on`` (else ``sig`` itself)."""
    if not on:
        return sig
    r = Signal.like(sig, name=f"{name}_{getattr(sig, 'name', 'q')}")
    m.d.sync += r.eq(sig)
    return r


def scale_nan(fmt, code):
    """1 where ``code`` is ``fmt``'s NaN scale code (0 if the scale has none)."""
    return (code == fmt.scale.nan_code) if fmt.scale.nan_code is not None else Const(0, 1)


def _fits_signed(x, width):
    """``x`` (signed) lies in ``signed(width)``: its bits from ``width - 1`` up are equal."""
    top = x[width - 1:]
    return top.all() | ~top.any()


def _saturate(x, width):
    """``x`` (signed) clamped to ``signed(width)``."""
    return Mux(_fits_signed(x, width), x, Mux(x[-1], -(1 << (width - 1)),
                                              (1 << (width - 1)) - 1))


def acc_width(acc):
    """Bits of an accumulator value: ``acc.width`` (``fixed``), 32 (``fp32``: float32
    bits)."""
    return 32 if acc.mode == "fp32" else acc.width


def scale_offset(fa, fb, acc, lsb_exp):
    """``d - a_scale - b_scale``: the constant that turns the sum of two scale codes into
    the grid shift ``d = E + frac_bits`` (:func:`scale_code_sum`)."""
    return lsb_exp + (acc.frac_bits or 0) - fa.scale.bias - fb.scale.bias


def scale_sum_shape(fa, fb):
    """Shape of ``a_scale + b_scale`` (two scale codes of ``fa`` and ``fb``)."""
    return unsigned((((1 << fa.scale.bits) - 1) + ((1 << fb.scale.bits) - 1)).bit_length())


def scale_code_sum(m, fa, fb, a_scale, b_scale, name="scale_sum"):
    """``t = a_scale + b_scale`` (unsigned, :func:`scale_sum_shape`): with the constant
    :func:`scale_offset` it gives the grid shift ``d = t + off = E + frac_bits``, the left
    shift that puts an exact block sum on the accumulator grid
    (:func:`grid_shift_from_sum` takes ``t`` and ``off`` apart, so no adder of the
    offset or compare of a signed ``d`` stands before the range tests)."""
    t = Signal(scale_sum_shape(fa, fb), name=name)
    m.d.comb += t.eq(a_scale + b_scale)
    return t


def _sh_l_max(acc, split=0):
    """The left shift's clamp: ``width + 1`` rounded up to a multiple of ``2**split``
    (every shift from ``width + 1`` up takes a nonzero sum out of ``signed(width + 1)``
    and to 0 modulo ``2**width``; rounded up, the clamped shift's bits from ``split`` up
    still shift at least that far after a pre-shift by ``d mod 2**split``)."""
    return -(-(acc.width + 1) >> split) << split


def _sh_r_max(sw, split=0):
    """The right shift's clamp: ``sw`` rounded up to a multiple of ``2**split`` (every
    right shift from ``sw`` up leaves a ``sw``-bit sum's sign bits alone, the same
    rounded result)."""
    return -(-sw >> split) << split


def _shift_signals(acc, sw, split=0):
    return Signal(name="left"), Signal(range(_sh_l_max(acc, split) + 1), name="sh_l"), \
        Signal(range(_sh_r_max(sw, split) + 1), name="sh_r")


def _ge_base(acc, sw):
    """The smallest left shift ``k`` that can take a ``sw``-bit block sum out of
    ``signed(width + 1)``: ``ge`` (of :func:`grid_shift_from_sum`) holds ``d >= k`` from
    it up to ``width + 1``."""
    return max(acc.width - sw + 2, 0)


def _ge_const(x, c):
    """``x >= c`` for an unsigned value ``x`` and an integer constant ``c``, as AND/OR
    logic on ``x``'s bits (synthesis maps it to a few LUTs, where a compare operator
    becomes a carry chain)."""
    n = len(x)
    if c <= 0:
        return Const(1, 1)
    if c >= 1 << n:
        return Const(0, 1)
    top = 1 << (n - 1)
    if c & top:
        return x[n - 1] & _ge_const(x[:n - 1], c - top)
    return x[n - 1] | _ge_const(x[:n - 1], c)


def grid_shift_from_sum(m, acc, sw, t, off, t_ge=None, split=0):
    """``(left, sh_l, sh_r, ge)``, the shift of :func:`block_to_grid` for a ``sw``-bit
    block sum and the grid shift ``d = t + off``, ``t`` the (unsigned) sum of the two scale
    codes (:func:`scale_code_sum`) and ``off`` :func:`scale_offset`: ``left = d >= 0``,
    ``sh_l = min(max(d, 0), width + 1)``, ``sh_r = min(max(-d, 0), sw)``, and ``ge[i] = d
    >= k0 + i`` for ``k0 + i`` up to ``width + 1`` (``k0`` of :func:`_ge_base`: the left
    shifts that can overflow; driven for saturation only, the one reader).

    The range tests compare ``t`` with constants (as logic, :func:`_ge_const`: a signed
    compare of ``d`` becomes a carry chain per constant, which synthesis chained into many
    LUT levels) and only the shift amounts' few low bits are added, all side by side (no
    adder before a compare), then multiplexers. ``t_ge``: another
    register holding ``t``, for the overflow thermometer ``ge`` alone (the row unit's
    second copy: each register then drives half the range tests, placed near them).

    ``split`` > 0 adds a fifth member, ``pre = (d mod 2**split, -d mod 2**split)`` (from
    ``t``'s low ``split`` bits alone), for :func:`block_to_grid` to shift the sum left and
    right by before its first register; ``sh_l`` and ``sh_r`` are then clamped at
    :func:`_sh_l_max` and :func:`_sh_r_max` (multiples of ``2**split``) and only their
    bits from ``split`` up are used."""
    W = acc.width
    left, sh_l, sh_r = _shift_signals(acc, sw, split)
    nl, nr = len(sh_l), len(sh_r)
    l_max = _sh_l_max(acc, split)
    k0 = _ge_base(acc, sw)
    ge = Signal(W + 2 - k0, name="ge")
    d_lo = Signal(nl)                          # (t + off) mod 2**nl
    nd_lo = Signal(nr)                         # (-off - t) mod 2**nr
    r_max = _sh_r_max(sw, split)
    m.d.comb += [
        d_lo.eq(t[:nl] + (off % (1 << nl))),
        nd_lo.eq((-off) % (1 << nr) - t[:nr]),
        left.eq(_ge_const(t, -off)),
        sh_l.eq(Mux(_ge_const(t, l_max + 1 - off), l_max, Mux(left, d_lo, 0))),
        sh_r.eq(Mux(~_ge_const(t, -off - r_max), r_max, Mux(_ge_const(t, 1 - off), 0, nd_lo))),
    ]
    if acc.overflow == "saturate":              # only saturation reads it
        t_ge = t if t_ge is None else t_ge
        m.d.comb += ge.eq(Cat(_ge_const(t_ge, k - off) for k in range(k0, W + 2)))
    if not split:
        return left, sh_l, sh_r, ge
    pre = Signal(split, name="sh_pre")
    pre_r = Signal(split, name="sh_pre_r")
    m.d.comb += [pre.eq(t[:split] + (off % (1 << split))),
                 pre_r.eq((-off) % (1 << split) - t[:split])]
    return left, sh_l, sh_r, ge, (pre, pre_r)


def block_to_grid(m, acc, s, shift, extras, stages):
    """Put a finished exact block sum ``s`` on the accumulator grid ``2**-frac_bits``,
    ``shift = (left, sh_l, sh_r, ge[, pre])`` (:func:`grid_shift_from_sum`) the shift
    that does it: golden's ``round_shift(S, -(E + F), rounding)``, then clamped
    (``saturate``: to ``signed(width + 1)``, which leaves every saturated outcome
    unchanged; ``wrap``: modulo ``2**width``).

    ``stages`` (0..3) register boundaries: 1 captures ``s`` and the shift, 2 the shifted
    value (and, ``saturate``, whether the left shift overflows), 3 the clamped value.
    ``extras`` (signals) are delayed alike. Returns ``(v, *extras)``.

    With ``pre = (pre_l, pre_r)`` (``split`` bits each, :func:`grid_shift_from_sum`) both
    shifts are done in two parts: by ``pre_l`` / ``pre_r`` before the first register, by
    ``sh_l``'s / ``sh_r``'s bits from ``split`` up after it (the right pre-shift keeps
    whether it dropped a nonzero bit, for rounding); the saturation test's bit-pair flips
    and ``s != 0`` are also taken before the first register. The second stage's logic is
    then shorter multiplexers and an OR of two-input terms.
    """
    W = acc.width
    sw = len(s)
    left, sh_l, sh_r, ge, *pre = shift
    split = len(pre[0][0]) if pre else 0
    sat_ = acc.overflow == "saturate"

    def sat_inputs(x):
        # the saturation test's inputs from a sum x: its sign changes between neighbouring
        # bits, and x != 0
        flips = Signal(sw - 1, name="flips")
        nz = Signal(name="nz")
        if sat_:
            m.d.comb += [flips.eq(x[:-1] ^ x[1:]), nz.eq(x.any())]
        return flips, nz

    if split:
        pre_l, pre_r = pre[0]
        s_pre = Signal(signed(sw + (1 << split) - 1), name="s_pre")
        m.d.comb += s_pre.eq(s << pre_l)
        # right: (s << 1) >> pre_r, and whether a dropped bit was nonzero (bit 0 of
        # s << 1 is 0: bits 1 .. pre_r - 1; a shift past the top leaves the sign bits,
        # which round the same whatever the sticky bits)
        s_rpre = Signal(signed(sw + 1), name="s_rpre")
        st_pre = Signal(name="st_pre")
        m.d.comb += [s_rpre.eq((s << 1) >> pre_r),
                     st_pre.eq(Cat(Const(0, 1), *(s[i - 1] & (pre_r > i)
                                                  for i in range(1, min(1 << split, sw + 1)))
                                   ).any())]
        flips, nz = sat_inputs(s)
        s, s_pre, s_rpre, st_pre, flips, nz, left, sh_l, sh_r, ge, *extras = (
            stage(m, x, stages >= 1, "blk")
            for x in (s, s_pre, s_rpre, st_pre, flips, nz, left, sh_l, sh_r, ge, *extras))
    else:
        s, left, sh_l, sh_r, ge, *extras = (stage(m, x, stages >= 1, "blk")
                                            for x in (s, left, sh_l, sh_r, ge, *extras))
        flips, nz = sat_inputs(s)

    v_l = Signal(signed(sw + W + 2))
    if split:
        m.d.comb += v_l.eq(s_pre << Cat(Const(0, split), sh_l[split:]))
    else:
        m.d.comb += v_l.eq(s << sh_l)
    # (s << 1) >> sh_r: the quotient and, below it, the first dropped bit (the round bit;
    # with a zero shift it is bit 0 of s << 1, 0: no rounding); below that, the sticky bits
    if split:
        t_r = s_rpre
        sh_r = Cat(Const(0, split), sh_r[split:])
    else:
        t_r = Signal(signed(sw + 1), name="s2")
        m.d.comb += t_r.eq(s << 1)
    q2 = Signal(signed(sw + 1))
    m.d.comb += q2.eq(t_r >> sh_r)
    q = Signal(signed(sw))
    m.d.comb += q.eq(q2[1:])
    up = Signal()
    if acc.rounding == "rne":
        mask = Signal(sw + 1)
        m.d.comb += mask.eq((Const(1, sw + 2) << sh_r) - 1)
        sticky = (t_r.as_unsigned() & mask).any()
        if split:
            sticky = sticky | st_pre
        m.d.comb += up.eq(q2[0] & (sticky | q[0]))
    # saturate: whether the left-shifted value leaves signed(W + 1), found beside the
    # shifter from s and the thermometer ge (not from the shifter's output): s << d
    # overflows iff s does not fit in signed(W + 1 - d), i.e. iff s changes sign between
    # some bits i and i + 1 with i >= W - d, or s != 0 and d >= W + 1 (any larger shift).
    # Each term but the first is a function of three bits (two with ``pre``: the flips then
    # come registered), ORed flat. The right-shifted value
    # (|q + up| <= 2**(sw - 2)) fits when sw <= W + 1.
    ovf_l = Signal()
    neg = Signal()
    if acc.overflow == "saturate":
        k0 = _ge_base(acc, sw)
        terms = [nz & ge[W + 1 - k0]]
        for i in range(sw - 1):                # i >= W: any left shift (ge[0] = left)
            terms.append(flips[i] & ge[max(W - i, 0) - k0])
        m.d.comb += [ovf_l.eq(Cat(terms).any()), neg.eq(s[-1])]
    v_l, q, up, left, ovf_l, neg, *extras = (stage(m, x, stages >= 2, "sh")
                                             for x in (v_l, q, up, left, ovf_l, neg, *extras))

    if acc.overflow == "saturate":
        v = Signal(signed(W + 1))
        sat = Mux(neg, -(1 << W), (1 << W) - 1)
        if sw <= W + 1:
            vr = q + up
        else:                                  # a block sum wider than the accumulator
            qu = Signal(signed(sw + 1))
            m.d.comb += qu.eq(q + up)
            vr = _saturate(qu, W + 1)
        m.d.comb += v.eq(Mux(ovf_l, sat, Mux(left, v_l[:W + 1], vr)))
    else:
        v = Signal(unsigned(W))                # only v mod 2**W matters
        m.d.comb += v.eq(Mux(left, v_l, q + up)[:W])
    return (stage(m, x, stages >= 3, "rnd") for x in (v, *extras))


def clamp_acc(m, acc, x, name="clamped"):
    """``x`` (signed, at most ``width + 2`` bits wide for saturation) saturated to, or
    wrapped into, ``signed(acc.width)``."""
    W = acc.width
    out = Signal(signed(W), name=name)
    if acc.overflow == "saturate":
        m.d.comb += out.eq(_saturate(x, W))
    else:
        m.d.comb += out.eq(x[:W])
    return out


def accumulate(m, acc, reg, v):
    """``reg + v`` saturated to, or wrapped into, ``signed(acc.width)``."""
    W = acc.width
    tot = Signal(signed(W + 3))
    m.d.comb += tot.eq(reg + v)
    return clamp_acc(m, acc, tot, "reg_new")


def accumulate_blocks(m, acc, s_new, t, off, ev, last, spec_new, stages, result, special):
    """An output-stationary PE's block end: on ``ev`` the finished block sum ``s_new`` goes
    onto the accumulator grid (:func:`block_to_grid`, ``stages`` register stages, grid
    shift ``d = t + off``: ``t`` the scale codes' sum, :func:`scale_code_sum`, ``off``
    :func:`scale_offset`) and into the ``fixed`` accumulator; on a tile's ``last`` block
    the accumulator moves to ``result`` (``special`` from ``spec_new``) and restarts at
    zero."""
    v, ev, last, spec_out = block_to_grid(
        m, acc, s_new, grid_shift_from_sum(m, acc, len(s_new), t, off),
        [ev, last, spec_new], stages)
    reg = Signal(signed(acc.width))
    reg_new = accumulate(m, acc, reg, v)
    with m.If(ev):
        m.d.sync += reg.eq(reg_new)
        with m.If(last):
            m.d.sync += [reg.eq(0), result.eq(reg_new), special.eq(spec_out)]


def element_multiplier(m, pe, fa, fb, pipeline):
    """The :class:`~mxhw.pe.ElementMultiplier` of a bit-parallel PE ``pe`` (its ``a``,
    ``b`` and, for moded formats, ``a_mode`` / ``b_mode`` ports), registered when
    ``pipeline >= 1``. Returns ``(mul, a, b)``, ``a``, ``b`` the operand codes
    (:func:`~mxhw.formats.moded_code`)."""
    ea, eb = operand_element(fa), operand_element(fb)
    a = moded_code(fa, pe.a, getattr(pe, "a_mode", None))
    b = moded_code(fb, pe.b, getattr(pe, "b_mode", None))
    m.submodules.mul = mul = ElementMultiplier(ea, eb, pipeline=1 if pipeline >= 1 else 0)
    m.d.comb += [mul.a.eq(a), mul.b.eq(b)]
    return mul, a, b


def operand_ports(fmt_a, fmt_b):
    """The input ports of a bit-parallel output-stationary PE (:class:`MXMacPE`)."""
    return {
        "a": In(unsigned(fmt_a.element.bits)),
        "b": In(unsigned(fmt_b.element.bits)),
        "a_scale": In(unsigned(fmt_a.scale.bits)),
        "b_scale": In(unsigned(fmt_b.scale.bits)),
        **({"a_mode": In(mode_port(fmt_a))} if fmt_a.mode_bits else {}),
        **({"b_mode": In(mode_port(fmt_b))} if fmt_b.mode_bits else {}),
        "valid": In(1),
        "block_end": In(1),
        "last": In(1),
    }


class MXMacPE(wiring.Component):
    """Bit-parallel MX multiply-accumulate: one element pair per cycle.

    Per block, the exact products (:class:`mxhw.pe.ElementMultiplier`) are summed exactly in
    an integer ``S`` of :func:`block_sum_width` bits. On the block's last element the block
    dot ``S * 2**E`` (``E`` from both scales and the element LSBs) is put on the
    accumulator grid ``2**-frac_bits`` (left shift, or right shift with ``floor`` / ``rne``
    rounding) and added to the ``width``-bit accumulator with saturation or wrap-around.
    On the tile's last element the accumulator moves to ``result`` and restarts at zero.
    A NaN scale or a NaN/Inf element code makes the result ``special`` (golden: NaN).

    Element modes (MXSF, see :func:`~mxhw.formats.operand_element`): an operand whose
    format has several modes per block gets a mode port beside its scale; the multiplier
    decodes the code by its mode (MXSF mode W: E2M5, mode S: fp6_e3m2 in the low 6 bits;
    a mode S code with a top bit set is reserved and counts as NaN, as golden) and the
    exact products sit on the finest grid of the modes, so block sums stay exact.

    Register stages (``pipeline``, cumulative; each adds one cycle of latency and none of
    the stages stalls, so the PE still takes one element pair every cycle, blocks and tiles
    back to back):

    ====  ==========================================================================
    >= 1  the product (:class:`~mxhw.pe.ElementMultiplier` with ``pipeline=1``), and
          the scales' shift amount and NaN flag
    >= 2  at a block end: the finished block sum ``S``, the shift direction and amount
          and the NaN flag
    >= 3  after the barrel shift (the shifted sum, and the RNE round-up bit);
          ``fp32``: the block's float32 value
    >= 4  after rounding and clamping, before the accumulator adder (``fp32``: as 3)
    ====  ==========================================================================

    With ``fp32`` accumulation (golden's ``fp32`` mode, :mod:`mxhw.systolic.fp32acc`)
    each block dot is rounded once to float32 (RNE, overflow to Inf; a block with a NaN
    scale is NaN, one with NaN/Inf element codes the IEEE value of its products' sum) and
    added to a float32 accumulator that starts at +0, in K order, rounding to nearest
    even; ``result`` holds float32 bits and ``special`` marks a NaN result.

    Parameters
    ----------
    fmt_a, fmt_b : BlockFormat
        Operand block formats (validated by the array).
    acc : golden.arith.Accumulation
        ``fixed`` or ``fp32`` accumulation.
    pipeline : int
        Register stages, 0..4 (:data:`PE_PIPELINE_MAX`); default 0.

    Members
    -------
    a, b : In(unsigned(bits))
        Element codes. ``a_scale``, ``b_scale`` : In(unsigned(scale bits)) scale codes of
        their blocks (read on the block's last element).
    a_mode, b_mode : In(unsigned(mode bits))
        Only for an operand with several element modes (MXSF): its block's mode, with
        every element.
    valid, block_end, last : In(1)
        The pair is valid; it is the last of its block; the last of the tile (a block end).
    result : Out(signed(acc.width)) (``fp32``: 32 bits), special : Out(1)
        Registered, updated :attr:`latency` cycles after a ``last`` element.

    Latency ``1 + pipeline`` cycles from the tile's last element to ``result``;
    throughput one element pair per cycle. Golden twin: :func:`mxhw.golden.arith.gemm`
    with ``fixed`` or ``fp32`` accumulation (one output element).

    Raises
    ------
    TypeError, ValueError
        ``pipeline`` not an integer in 0..4.
    """

    def __init__(self, fmt_a, fmt_b, acc, pipeline=0):
        check_pipeline(pipeline)
        self._fmt_a, self._fmt_b, self._acc = fmt_a, fmt_b, acc
        self._pipeline = pipeline
        self._k = fmt_a.block_size
        super().__init__({
            **operand_ports(fmt_a, fmt_b),
            "result": Out(signed(acc_width(acc))),
            "special": Out(1),
        })

    pipeline = property(lambda self: self._pipeline)

    @property
    def latency(self):
        """Cycles from a tile's last element (``valid & last``) to its ``result``."""
        return 1 + self._pipeline

    def elaborate(self, platform):
        m = Module()
        fa, fb, acc, P = self._fmt_a, self._fmt_b, self._acc, self._pipeline
        mul, a, b = element_multiplier(m, self, fa, fb, P)
        ea, eb = mul.fmt_a, mul.fmt_b
        # control and the scales' shift and NaN flag, aligned with the product
        t = scale_code_sum(m, fa, fb, self.a_scale, self.b_scale)
        nan = Signal()
        m.d.comb += nan.eq(scale_nan(fa, self.a_scale) | scale_nan(fb, self.b_scale))
        valid, end, last, t, nan = (
            stage(m, x, P >= 1, "m")
            for x in (self.valid, self.block_end, self.last, t, nan))
        if acc.mode == "fp32":
            return self._elaborate_fp32(m, mul, a, b, valid, end, last, nan)

        sw = block_sum_width(ea, eb, self._k)
        s = Signal(signed(sw))                     # exact block sum so far
        s_new = Signal(signed(sw))
        m.d.comb += s_new.eq(s + mul.p)
        spec = Signal()                            # the tile so far is special
        spec_new = Signal()
        m.d.comb += spec_new.eq(spec | mul.nonfinite | (end & nan))
        with m.If(valid):
            m.d.sync += [s.eq(s_new), spec.eq(spec_new)]
            with m.If(end):
                m.d.sync += s.eq(0)
            with m.If(last):
                m.d.sync += spec.eq(0)

        ev = Signal()                              # a block ends: its sum moves on
        m.d.comb += ev.eq(valid & end)
        accumulate_blocks(m, acc, s_new, t, scale_offset(fa, fb, acc, mul.lsb_exp), ev, last,
                          spec_new, P - 1, self.result, self.special)
        return m

    def _elaborate_fp32(self, m, mul, a, b, valid, end, last, nan):
        """golden ``fp32``: each block dot rounded to float32, added in K order (RNE);
        ``a``, ``b`` the operand codes (:func:`~mxhw.formats.moded_code`)."""
        fa, fb, P = self._fmt_a, self._fmt_b, self._pipeline
        ea, eb = mul.fmt_a, mul.fmt_b
        pn, pp, pq = product_class(m, ea, a, eb, b)
        pn, pp, pq = (stage(m, x, P >= 1, "m") for x in (pn, pp, pq))
        # E: the weight of S's LSB, from the scales (stage m, beside the product)
        off = mul.lsb_exp - fa.scale.bias - fb.scale.bias
        e_hi = (1 << fa.scale.bits) + (1 << fb.scale.bits) + max(off, 0)
        e = Signal(range(min(off, 0), e_hi))
        m.d.comb += e.eq(self.a_scale + self.b_scale + off)
        e = stage(m, e, P >= 1, "m")

        sw = block_sum_width(ea, eb, self._k)
        s = Signal(signed(sw))
        s_new = Signal(signed(sw))
        m.d.comb += s_new.eq(s + mul.p)
        # the block's IEEE specials so far: NaN, +Inf, -Inf products
        bn, bp, bq = Signal(), Signal(), Signal()
        bn_new, bp_new, bq_new = Signal(), Signal(), Signal()
        m.d.comb += [bn_new.eq(bn | pn | (end & nan)), bp_new.eq(bp | pp), bq_new.eq(bq | pq)]
        with m.If(valid):
            m.d.sync += [s.eq(s_new), bn.eq(bn_new), bp.eq(bp_new), bq.eq(bq_new)]
            with m.If(end):
                m.d.sync += [s.eq(0), bn.eq(0), bp.eq(0), bq.eq(0)]
        ev = Signal()
        m.d.comb += ev.eq(valid & end)
        s_b, e_b, bn_b, bp_b, bq_b, ev, last = (
            stage(m, x, P >= 2, "blk") for x in (s_new, e, bn_new, bp_new, bq_new, ev, last))
        blk = Signal(32)
        fin = int_to_f32(m, s_b, e_b, "blk")
        m.d.comb += blk.eq(Mux(bn_b | (bp_b & bq_b), F32_NAN,
                               Mux(bp_b, F32_INF, Mux(bq_b, F32_INF | 1 << 31, fin))))
        blk, ev, last = (stage(m, x, P >= 3, "cv") for x in (blk, ev, last))

        reg = Signal(32)
        reg_new = f32_add(m, reg, blk, "acc")
        with m.If(ev):
            m.d.sync += reg.eq(reg_new)
            with m.If(last):
                m.d.sync += [reg.eq(0), self.result.eq(reg_new),
                             self.special.eq((reg_new[23:31] == 0xFF) & (reg_new[:23] != 0))]
        return m


class MXBlockSumPE(wiring.Component):
    """The multiplier half of :class:`MXMacPE`: exact block sums, handed on at each block
    end (to a :class:`~mxhw.systolic.rowacc.RowAccumulator` shared by a row of the
    output-stationary array) instead of being scaled and accumulated in the PE.

    Per block the exact products (:class:`mxhw.pe.ElementMultiplier`'s logic, MXSF codes
    decoded by their block's mode as in :class:`MXMacPE`; as magnitude and sign,
    :func:`~mxhw.pe.multiplier.multiply_sign_magnitude`, the sign taken as the
    magnitude's ones' complement, before the product register, and the block sum's
    adder's carry-in) are summed exactly in an integer ``S`` of
    :func:`block_sum_width` bits at ``2**lsb_exp`` (``lsb_exp`` the multiplier's); on the
    block's last element ``S`` appears on ``block_sum`` with ``block_valid`` high, beside
    the block's two scale codes, whether any of its element codes was NaN/Inf, and the
    tile's ``last`` flag, and the PE starts the next block at once. Nothing else is kept
    and nothing is done with the scale codes: their sum, their NaN codes, the shift onto
    the accumulator grid and the accumulator live in the row unit. (The array gives the
    row units the codes from its own edge registers, and without PE registers row 0's
    ``block_b_scale``; scale outputs left unconnected are removed by synthesis.)

    Register stages (``pipeline``): >= 1 registers the product (magnitude and sign), the
    control and the scale codes (:class:`MXMacPE`'s stage 1); >= 2 also
    registers the ``block_*`` outputs (the row's multiplexer then starts at flip-flops, not
    at the block sum's adder: one more cycle); the others belong to the row unit (its :func:`block_to_grid` takes
    ``pipeline - 1``, after its own selection register), so a PE and its row unit
    together take :class:`MXMacPE`'s latency ``1 + pipeline`` plus
    :func:`~mxhw.systolic.rowacc.row_extra_stages` (3 from ``pipeline`` 2 up: two
    registers keep the row-wide selection off the PEs' and the row unit's logic, one
    holds the tile's final sum before its clamp; else 1, that last one).

    Parameters
    ----------
    fmt_a, fmt_b : BlockFormat
        Operand block formats (validated by the array).
    pipeline : int
        Register stages of the PE and its row unit, 0..4 (:data:`PE_PIPELINE_MAX`).

    Members
    -------
    a, b, a_scale, b_scale, a_mode, b_mode, valid, block_end, last : In
        As :class:`MXMacPE`.
    block_valid : Out(1)
        A block ends in this cycle (``valid & block_end``, :attr:`latency` cycles after
        its last element arrived); the other ``block_*`` ports hold it. Registered from
        ``pipeline`` 2 up; below, they come from the block sum's adder.
        ``block_sum``, ``block_nonfinite`` and ``block_last`` are 0 while it is low, so
        that a row unit combines its columns by OR
        (:class:`~mxhw.systolic.rowacc.RowAccumulator`'s ``idle_zero``).
    block_sum : Out(signed(block_sum_width))
        The block's exact sum ``S`` (products at ``2**lsb_exp``; NaN/Inf codes count 0).
    block_a_scale, block_b_scale : Out(unsigned(scale bits))
        The block's scale codes (``a_scale``, ``b_scale`` with its last element; NaN
        codes are the row unit's to test).
    block_nonfinite : Out(1)
        An element code of the block is NaN/Inf (reserved MXSF codes included); NaN
        scale codes are not included.
    block_last : Out(1)
        The block is the tile's last.

    Throughput one element pair per cycle, blocks and tiles back to back. Golden twin:
    the exact block dot products of :func:`mxhw.golden.arith.gemm`.

    Raises
    ------
    TypeError, ValueError
        ``pipeline`` not an integer in 0..4.
    """

    def __init__(self, fmt_a, fmt_b, pipeline=0):
        check_pipeline(pipeline)
        self._fmt_a, self._fmt_b, self._pipeline = fmt_a, fmt_b, pipeline
        self._k = fmt_a.block_size
        ea, eb = operand_element(fmt_a), operand_element(fmt_b)
        super().__init__({
            **operand_ports(fmt_a, fmt_b),
            "block_valid": Out(1),
            "block_sum": Out(signed(block_sum_width(ea, eb, self._k))),
            "block_a_scale": Out(unsigned(fmt_a.scale.bits)),
            "block_b_scale": Out(unsigned(fmt_b.scale.bits)),
            "block_nonfinite": Out(1),
            "block_last": Out(1),
        })

    pipeline = property(lambda self: self._pipeline)

    @property
    def latency(self):
        """Cycles from a block's last element to its ``block_valid``: ``min(pipeline, 1)``,
        plus 1 from ``pipeline`` 2 up (the output register)."""
        return min(self._pipeline, 1) + (self._pipeline >= 2)

    @property
    def lsb_exp(self):
        """Weight exponent of ``block_sum``'s LSB (the element multiplier's)."""
        return operand_element(self._fmt_a).lsb_exp + operand_element(self._fmt_b).lsb_exp

    def elaborate(self, platform):
        m = Module()
        fa, fb, P = self._fmt_a, self._fmt_b, self._pipeline
        # the element product as magnitude and sign (registered when pipeline >= 1, as
        # the ElementMultiplier's product would be): the sign is applied as an XOR (the
        # ones' complement, before the register: the block sum's adder then takes
        # flip-flops, no logic in its loop) and the adder's carry-in, one carry chain
        # where a negation would be another
        a = moded_code(fa, self.a, getattr(self, "a_mode", None))
        b = moded_code(fb, self.b, getattr(self, "b_mode", None))
        mag, neg, mul_nf = multiply_sign_magnitude(m, operand_element(fa), a,
                                                   operand_element(fb), b)
        ones = Signal(len(mag), name="mag_ones")   # the product's low bits, ones' complement
        m.d.comb += ones.eq(mag ^ neg.replicate(len(mag)))
        ones, neg, mul_nf = (stage(m, x, P >= 1, "mul") for x in (ones, neg, mul_nf))
        # the scale codes, aligned with the product (these registers equal the operands'
        # pass-through registers to the next PE, so synthesis shares them)
        valid, end, last, a_scale, b_scale = (
            stage(m, x, P >= 1, "m")
            for x in (self.valid, self.block_end, self.last, self.a_scale, self.b_scale))
        s = Signal.like(self.block_sum)            # exact block sum so far
        s_new = Signal.like(self.block_sum)
        p_ones = Signal.like(self.block_sum)       # the product, ones' complement if neg
        m.d.comb += [p_ones.eq(Cat(ones, neg.replicate(len(s) - len(ones)))),
                     s_new.eq(s + p_ones + neg)]
        nf = Signal()                              # the block so far has NaN/Inf codes
        nf_new = Signal()
        m.d.comb += nf_new.eq(nf | mul_nf)
        with m.If(valid):
            m.d.sync += [s.eq(s_new), nf.eq(nf_new)]
            with m.If(end):
                m.d.sync += [s.eq(0), nf.eq(0)]
        # the block's fields are zero outside its block end, so that a row's block ends
        # combine by OR (from pipeline 2 up the zero is the output registers' synchronous
        # reset, no logic in front of them)
        ve = Signal(name="block_end_valid")
        m.d.comb += ve.eq(valid & end)
        outs = [(self.block_valid, ve),
                (self.block_a_scale, a_scale), (self.block_b_scale, b_scale),
                *((port, Mux(ve, value, 0)) for port, value in (
                    (self.block_sum, s_new), (self.block_nonfinite, nf_new),
                    (self.block_last, last)))]
        domain = m.d.sync if P >= 2 else m.d.comb
        domain += [port.eq(value) for port, value in outs]
        return m
