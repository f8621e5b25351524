"""The decomposed element-multiplier proofs (mxhw/formal/harness_mul.py): they prove, and
each mutation (made here, never in the source) is caught with a counterexample."""

from __future__ import annotations

import pytest
from amaranth.hdl import Module

from mxhw.formal.harness_mul import DecodeEquiv, MultiplierComposed, _decoded
from mxhw.formal.proofs import SLOW_PAIRS, all_proofs
from mxhw.pe import ElementMultiplier
from support.formal import caught, prove, shifted_product_multiplier

pytestmark = pytest.mark.toolchain


def test_every_slow_pair_has_a_composed_proof():
    names = {p.name for p in all_proofs(["ElementMultiplier"], thorough=True)}
    for fa, fb in SLOW_PAIRS:
        assert f"mul_{fa}_x_{fb}_composed" in names
        assert f"decode_{fa}" in names and f"decode_{fb}" in names


@pytest.mark.parametrize("fmt", ["fp4_e2m1", "int8"])
def test_decode_proved(tmp_path, fmt):
    r = prove(tmp_path, "dec", DecodeEquiv(fmt))
    assert r.status == "proved", r.line()


def test_composed_proved(tmp_path):
    r = prove(tmp_path, "mul", MultiplierComposed("fp4_e2m1", "fp6_e3m2"))
    assert r.status == "proved", r.line()


def _shift_off(m, fmt, code, name):
    """The decoder's shift one too large for the largest exponent field."""
    sig, sh, nf = _decoded(m, fmt, code, name)
    top = code[fmt.man_bits:fmt.man_bits + fmt.exp_bits] == (1 << fmt.exp_bits) - 2
    return sig, sh + top, nf


def test_decode_mutation_caught(tmp_path):
    caught(prove(tmp_path, "mut", DecodeEquiv("fp6_e3m2", decode=_shift_off)))


ProductShifted = shifted_product_multiplier()


class SignLostOnZeroExp(ElementMultiplier):
    """The sign dropped when ``a``'s exponent field is 0 (subnormals)."""
    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = ElementMultiplier(self.fmt_a, self.fmt_b, self.latency)
        raw = self.a.as_value()
        f = self.fmt_a
        m.d.comb += [inner.a.eq(self.a), inner.b.eq(self.b), self.p.eq(inner.p),
                     self.nonfinite.eq(inner.nonfinite)]
        with m.If((raw[f.man_bits:f.man_bits + f.exp_bits] == 0) & (inner.p < 0)):
            m.d.comb += self.p.eq(-inner.p)
        return m


@pytest.mark.parametrize("mutant", [ProductShifted, SignLostOnZeroExp])
def test_composed_mutation_caught(tmp_path, mutant):
    caught(prove(tmp_path, "mut", MultiplierComposed("fp4_e2m1", "fp6_e3m2", dut=mutant)))


# -- the dot product's k = 32 sum, decomposed (harness_dot) ----------------------------------

from mxhw.formal.harness_dot import DotSumComposed  # noqa: E402
from mxhw.pe import MXDotProduct  # noqa: E402


def test_dot_part_checked():
    with pytest.raises(ValueError, match="part must be"):
        DotSumComposed("mxfp4", 2, "all")


@pytest.mark.parametrize("part", ["lanes", "tree"])
def test_dot_composed_proved(tmp_path, part):
    r = prove(tmp_path, "dot", DotSumComposed("mxfp4", 4, part))
    assert r.status == "proved", r.line()


class DotLaneShifted(MXDotProduct):
    """Every lane's product one place too far left (its shift + 1)."""
    def elaborate(self, platform):
        from mxhw.pe import dot as dot_mod
        orig = dot_mod.decode_parts

        def shifted(*args, **kw):
            operands, shift, nf = orig(*args, **kw)
            return operands, shift + 1, nf
        dot_mod.decode_parts = shifted
        try:
            return super().elaborate(platform)
        finally:
            dot_mod.decode_parts = orig


class DotTreeDropsLane(MXDotProduct):
    """The adder tree's first level loses the last lane's product."""
    def elaborate(self, platform):
        from mxhw.pe import dot as dot_mod
        orig = dot_mod.reduce_levels
        first = []

        def dropping(terms, op, n):
            if not first:
                first.append(1)
                terms = terms[:-1]
            return orig(terms, op, n)
        dot_mod.reduce_levels = dropping
        try:
            return super().elaborate(platform)
        finally:
            dot_mod.reduce_levels = orig


@pytest.mark.parametrize("mutant,part", [(DotLaneShifted, "lanes"), (DotTreeDropsLane, "tree")])
def test_dot_composed_mutation_caught(tmp_path, mutant, part):
    caught(prove(tmp_path, "mut", DotSumComposed("mxfp4", 4, part, dut=mutant)))
