"""WeightMapper (harness_weights.py) and the aligner's k = 32 shared exponent: the reference
is right (checked against golden by simulation, no tools), the proofs hold, and each
mutation (made here, never in the source) is caught with a counterexample."""

from __future__ import annotations

import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from mxhw.dequant import Aligner
from mxhw.formal.harness import AlignerEquiv
from mxhw.formal.harness_weights import WeightMapperEquiv, _reference
from mxhw.golden.bitserial import FAMILIES, WEIGHT_TYPES, weight_type
from mxhw.pe.bitserial import WeightMapper
from support.formal import caught, pass_streams, prove


# -- the reference itself (no tools): every code of every type equals golden's integer ----

@pytest.mark.parametrize("name", list(WEIGHT_TYPES))
def test_reference_matches_golden(name):
    t = weight_type(name)
    m = Module()
    code = Signal(8)
    ref, bits = _reference(m, name, code, 0)
    assert bits == t.code_bits
    got = []

    async def bench(ctx):
        # codes wider than the type: only the low code_bits bits count
        for c in range(1 << t.code_bits):
            ctx.set(code, c | (0xA5 << t.code_bits) & 0xFF)
            got.append(ctx.get(ref))
    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert got == list(t.ints)


def test_bad_types_raise():
    with pytest.raises(ValueError, match="unknown weight type"):
        WeightMapperEquiv(("bitmod_fp5",))


# -- proofs ------------------------------------------------------------------------------

pytestmark_tools = pytest.mark.toolchain


@pytestmark_tools
def test_weightmap_proved(tmp_path):
    r = prove(tmp_path, "wmap", WeightMapperEquiv(FAMILIES["bitmod_fp4"] + ("int3", "mxint8"), 2))
    assert r.status == "proved", r.line()


def _mapper_with(table_edit=None, unsigned_int=False):
    """A mutant WeightMapper class: one table entry changed, or the two's complement types
    zero-extended instead of sign-extended."""
    class Mutant(WeightMapper):
        def elaborate(self, platform):
            m = Module()
            m.submodules.inner = inner = WeightMapper(self.types, self.lanes, self.out_width)
            m.d.comb += [inner.sel.eq(self.sel), self.bits.eq(inner.bits)]
            for j in range(self.lanes):
                m.d.comb += [inner.code[j].eq(self.code[j]), self.w[j].eq(inner.w[j])]
                if table_edit is not None:
                    sel, code, value = table_edit
                    with m.If((self.sel == sel) & (self.code[j][:4] == code)):
                        m.d.comb += self.w[j].eq(value)
                if unsigned_int:
                    for i, t in enumerate(self.types):
                        if t.startswith("int"):
                            n = weight_type(t).code_bits
                            with m.If(self.sel == i):
                                m.d.comb += self.w[j].eq(self.code[j][:n])
            return m
    return Mutant


@pytestmark_tools
@pytest.mark.parametrize("mutant", [
    # bitmod_fp4_er_neg's extra value -5 (code 0b1000, ints -10) given as +5
    _mapper_with(table_edit=(1, 0b1000, 10)),
    # INTn zero-extended: negative weights become large positive ones
    _mapper_with(unsigned_int=True)])
def test_weightmap_mutation_caught(tmp_path, mutant):
    types = FAMILIES["bitmod_fp4"] + ("int3",)
    caught(prove(tmp_path, "mut", WeightMapperEquiv(types, 1, dut=mutant)))


# -- the aligner's shared exponent at k = 32 (the max tree's width) ------------------------

@pytestmark_tools
def test_aligner_k32_exp_proved(tmp_path):
    r = prove(tmp_path, "align32", AlignerEquiv("mxfp4", 32, "rne", parts=("exp",)))
    assert r.status == "proved", r.line()


class AlignerLastLaneIgnored(Aligner):
    """The max tree misses lane 31: its exponent never becomes the shared one."""
    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = Aligner(self.fmt, rounding=self.rounding, pipeline=0)
        pass_streams(m, inner, self)
        m.d.comb += inner.i.payload.elements[self.k - 1].eq(0)
        return m


@pytestmark_tools
def test_aligner_k32_exp_mutation_caught(tmp_path):
    caught(prove(tmp_path, "mut", AlignerEquiv("mxfp4", 32, "rne", parts=("exp",),
                                                dut=AlignerLastLaneIgnored)))
