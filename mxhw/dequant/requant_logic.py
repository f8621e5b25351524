"""The re-quantiser's building blocks (:class:`~mxhw.dequant.Requantizer`): the block
formats it takes, the element modes it quantises to, per-element logic helpers and the
MXSF mode select. ``docs/components.md`` explains the arithmetic."""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Cat, Const, Mux, Signal, signed

from .. import golden
from ..formats import lookup_format
from ..lib.trees import sum_tree

__all__ = ["requant_block_format", "is_mxsf", "hw_modes", "emin", "lsb_of", "max_code",
           "msb", "gt_const", "mxsf_select", "SE_LO", "SE_HI"]

SE_LO, SE_HI = -127, 127  # unbiased exponents E8M0 holds (255 is NaN)


def msb(m, x, width, name):
    """Index of the highest set bit of ``x``'s low ``width`` bits (0 when they are 0): a
    priority encoder as a balanced tree (each node: the upper half's index if the upper
    half has a set bit, else the lower half's), so its depth grows with ``log2(width)``,
    not ``width`` (a chain of conditions maps to a chain of LUTs, the re-quantiser's
    critical path)."""
    p = Signal(range(max(2, width)), name=name)
    n = len(p)
    nodes = [(x[b] if b < width else Const(0, 1), []) for b in range(1 << n)]
    while len(nodes) > 1:
        nodes = [(lo[0] | hi[0], [Mux(hi[0], h, lo_) for h, lo_ in zip(hi[1], lo[1])]
                  + [hi[0]]) for lo, hi in zip(nodes[::2], nodes[1::2])]
    m.d.comb += p.eq(Cat(*nodes[0][1]))
    return p


def gt_const(x, c):
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


def is_mxsf(fmt):
    return tuple(c.name for c in fmt.candidates) == ("mxsf_w", "mxsf_s")


def requant_block_format(fmt):
    """The :class:`BlockFormat` named by ``fmt`` that the re-quantiser supports: an OCP MX
    format (one fp or int element format) or ``mxsf`` (1-D blocks)."""
    fmt = lookup_format(fmt, "fmt", "block")
    common = (fmt.scale.kind == "pow2" and fmt.scale.bits == 8 and fmt.scale.bias == 127
              and fmt.rounding == "rne" and fmt.codec is None
              and not isinstance(fmt.block, tuple))
    ocp = len(fmt.candidates) == 1 and fmt.candidates[0].kind in ("fp", "int")
    rule = fmt.scale_rule == "ocp_floor" or (ocp and fmt.scale_rule == "ocp_rceil")
    if not (common and rule and (ocp or is_mxsf(fmt))):
        raise ValueError(f"fmt must be an OCP MX block format (one fp or int element format, "
                         f"E8M0 scale, floor or RCEIL rule, RNE, 1-D blocks) or mxsf, not "
                         f"{fmt.name!r}")
    return fmt


def rceil_thresholds(e, width, frac):
    """RCEIL (``golden.scale_rules``, ``ocp_rceil``) on fixed-point input: per position
    ``p`` of max|x|'s highest set bit (``x`` a ``width``-bit integer, value ``x *
    2**-frac``) the largest ``x`` in ``[2**p, 2**(p + 1))`` whose RCEIL exponent is the
    floor rule's ``p - frac - emax`` (``2**p - 1`` if none): above it, it is one more (the
    only two outcomes on such a binade; tested). Found by bisection on golden's rule
    (monotone in ``x``), so the hardware's compare constants are golden's."""
    from ..golden.scale_rules import exponents

    def rceil(x):
        return int(exponents(np.array([np.ldexp(float(x), -frac)]), e, "ocp_rceil")[0])

    out = []
    for p in range(width):
        lo, hi, se = (1 << p) - 1, (1 << (p + 1)) - 1, p - frac - e.emax
        while lo < hi:                         # largest x with rceil(x) <= se
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if rceil(mid) <= se else (lo, mid - 1)
        out.append(lo)
    return out


def hw_modes(fmt):
    """The element descriptors the hardware quantises to, one per candidate. MXSF mode S is
    the fp6_e3m2 value set in the low 6 bits of its code (golden.mxsf), so it is quantised
    as fp6_e3m2 and zero-extended."""
    if is_mxsf(fmt):
        return [fmt.candidates[0], golden.formats.get("fp6_e3m2")]
    return [fmt.element]


def emin(e):
    return 1 - e.bias


def lsb_of(e):
    """Exponent of the smallest step of the fp element ``e``: ``emin - man_bits``."""
    return emin(e) - e.man_bits


def max_code(e):
    """Largest finite magnitude code (fp, without the sign) or integer (int, symmetric)."""
    if e.kind == "fp":
        return max(c for c in range(e.n_codes >> 1) if not e.nonfinite_mask[c])
    return (1 << (e.bits - 1)) - 1


def mxsf_select(m, o, en, reg, valid, modes, codes, mags, negs, exs, ses, bad, SW, l_range):
    """MXSF: exact per-element errors of both modes, registered (``reg``, enabled by
    ``en``); then the sums of squares, the comparison (ties to mode 0) and the output
    register ``o`` (see the :class:`~mxhw.dequant.Requantizer` docstring and
    ``docs/components.md``). ``codes[i][j]``: the code magnitude of element ``j`` in mode
    ``i``; ``mags``, ``negs``, ``exs``: the input elements; ``ses``: the modes' scale
    exponents; ``l_range``: the range of ``floor(log2 max|x|)``."""
    k = len(mags)
    lsbs = [lsb_of(e) for e in modes]
    # g = min over modes of (se + lsb); the largest offset se_i + lsb_i - g, over every
    # block maximum L (and the all-zero block) fixes the width of the Y shifters
    def se_of(L, e):
        return SE_LO if L is None else min(max(L - e.emax, SE_LO), SE_HI)
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
        m.d.comb += err.eq(sum_tree(m, sqs, f"sum{i}", SQ))
        errs.append(err)
    mode = Signal(name="mode")
    # ties to mode W (0); a NaN/Inf block is all zeros to golden's mode choice: W
    m.d.comb += mode.eq(~bad & (errs[1] < errs[0]))
    with m.If(en):
        m.d.sync += [o.valid.eq(valid),
                     o.payload.mode.eq(mode),
                     o.payload.scale.eq(Mux(bad, 0xFF, Mux(mode, ses[1], ses[0])
                                                 + 127))]
        for j in range(k):
            m.d.sync += o.payload.elements[j].eq(
                Mux(bad, 0, Mux(mode, full[1][j], full[0][j])))
    return m
