"""Harnesses of the re-quantiser (:class:`~mxhw.dequant.Requantizer`) and its MXSF mode
switch, against a reference written from the specification only (golden's decode tables
and exact integer arithmetic; docs/formal.md).

The reference, for a block of ``k`` fixed-point inputs ``x_j = v_j * 2**-in_frac``:

* ``M = max |v_j|`` by pairwise compares; ``P = floor(log2 M)`` as the count of ``b`` in
  ``1 .. W-1`` with ``M >= 2**b``; the OCP floor scale ``se = P - in_frac - emax`` (an
  all-zero block: the code 0, ``se = -127``).
* Every quantity in *normalised units*: ``u_j << (W - 1 - P)`` puts the block maximum's top
  bit at ``W - 1``, so the element grid and the input grid differ by a constant shift.
  Element ``j``'s magnitude code is :func:`~mxhw.formal.reference.rne_code` (count the
  rounding thresholds passed, ties to even, saturating) on golden's value table.
* MXSF: both modes quantised so, the exact squared errors ``sum_j (|X_j| - |Q_j|)**2``
  (the same sign on both sides) in the same units, mode S iff its error is strictly
  smaller (golden's tie rule: mode W).

E8M0's clamp of ``se`` to ``[-127, 127]`` is not modelled: the harness refuses a
configuration whose scales could reach it.
"""

from __future__ import annotations

from amaranth.hdl import Assert, Module, Mux, Signal, signed

from ..golden import formats as gformats
from ..lib.signals import delay_line
from .base import Harness, balanced_sum, block_format, cycles_since_start
from .reference import magnitudes, rne_code

__all__ = ["RequantEquiv", "block_max_msb"]


def block_max_msb(m, mags, width):
    """``(M, P)``: the largest of ``mags`` (pairwise compares) and ``floor(log2 M)`` (0 for
    ``M == 0``), the count of powers of two at or below ``M``."""
    terms = list(mags)
    while len(terms) > 1:
        terms = [Mux(terms[i] > terms[i + 1], terms[i], terms[i + 1])
                 if i + 1 < len(terms) else terms[i] for i in range(0, len(terms), 2)]
    big = Signal(width, name="ref_max")
    m.d.comb += big.eq(terms[0])
    p = Signal(range(width), name="ref_msb")
    m.d.comb += p.eq(balanced_sum([big >= (1 << b) for b in range(1, width)]))
    return big, p


class _Mode:
    """One element encoding the reference quantises to: its value table ``mags``, ``emax``,
    ``lsb`` (exponent of the integer 1 in ``mags``), the sign bit position and kind."""

    def __init__(self, name, n=None, sign_bit=None):
        e = gformats.get(name)
        self.name, self.emax, self.lsb = name, e.emax, e.lsb_exp
        self.mags = magnitudes(e, n)
        self.int = e.kind == "int"
        self.bits = e.bits
        self.sign_bit = e.bits - 1 if sign_bit is None else sign_bit


def _modes(fmt):
    names = [c.name for c in fmt.candidates]
    if names == ["mxsf_w", "mxsf_s"]:
        # mode S: the codes 0..31 (value set of fp6_e3m2) with the sign at bit 5 (golden)
        return [_Mode("mxsf_w"), _Mode("mxsf_s", 32, 5)]
    return [_Mode(fmt.element.name)]


class RequantEquiv(Harness):
    """``Requantizer(fmt with k elements, "fixed", in_width, in_frac)`` at its smallest
    pipeline depth (OCP: 0, combinational; MXSF: 2), or ``pipeline``, against the
    reference above, for every
    input block, ``latency`` cycles later (``i.valid`` high, ``o.ready`` high). Asserted:
    the scale code, every element code (sign included), the MXSF mode, ``o.valid``.
    ``parts``: ``"scale"`` and/or ``"elements"`` (the mode: with the elements)."""

    def __init__(self, fmt, k, in_width, in_frac, parts=("scale", "elements"), dut=None,
                 pipeline=None):
        from ..dequant import Requantizer
        super().__init__()
        self.fmt = block_format(fmt, k)
        self.k, self.W, self.Fi, self.parts = k, in_width, in_frac, parts
        self.modes = _modes(self.fmt)
        for md in self.modes:
            lo, hi = -in_frac - md.emax, in_width - 1 - in_frac - md.emax
            if lo < -127 or hi > 127:
                raise ValueError(f"in_width {in_width}, in_frac {in_frac}: scale exponents "
                                 f"[{lo}, {hi}] reach E8M0's clamp, which the reference "
                                 f"does not model")
        self.mxsf = len(self.modes) > 1
        self.dut = (dut or Requantizer)(self.fmt, in_kind="fixed", in_width=in_width,
                                        in_frac=in_frac,
                                        pipeline=(2 if self.mxsf else 0) if pipeline is None
                                        else pipeline)
        self.v = [Signal(signed(in_width), name=f"v{j}") for j in range(k)]

    def inputs(self):
        return list(self.v)

    def reference(self, m, vs):
        """The reference in ``m`` for the inputs ``vs`` (signed ``in_width``): ``(scale
        code, element codes (8-bit), mode)`` (``mode`` is ``None`` unless MXSF)."""
        W = self.W
        negs = [v < 0 for v in vs]
        us = []
        for j, v in enumerate(vs):
            u = Signal(W, name=f"ref_u{j}")
            m.d.comb += u.eq(Mux(v < 0, -v, v))
            us.append(u)
        big, P = block_max_msb(m, us, W)
        zero = big == 0
        # normalised units: the block maximum's top bit at W - 1 (K: so that every grid
        # is an integer in them)
        K = max([0] + [md.emax - md.lsb - (W - 1) for md in self.modes])
        sh = Signal(range(W), name="ref_norm")
        m.d.comb += sh.eq(W - 1 - P)
        X = []
        for j, u in enumerate(us):
            x = Signal(2 * W - 1 + K, name=f"ref_x{j}")
            m.d.comb += x.eq((u << sh) << K)
            X.append(x)
        res = []
        for i, md in enumerate(self.modes):
            # 2*y = u * 2**(1 + emax - lsb - P) = X * 2**(1 + emax - lsb - (W - 1) - K)
            a = 1 + md.emax - md.lsb - (W - 1) - K
            codes = [rne_code(m, md.mags, x, max(a, 0), max(-a, 0), f"ref_c{i}_{j}")
                     for j, x in enumerate(X)]
            # the dequantised magnitude in the same units: mags[c] * 2**(lsb + se) * 2**..
            err = None
            if self.mxsf:
                sq = []
                for j, c in enumerate(codes):
                    q = Signal(len(X[j]) + 2, name=f"ref_q{i}_{j}")
                    with m.Switch(c):
                        for cv, val in enumerate(md.mags):
                            with m.Case(cv):
                                m.d.comb += q.eq(val << (md.lsb - md.emax + W - 1 + K))
                    d = Signal(signed(len(q) + 1), name=f"ref_d{i}_{j}")
                    m.d.comb += d.eq(X[j] - q)
                    sq.append(d * d)
                err = Signal(2 * (len(q) + 1) + self.k.bit_length(), name=f"ref_err{i}")
                m.d.comb += err.eq(balanced_sum(sq))
            scale = Signal(8, name=f"ref_scale{i}")
            m.d.comb += scale.eq(Mux(zero, 0, P + (127 - self.Fi - md.emax)))
            out = []
            for j, c in enumerate(codes):
                o = Signal(8, name=f"ref_o{i}_{j}")
                if md.int:
                    m.d.comb += o.eq(Mux(negs[j], -c, c)[:md.bits])
                else:
                    m.d.comb += o.eq(c | (negs[j] << md.sign_bit))
                out.append(o)
            res.append((scale, out, err))
        if self.mxsf:
            mode = Signal(name="ref_mode")
            m.d.comb += mode.eq(res[1][2] < res[0][2])
            return (Mux(mode, res[1][0], res[0][0]),
                    [Mux(mode, b, a) for a, b in zip(res[0][1], res[1][1])], mode)
        return res[0][0], res[0][1], None

    def elaborate(self, platform):
        m = Module()
        self.setup(m)
        m.submodules.dut = dut = self.dut
        lat = dut.latency
        m.d.comb += [dut.i.valid.eq(1), dut.o.ready.eq(1)]
        for j, v in enumerate(self.v):
            m.d.comb += dut.i.payload[j].eq(v)
        vs = [delay_line(m, v, lat, f"ref_v{j}") for j, v in enumerate(self.v)]
        scale, outs, mode = self.reference(m, vs)
        ready = cycles_since_start(m, lat)
        pl = dut.o.payload
        with m.If(ready):
            m.d.comb += Assert(dut.o.valid, "o.valid after the latency")
            if "scale" in self.parts:
                m.d.comb += Assert(pl.scale == scale, "scale")
            if "elements" in self.parts:
                if self.mxsf:
                    m.d.comb += Assert(pl.mode == mode, "mode")
                for j, o in enumerate(outs):
                    got = pl.elements[j].as_value() if not self.mxsf else pl.elements[j]
                    m.d.comb += Assert(got == o[:len(got)], f"element {j}")
        return m
