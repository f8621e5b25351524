"""The MX-grid arithmetic the systolic arrays share: operand formats the arrays take
(:func:`array_block_format`), exact block sums (:func:`block_sum_width`), the shift of a
finished block sum onto the accumulator grid (:func:`scale_code_sum`,
:func:`grid_shift_from_sum`, :func:`block_to_grid`) and the ``fixed`` accumulator
(:func:`clamp_acc`, :func:`accumulate`, :func:`accumulate_blocks`). See
``docs/systolic.md`` for how the PEs, the row units and the weight-stationary columns use
them.

Golden twin: the block dots and ``fixed`` accumulation of :func:`mxhw.golden.arith.gemm`.
"""

from __future__ import annotations

import functools

from amaranth.hdl import Cat, Const, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import Out

from .. import golden
from ..formats import (_nonfinite, fixed_shape, lookup_format, lsb_shift, operand_element,
                       unpack)
from ..lib.params import check_pipeline
from ..lib.signals import ge_const, saturate, stage
from ..pe.multiplier import product_width
from .tile import k_block_formats

__all__ = ["PE_PIPELINE_MAX", "array_block_format", "array_formats", "check_pe_pipeline", "check_acc",
           "mode_port", "block_sum_width", "acc_width", "out_layout", "scale_nan", "scale_offset",
           "scale_sum_shape", "scale_code_sum", "GE_LO", "ge_parts", "ge_from_parts",
           "grid_shift_from_sum", "block_to_grid",
           "clamp_acc", "accumulate", "accumulate_blocks", "running_block_sum",
           "AccumulatingPE", "SERIAL_BITS_MAX", "serial_bits",
           "check_serial_format", "fixed_form"]

#: Register stages of a PE (and of the array's ``pipeline``): 0 (combinational) to 4.
PE_PIPELINE_MAX = 4


def check_pe_pipeline(pipeline):
    """Validate a PE ``pipeline`` (register stages, 0..:data:`PE_PIPELINE_MAX`)."""
    return check_pipeline(pipeline, PE_PIPELINE_MAX)


def check_acc(acc):
    """Validate an accumulation for the hardware (``fixed`` or ``fp32``)."""
    if not isinstance(acc, golden.arith.Accumulation):
        raise TypeError(f"acc must be a golden.arith.Accumulation, not {acc!r}")
    if acc.mode not in ("fixed", "fp32"):
        raise ValueError(f"acc must be fixed-point or FP32 accumulation "
                         f"(golden.arith.fixed(...) or golden.arith.FP32); {acc.mode!r} is "
                         f"not implemented in hardware")
    return acc


def array_block_format(fmt, name="fmt"):
    """The :class:`golden.formats.BlockFormat` named by ``fmt``, with a power-of-two scale
    and 1-D blocks (what the arrays accept). A format with several element modes chosen
    per block (MXSF) is accepted when its modes make one :func:`~mxhw.formats.operand_element`
    (equal widths, no Inf codes)."""
    fmt = lookup_format(fmt, name, "block")
    if isinstance(fmt.block, tuple):
        raise ValueError(f"{name}: {fmt.name} has 2-D blocks {fmt.block}; the PEs take "
                         f"1-D blocks along K (array_formats maps tiles onto them)")
    if fmt.scale.kind != "pow2" and fmt.codec != "nvfp4":
        raise ValueError(f"{name}: {fmt.name} has {fmt.scale.name} scales; the arrays take "
                         f"power-of-two scales")
    try:
        operand_element(fmt)
    except ValueError as e:
        raise ValueError(f"{name}: {e}") from None
    return fmt


def array_formats(fmt_a, fmt_b):
    """``(fmt_a, fmt_b)``, parameters ``fmt_a`` and ``fmt_b``, each checked by
    :func:`array_block_format`, of equal block size (``ValueError`` otherwise). A 2-D
    tile format (``mxsf_tile``) on either side becomes 1-D blocks of the K block golden
    takes (:func:`~mxhw.systolic.tile.k_block_formats`)."""
    fmt_a, fmt_b = k_block_formats(fmt_a, fmt_b)
    fmt_a = array_block_format(fmt_a, "fmt_a")
    fmt_b = array_block_format(fmt_b, "fmt_b")
    if (fmt_a.codec == "nvfp4") != (fmt_b.codec == "nvfp4"):
        raise ValueError(f"fmt_a and fmt_b: NVFP4 pairs with NVFP4 only, not "
                         f"{fmt_a.name} with {fmt_b.name}")
    if fmt_a.block_size != fmt_b.block_size:
        raise ValueError(f"fmt_a and fmt_b block sizes differ "
                         f"({fmt_a.block_size} vs {fmt_b.block_size})")
    return fmt_a, fmt_b


def mode_port(fmt):
    """The per-block mode port shape of ``fmt`` (``fmt.mode_bits`` wide), or None for a
    single-mode format."""
    return unsigned(fmt.mode_bits) if fmt.mode_bits else None


def block_sum_width(fmt_a, fmt_b, k):
    """Width of the exact sum of ``k`` exact products (signed) of elements of ``fmt_a``
    and ``fmt_b`` (element formats: :func:`~mxhw.formats.operand_element`)."""
    return product_width(fmt_a, fmt_b) + max(k - 1, 1).bit_length()



def out_layout(acc, cols):
    """Layout of an array's output row: ``cols`` results (``data``: ``acc_width`` bits,
    float32 bits for ``fp32``) and their NaN flags (``special``)."""
    return data.StructLayout({
        "data": data.ArrayLayout(signed(acc_width(acc)), cols),
        "special": data.ArrayLayout(1, cols),
    })


def scale_nan(fmt, code):
    """1 where ``code`` is ``fmt``'s NaN scale code (0 if the scale has none)."""
    return (code == fmt.scale.nan_code) if fmt.scale.nan_code is not None else Const(0, 1)


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


#: Low bits of the scale codes' sum left to the second half of a split overflow
#: thermometer (:func:`ge_parts`).
GE_LO = 4


def ge_parts(acc, sw, t, off, lo=GE_LO):
    """The first half of the overflow thermometer ``ge`` of :func:`grid_shift_from_sum`
    (``t >= c`` for its constants ``c``), for a register between the halves:
    ``{h: (t_hi > h, t_hi == h)}`` for each ``h = c >> lo`` it needs, ``t_hi = t >> lo``.
    :func:`ge_from_parts` finishes it from these (registered) and ``t``'s ``lo`` low bits."""
    n = len(t)
    consts = [k - off for k in range(_ge_base(acc, sw), acc.width + 2)]
    hs = sorted({c >> lo for c in consts if 0 < c < (1 << n)})
    return {h: (ge_const(t[lo:], h + 1), t[lo:] == h) for h in hs}


def ge_from_parts(parts, t_lo, n):
    """``ge_at(c)``: ``t >= c`` for an ``n``-bit ``t`` from :func:`ge_parts`'s ``parts``
    (registered) and ``t``'s low bits ``t_lo`` (registered alike)."""
    lo = len(t_lo)

    def ge_at(c):
        if c <= 0 or c >= 1 << n:
            return ge_const(Const(0, n), c)        # the constant answer
        gt, eq = parts[c >> lo]
        return gt | (eq & ge_const(t_lo, c & ((1 << lo) - 1)))
    return ge_at


def grid_shift_from_sum(m, acc, sw, t, off, t_ge=None, split=0, ge_at=None):
    """``(left, sh_l, sh_r, ge)``, the shift of :func:`block_to_grid` for a ``sw``-bit
    block sum and the grid shift ``d = t + off``, ``t`` the (unsigned) sum of the two scale
    codes (:func:`scale_code_sum`) and ``off`` :func:`scale_offset`: ``left = d >= 0``,
    ``sh_l = min(max(d, 0), width + 1)``, ``sh_r = min(max(-d, 0), sw)``, and ``ge[i] = d
    >= k0 + i`` for ``k0 + i`` up to ``width + 1`` (``k0`` of :func:`_ge_base`: the left
    shifts that can overflow; driven for saturation only, the one reader).

    The range tests compare ``t`` with constants (as logic,
    :func:`~mxhw.lib.signals.ge_const`: a signed compare of ``d`` becomes a carry chain
    per constant, which synthesis chained into many
    LUT levels) and only the shift amounts' few low bits are added, all side by side (no
    adder before a compare), then multiplexers. ``t_ge``: another
    register holding ``t``, for the overflow thermometer ``ge`` alone (the row unit's
    second copy: each register then drives half the range tests, placed near them).
    ``ge_at``: instead, a function giving ``t >= c`` for the thermometer's constants
    (:func:`ge_from_parts`: the tests split by a register).

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
        left.eq(ge_const(t, -off)),
        sh_l.eq(Mux(ge_const(t, l_max + 1 - off), l_max, Mux(left, d_lo, 0))),
        sh_r.eq(Mux(~ge_const(t, -off - r_max), r_max, Mux(ge_const(t, 1 - off), 0, nd_lo))),
    ]
    if acc.overflow == "saturate":              # only saturation reads it
        if ge_at is None:
            t_ge = t if t_ge is None else t_ge
            ge_at = functools.partial(ge_const, t_ge)
        m.d.comb += ge.eq(Cat(ge_at(k - off) for k in range(k0, W + 2)))
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
            vr = saturate(qu, W + 1)
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
        m.d.comb += out.eq(saturate(x, W))
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


def running_block_sum(m, sw, p, nonfinite, end, nan):
    """The exact block sum of a PE and its tile's ``special`` flag: ``s_new = s + p``
    (``sw`` bits) and ``spec_new = spec | nonfinite | (end & nan)``. Returns ``(s_new,
    spec_new, advance)``; ``advance(end, last)``, called in the caller's condition for a
    finished element step, takes ``s_new`` and ``spec_new`` and restarts the sum at a block
    end and the flag at the tile's last element."""
    s = Signal(signed(sw))                     # exact block sum so far
    s_new = Signal(signed(sw))
    m.d.comb += s_new.eq(s + p)
    spec = Signal()                            # the tile so far is special
    spec_new = Signal()
    m.d.comb += spec_new.eq(spec | nonfinite | (end & nan))

    def advance(end, last):
        m.d.sync += [s.eq(s_new), spec.eq(spec_new)]
        with m.If(end):
            m.d.sync += s.eq(0)
        with m.If(last):
            m.d.sync += spec.eq(0)
    return s_new, spec_new, advance


def block_sum_outputs(m, pe, pipeline, valid, end, last, a_scale, b_scale, add, nonfinite,
                      names=("s", "s_new", "nf", "nf_new")):
    """A block-sum PE's running exact block sum and its block outputs
    (:class:`~mxhw.systolic.pe.MXBlockSumPE`, :class:`~mxhw.systolic.scalable_pe.ScalableBlockSumPE`):
    ``s_new = add(s)`` and the NaN/Inf flag ``nf | nonfinite``, taken on ``valid`` and
    restarted after a block end; ``pe``'s ``block_*`` ports carry the block's fields at its
    end (``valid & end``) and zero otherwise, so that a row's block ends combine by OR,
    registered from ``pipeline`` 2 up (the zero is then the output registers' synchronous
    reset). ``names``: the four internal signals' names."""
    s = Signal.like(pe.block_sum, name=names[0])          # exact block sum so far
    s_new = Signal.like(pe.block_sum, name=names[1])
    nf, nf_new = Signal(name=names[2]), Signal(name=names[3])
    m.d.comb += [s_new.eq(add(s)), nf_new.eq(nf | nonfinite)]
    with m.If(valid):
        m.d.sync += [s.eq(s_new), nf.eq(nf_new)]
        with m.If(end):
            m.d.sync += [s.eq(0), nf.eq(0)]
    ve = Signal(name="block_end_valid")
    m.d.comb += ve.eq(valid & end)
    outs = [(pe.block_valid, ve),
            (pe.block_a_scale, a_scale), (pe.block_b_scale, b_scale),
            *((port, Mux(ve, value, 0)) for port, value in (
                (pe.block_sum, s_new), (pe.block_nonfinite, nf_new), (pe.block_last, last)))]
    domain = m.d.sync if pipeline >= 2 else m.d.comb
    domain += [port.eq(value) for port, value in outs]


class AccumulatingPE(wiring.Component):
    """What the output-stationary PEs that accumulate a tile share
    (:class:`~mxhw.systolic.pe.MXMacPE`, :class:`~mxhw.systolic.bitserial.BitSerialMXMacPE`):
    their parameter checks, their ``result`` and ``special`` ports (:meth:`result_ports`),
    ``pipeline`` and a latency of ``1 + pipeline`` cycles from a tile's last element
    (bit-serial: the final bit of its last step) to its ``result``.

    Parameters
    ----------
    fmt_a, fmt_b : str or BlockFormat
        Operand block formats (:func:`array_block_format`), equal block sizes.
    acc : golden.arith.Accumulation
        ``fixed`` or ``fp32`` (:func:`check_acc`).
    pipeline : int
        Register stages, 0..:data:`PE_PIPELINE_MAX`.
    members : dict
        The subclass's input ports; :meth:`result_ports` are added.

    Raises
    ------
    TypeError, ValueError
        A parameter of the wrong type or out of range (the message names it).
    """

    def __init__(self, fmt_a, fmt_b, acc, pipeline, members):
        fmt_a, fmt_b = array_formats(fmt_a, fmt_b)
        check_acc(acc)
        check_pe_pipeline(pipeline)
        self._fmt_a, self._fmt_b, self._acc = fmt_a, fmt_b, acc
        self._pipeline = pipeline
        self._k = fmt_a.block_size
        super().__init__({**members, **self.result_ports(acc)})

    fmt_a = property(lambda self: self._fmt_a)
    fmt_b = property(lambda self: self._fmt_b)
    acc = property(lambda self: self._acc)

    @staticmethod
    def result_ports(acc):
        """``result`` (``acc_width`` bits, signed) and ``special`` (1), outputs."""
        return {"result": Out(signed(acc_width(acc))), "special": Out(1)}

    pipeline = property(lambda self: self._pipeline)

    @property
    def latency(self):
        """Cycles from a tile's last element to its ``result``: ``1 + pipeline``."""
        return 1 + self._pipeline


# ---- the bit-serial weight: an element code as its exact fixed-point integer ---------------

#: Widest serial weight the bit-serial PE takes (cycles per K step). Every OCP MX element
#: format fits: FP4 E2M1 5, FP6 E2M3 7, FP6 E3M2 10, FP8 E4M3 19, FP8 E5M2 33, INT8 8.
SERIAL_BITS_MAX = 40


def serial_bits(fmt):
    """Serial precision ``p`` of the weight element format ``fmt`` (an ``ElementFormat``):
    the two's-complement width of its exact fixed-point form (``int_table`` at
    ``lsb_exp``, :func:`mxhw.formats.fixed_shape`), so one K step takes ``p`` cycles."""
    return fixed_shape(fmt).width


def check_serial_format(fmt_b, name="fmt_b"):
    """Validate a block format's element (:func:`~mxhw.formats.operand_element`: MXSF's
    by mode) as a bit-serial weight: its exact fixed-point form must have at most
    :data:`SERIAL_BITS_MAX` bits. Returns ``serial_bits``."""
    if fmt_b.scale.kind != "pow2":
        raise ValueError(f"{name}: the bit-serial PE takes power-of-two scales, not "
                         f"{fmt_b.name}'s {fmt_b.scale.name}")
    e = operand_element(fmt_b)
    p = serial_bits(e)
    if p > SERIAL_BITS_MAX:
        raise ValueError(f"{name}: {e.name} elements need {p} serial bits as "
                         f"fixed-point integers; the bit-serial PE takes at most "
                         f"{SERIAL_BITS_MAX}")
    return p


def fixed_form(m, fmt, code):
    """``(w, nonfinite)``: the element ``code`` of ``fmt`` as its exact signed fixed-point
    integer at ``fmt.lsb_exp`` (golden ``int_table[code]``; 0 for NaN/Inf codes) and a flag
    for NaN/Inf codes. Combinational logic in ``m``."""
    u = unpack(m, fmt, code)
    bad = Signal()
    m.d.comb += bad.eq(_nonfinite(u))
    w = Signal(fixed_shape(fmt))
    mag = u.significand << lsb_shift(u)
    m.d.comb += w.eq(Mux(bad, 0, Mux(u.sign, -mag, mag)))
    return w, bad
