"""The wide element multipliers, decomposed (the monolithic ``rom_a * rom_b`` proof of
fp8 x fp8 and int8 x int8 times out: two differently built 8 x 8-bit multipliers).

``ElementMultiplier`` computes ``p = prod << shift`` from the operands' decoded form
(:func:`mxhw.formats.unpack`: sign, significand, exponent; :func:`~mxhw.formats.lsb_shift`:
the exponent as a shift from the LSB grid), ``prod`` the signed significand product and
``shift`` the sum of the two shifts (:func:`mxhw.pe.multiplier.multiply_parts`). Two proofs:

* :class:`DecodeEquiv` (one operand, every code): ``+-significand << lsb_shift`` equals
  the reference ROM's exact integer (golden's decode table), and NaN/Inf agree;
* :class:`MultiplierComposed` (both operands, every code pair): the component's ``p``
  equals ``(+-sig_a * +-sig_b) << (shift_a + shift_b)`` with ``*`` exact (0 if NaN/Inf),
  the decoded fields taken from the decoder proved by the first.

Together: ``p = (s_a sig_a * s_b sig_b) << (e_a + e_b) = (s_a sig_a << e_a) * (s_b sig_b
<< e_b) = rom_a(a) * rom_b(b)`` -- the last step is the identity ``(x << i) * (y << j) =
(x * y) << (i + j)`` of exact integers, so the pair is the monolithic property.
"""

from __future__ import annotations

from amaranth.hdl import Assert, Module, Mux, Signal, signed

from ..formats import _nonfinite, element_format, lsb_shift, unpack
from .base import Harness
from .harness import MultiplierEquiv
from .reference import rom

__all__ = ["DecodeEquiv", "MultiplierComposed"]


def _decoded(m, fmt, code, name):
    """The decoder's signed significand, its shift and its NaN/Inf flag for ``code``."""
    u = unpack(m, fmt, code, name=name)
    sig = Signal(signed(len(u.significand) + 1), name=f"{name}_sig")
    sh = Signal(len(lsb_shift(u)), name=f"{name}_sh")
    nf = Signal(name=f"{name}_nf")
    m.d.comb += [sig.eq(Mux(u.sign, -u.significand, u.significand)), sh.eq(lsb_shift(u)),
                 nf.eq(_nonfinite(u))]
    return sig, sh, nf


class DecodeEquiv(Harness):
    """``unpack`` of every code of ``fmt``: ``+-significand << lsb_shift == rom(code)``
    (finite codes), ``nonfinite == rom``'s NaN/Inf flag."""

    def __init__(self, fmt, decode=None):
        super().__init__()
        self.fmt = element_format(fmt)
        self.decode = decode or _decoded
        self.code = Signal(self.fmt.bits)

    def inputs(self):
        return [self.code]

    def elaborate(self, platform):
        m = Module()
        self.setup(m)
        sig, sh, nf = self.decode(m, self.fmt, self.code, "dut")
        ref, ref_nf = rom(m, self.fmt, self.code, "ref")
        m.d.comb += Assert(nf == ref_nf, "NaN/Inf as the decode table")
        with m.If(~ref_nf):
            m.d.comb += Assert((sig << sh) == ref, "+-significand << shift == table value")
        return m


class MultiplierComposed(MultiplierEquiv):
    """``ElementMultiplier(fmt_a, fmt_b)`` (``dut``: a mutant class): ``p == (sig_a *
    sig_b) << (sh_a + sh_b)`` (0 and ``nonfinite`` if either is NaN/Inf), every code pair,
    the fields from the decoder (:class:`DecodeEquiv`). Ports and block as
    :class:`~mxhw.formal.harness.MultiplierEquiv` (``pipeline`` 0), another reference."""

    def __init__(self, fmt_a, fmt_b, dut=None):
        super().__init__(fmt_a, fmt_b, 0, dut)

    def elaborate(self, platform):
        m = Module()
        self.setup(m)
        m.submodules.dut = dut = self.dut
        m.d.comb += [dut.a.eq(self.a), dut.b.eq(self.b)]
        sa, sha, nfa = _decoded(m, self.fmt_a, self.a, "ref_a")
        sb, shb, nfb = _decoded(m, self.fmt_b, self.b, "ref_b")
        nf = Signal()
        prod = Signal(signed(len(sa) + len(sb)))
        m.d.comb += [nf.eq(nfa | nfb), prod.eq(sa * sb)]
        ref = Signal(signed(len(dut.p) + 1))
        m.d.comb += ref.eq(Mux(nf, 0, prod << (sha + shb)))
        m.d.comb += [Assert(dut.p == ref, "p == (sig_a * sig_b) << (sh_a + sh_b)"),
                     Assert(dut.nonfinite == nf, "nonfinite")]
        return m
