"""Formal proofs (SymbiYosys via YoWASP): the proofs hold, and they bite -- each deliberate
mutation below (made here, by wrapping the component, never in the source) is caught with a
counterexample trace."""

from __future__ import annotations

import pytest
from amaranth.hdl import Module, Signal

from mxhw.formal.__main__ import main
from mxhw.formal.harness import MultiplierEquiv, StreamContract
from mxhw.formal.proofs import all_proofs
from mxhw.formal.reference import exact_ints
from mxhw.mem import SkidBuffer, StreamFIFO
from mxhw.pe import ElementMultiplier
from support.formal import caught, prove, shifted_product_multiplier

pytestmark = pytest.mark.toolchain


# -- the reference itself (no tools) --------------------------------------------------

@pytest.mark.parametrize("fmt,expect", [
    ("fp4_e2m1", [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12]),
    ("int8", list(range(0, 128)) + list(range(-128, 0))),
])
def test_reference_decode(fmt, expect):
    # the ROM contents: golden's decode table as exact integers at 2**lsb_exp (int8: the
    # two's-complement code itself, LSB 2**-6)
    assert exact_ints(fmt) == expect


def test_reference_nonfinite_e4m3():
    vals = exact_ints("fp8_e4m3")
    assert [c for c, v in enumerate(vals) if v is None] == [0x7F, 0xFF]
    assert vals[0x7E] == 448 * 2 ** 9


def test_cli_list(capsys):
    assert main(["--list"]) == 0
    out = capsys.readouterr().out
    assert "mul_fp4_e2m1_x_fp4_e2m1" in out and "skid_induct" in out


def test_every_ocp_pair_has_a_proof():
    names = {p.name for p in all_proofs(thorough=True)}
    from mxhw.formal.proofs import OCP_ELEMENTS
    for i, a in enumerate(OCP_ELEMENTS):
        for b in OCP_ELEMENTS[i:]:
            assert f"mul_{a}_x_{b}" in names


# -- proofs that hold ------------------------------------------------------------------

@pytest.mark.parametrize("fa,fb,pl", [("fp4_e2m1", "fp4_e2m1", 0),
                                      ("fp4_e2m1", "fp6_e3m2", 2),
                                      ("fp6_e2m3", "int8", 0)])
def test_multiplier_proved(tmp_path, fa, fb, pl):
    r = prove(tmp_path, "mul", MultiplierEquiv(fa, fb, pl), depth=pl + 2)
    assert r.status == "proved", r.line()


@pytest.mark.parametrize("make,cap", [(lambda: SkidBuffer(4), 2),
                                      (lambda: StreamFIFO(4, 2), 2)])
def test_stream_contract_proved(tmp_path, make, cap):
    r = prove(tmp_path, "stream", StreamContract(make(), 4, cap), depth=12)
    assert r.status == "proved", r.line()


# -- mutations: each must fail with a counterexample --------------------------------------


ShiftedProduct = shifted_product_multiplier()


class NoNegZero(ElementMultiplier):
    """Wrong sign handling of one code pair: -x * y reported as +|xy| when a == 0b1111."""
    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = ElementMultiplier(self.fmt_a, self.fmt_b, self.latency)
        raw = self.a.as_value()
        m.d.comb += [inner.a.eq(self.a), inner.b.eq(self.b),
                     self.nonfinite.eq(inner.nonfinite),
                     self.p.eq(inner.p)]
        with m.If(raw == 0b1111):
            m.d.comb += self.p.eq(-inner.p)
        return m


class ExtraStage(ElementMultiplier):
    """One register stage too many (latency off by one)."""
    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = ElementMultiplier(self.fmt_a, self.fmt_b, self.latency)
        m.d.comb += [inner.a.eq(self.a), inner.b.eq(self.b)]
        m.d.sync += [self.p.eq(inner.p), self.nonfinite.eq(inner.nonfinite)]
        return m


@pytest.mark.parametrize("mutant,pl", [(ShiftedProduct, 0), (NoNegZero, 0), (ExtraStage, 1)])
def test_multiplier_mutation_caught(tmp_path, mutant, pl):
    r = prove(tmp_path, "mut", MultiplierEquiv("fp4_e2m1", "fp6_e3m2", pl, dut=mutant),
              depth=pl + 3)
    caught(r)


class SkidDroppedReady(SkidBuffer):
    """``i.ready`` stuck high: a payload offered while the skid is full is lost."""
    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = SkidBuffer(4)
        m.d.comb += [inner.i.payload.eq(self.i.payload), inner.i.valid.eq(self.i.valid),
                     self.i.ready.eq(1),
                     self.o.payload.eq(inner.o.payload), self.o.valid.eq(inner.o.valid),
                     inner.o.ready.eq(self.o.ready)]
        return m


class FifoReadyIgnored(StreamFIFO):
    """The FIFO's read side ignores ``o.ready``: payloads drop while the sink stalls."""
    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = StreamFIFO(4, self.depth)
        m.d.comb += [inner.i.payload.eq(self.i.payload), inner.i.valid.eq(self.i.valid),
                     self.i.ready.eq(inner.i.ready),
                     self.o.payload.eq(inner.o.payload), self.o.valid.eq(inner.o.valid),
                     inner.o.ready.eq(1)]
        return m


class FifoDuplicate(StreamFIFO):
    """``o.valid`` raised one extra cycle after a transfer: the payload is sent twice."""
    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = StreamFIFO(4, self.depth)
        again = Signal()
        m.d.sync += again.eq(inner.o.valid & self.o.ready & ~again)
        m.d.comb += [inner.i.payload.eq(self.i.payload), inner.i.valid.eq(self.i.valid),
                     self.i.ready.eq(inner.i.ready),
                     self.o.payload.eq(inner.o.payload),
                     self.o.valid.eq(inner.o.valid | again),
                     inner.o.ready.eq(self.o.ready & ~again)]
        return m


@pytest.mark.parametrize("make,cap", [(lambda: SkidDroppedReady(4), 2),
                                      (lambda: FifoReadyIgnored(4, 2), 2),
                                      (lambda: FifoDuplicate(4, 2), 2)])
def test_stream_mutation_caught(tmp_path, make, cap):
    r = prove(tmp_path, "mut", StreamContract(make(), 4, cap), depth=12)
    caught(r)


# -- the aligner ------------------------------------------------------------------------

from mxhw.dequant import Aligner
from mxhw.formal.harness import AlignerEquiv, DotEquiv


@pytest.mark.parametrize("rnd", ["truncate", "rne"])
def test_aligner_proved(tmp_path, rnd):
    r = prove(tmp_path, "align", AlignerEquiv("mxfp4", 2, rnd))
    assert r.status == "proved", r.line()


class AlignerLostSticky(Aligner):
    """Wrong rounding: RNE output replaced by truncation (the guard/sticky bits ignored)."""
    def __init__(self, fmt, rounding, pipeline):
        super().__init__(fmt, rounding=rounding, pipeline=pipeline)

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = Aligner(self.fmt, rounding="truncate", pipeline=0)
        m.d.comb += [inner.i.payload.eq(self.i.payload), inner.i.valid.eq(self.i.valid),
                     self.i.ready.eq(inner.i.ready), self.o.payload.eq(inner.o.payload),
                     self.o.valid.eq(inner.o.valid), inner.o.ready.eq(self.o.ready)]
        return m


class AlignerShiftOff(Aligner):
    """Off-by-one shift: every output one place too far right (>> 1)."""
    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = Aligner(self.fmt, rounding=self.rounding, pipeline=0)
        m.d.comb += [inner.i.payload.eq(self.i.payload), inner.i.valid.eq(self.i.valid),
                     self.i.ready.eq(inner.i.ready), self.o.payload.eq(inner.o.payload),
                     self.o.valid.eq(inner.o.valid), inner.o.ready.eq(self.o.ready)]
        for j in range(self.k):
            m.d.comb += self.o.payload.ints[j].eq(inner.o.payload.ints[j] >> 1)
        return m


@pytest.mark.parametrize("mutant,rnd", [(AlignerLostSticky, "rne"),
                                        (AlignerShiftOff, "truncate")])
def test_aligner_mutation_caught(tmp_path, mutant, rnd):
    caught(prove(tmp_path, "mut", AlignerEquiv("mxfp4", 2, rnd, dut=mutant)))


# -- the dot product --------------------------------------------------------------------

def test_dot_proved(tmp_path):
    r = prove(tmp_path, "dot", DotEquiv("mxfp4", 2))
    assert r.status == "proved", r.line()


class DotScaleOffByOne(__import__("mxhw.pe", fromlist=["MXDotProduct"]).MXDotProduct):
    """Off-by-one exponent: E one too large."""
    def elaborate(self, platform):
        from mxhw.pe import MXDotProduct
        m = Module()
        m.submodules.inner = inner = MXDotProduct(self.fmt_a, self.fmt_b, pipeline=0)
        m.d.comb += [inner.i.payload.eq(self.i.payload), inner.i.valid.eq(self.i.valid),
                     self.i.ready.eq(inner.i.ready), self.o.payload.eq(inner.o.payload),
                     self.o.valid.eq(inner.o.valid), inner.o.ready.eq(self.o.ready),
                     self.o.payload.e.eq(inner.o.payload.e + 1)]
        return m


def test_dot_mutation_caught(tmp_path):
    caught(prove(tmp_path, "mut", DotEquiv("mxfp4", 2, dut=DotScaleOffByOne)))
