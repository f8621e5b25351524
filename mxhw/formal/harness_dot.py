"""The MX dot product's sum at k = 32, decomposed (the monolithic ``S == sum_j rom(a_j) *
rom(b_j)`` times out): the block's lane products are its signals ``fixed0 ..
fixed{k-1}`` (each lane's product shifted into place, ``mxhw/pe/dot.py``), read through
:mod:`mxhw.formal.probe`. Two proofs, each for every input:

* ``"lanes"``: every finite lane's ``fixed_j == (sig_a * sig_b) << (sh_a + sh_b)``, the
  fields from the decoder proved against golden's table (``harness_mul.DecodeEquiv``): so
  ``fixed_j == rom(a_j) * rom(b_j)`` (as for the element multipliers);
* ``"tree"``: ``S == sum_j fixed_j`` exactly (the adder tree and the output's width lose
  nothing), ``S == 0`` if special (a NaN scale, a NaN/Inf element).

Together: ``S == sum_j rom(a_j) * rom(b_j)`` (0 if special) at k = 32.
"""

from __future__ import annotations

from amaranth.hdl import Assert, Cat, Module, Mux, Signal, signed

from .base import balanced_sum
from .harness import DotEquiv
from .harness_induct import Probed
from .harness_mul import _decoded
from .probe import find_signal

__all__ = ["DotSumComposed"]


class DotSumComposed(Probed, DotEquiv):
    """``MXDotProduct(fmt, fmt, pipeline=0)`` with ``k`` elements; ``part``: ``"lanes"``
    or ``"tree"`` (module docstring). ``dut``: a mutant class. Ports and block as
    :class:`~mxhw.formal.harness.DotEquiv`, another reference."""

    def __init__(self, fmt, k, part, dut=None):
        if part not in ("lanes", "tree"):
            raise ValueError(f"part must be 'lanes' or 'tree', not {part!r}")
        super().__init__(fmt, k, (), dut)
        self.part = part

    def elaborate(self, platform):
        m = Module()
        self.setup(m)
        m.submodules.dut = self.submodule()
        dut, el, sc = self.dut, self.fmt.element, self.fmt.scale
        pl = dut.i.payload
        m.d.comb += [pl.scale_a.eq(self.sa), pl.scale_b.eq(self.sb),
                     dut.i.valid.eq(self.valid), dut.o.ready.eq(self.ready)]
        fixed = [find_signal(self.frag, f"fixed{j}") for j in range(self.k)]
        nfs = []
        for j in range(self.k):
            m.d.comb += [pl.a[j].eq(self.a[j]), pl.b[j].eq(self.b[j])]
            sa, sha, nfa = _decoded(m, el, self.a[j], f"ref_a{j}")
            sb, shb, nfb = _decoded(m, el, self.b[j], f"ref_b{j}")
            nfs.append(nfa | nfb)
            if self.part == "lanes":
                with m.If(~(nfa | nfb)):
                    m.d.comb += Assert(fixed[j] == (sa * sb) << (sha + shb),
                                       f"lane {j}: fixed == (sig_a * sig_b) << shifts")
        if self.part == "tree":
            special = Signal()
            m.d.comb += special.eq((self.sa == sc.nan_code) | (self.sb == sc.nan_code)
                                   | Cat(*nfs).any())
            total = Signal(signed(len(dut.o.payload.s) + 8))
            m.d.comb += total.eq(balanced_sum(fixed))
            m.d.comb += Assert(dut.o.payload.s == Mux(special, 0, total),
                               "S == exact sum of the lanes (0 if special)")
        return m
