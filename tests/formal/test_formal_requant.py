"""The re-quantiser and MXSF mode-switch proofs: the reference itself agrees with golden
(simulated, Hypothesis-drawn blocks), the proofs hold on small configurations, and each
deliberate mutation (made here, never in the source) is caught with a counterexample."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Elaboratable, Module, Signal, signed
from amaranth.sim import Simulator
from hypothesis import given, strategies as st

from mxhw import golden
from mxhw.dequant import Requantizer
from mxhw.dequant import requant as requant_mod
from mxhw.formal.harness_requant import RequantEquiv
from mxhw.formal.reference import magnitudes
from support.formal import caught, prove, wrapped_requantizer
from support.hyp import budget


# -- the reference against golden (pysim, no formal tools) ------------------------------

class _RefOnly(Elaboratable):
    """The harness's reference alone, on free inputs."""

    def __init__(self, h):
        self.h = h
        self.v = [Signal(signed(h.W), name=f"v{j}") for j in range(h.k)]
        self.scale = Signal(8)
        self.codes = [Signal(8, name=f"c{j}") for j in range(h.k)]
        self.mode = Signal()

    def elaborate(self, platform):
        m = Module()
        scale, outs, mode = self.h.reference(m, self.v)
        m.d.comb += [self.scale.eq(scale), *(c.eq(o) for c, o in zip(self.codes, outs))]
        if mode is not None:
            m.d.comb += self.mode.eq(mode)
        return m


def _reference_run(fmt, k, W, Fi, blocks):
    """The reference's (scale, codes, mode) for each block, in one simulation."""
    ref = _RefOnly(RequantEquiv(fmt, k, W, Fi))
    out = []

    async def bench(ctx):
        for vals in blocks:
            for s, v in zip(ref.v, vals):
                ctx.set(s, v)
            out.append((ctx.get(ref.scale), [ctx.get(c) for c in ref.codes],
                        ctx.get(ref.mode)))

    sim = Simulator(ref)
    sim.add_testbench(bench)
    sim.run()
    return out


@pytest.mark.parametrize("fmt,k,W,Fi", [("mxfp4", 2, 8, 4), ("mxfp8_e4m3", 2, 12, 6),
                                        ("mxint8", 2, 10, 5), ("mxsf", 2, 8, 4)])
@budget(4)
@given(data=st.data())
def test_reference_matches_golden(fmt, k, W, Fi, data):
    # a batch of blocks per example: one elaboration of the reference serves them all
    value = st.integers(-(1 << (W - 1)), (1 << (W - 1)) - 1)
    blocks = data.draw(st.lists(st.lists(value, min_size=k, max_size=k), min_size=1,
                                max_size=25))
    for vals, (scale, codes, mode) in zip(blocks, _reference_run(fmt, k, W, Fi, blocks)):
        x = np.array(vals, dtype=np.float64) * 2.0 ** -Fi
        g = golden.quantize(np.concatenate([x, np.zeros(32 - k)]), fmt)
        assert scale == int(g.scales[0]), vals
        assert codes == [int(c) & 0xFF for c in g.elements[:k]], vals
        if fmt == "mxsf":
            assert mode == int(g.modes[0]), vals


def test_magnitudes_ascending_and_guarded():
    assert magnitudes(golden.formats.get("fp4_e2m1")) == [0, 1, 2, 3, 4, 6, 8, 12]
    assert len(magnitudes(golden.formats.get("fp8_e4m3"))) == 0x7F   # 0x7F is NaN
    assert magnitudes(golden.formats.get("int8")) == list(range(128))


def test_harness_refuses_clamped_scales():
    with pytest.raises(ValueError, match="in_frac 130"):
        RequantEquiv("mxfp4", 2, 8, 130)


# -- proofs that hold (small configurations) ---------------------------------------------


@pytest.mark.toolchain
@pytest.mark.parametrize("fmt,k,W,Fi", [("mxfp4", 2, 8, 4), ("mxint8", 2, 8, 4),
                                        ("mxfp6_e3m2", 2, 8, 4)])
def test_requant_proved(tmp_path, fmt, k, W, Fi):
    r = prove(tmp_path, "rq", RequantEquiv(fmt, k, W, Fi))
    assert r.status == "proved", r.line()


@pytest.mark.toolchain
def test_mxsf_proved(tmp_path):
    r = prove(tmp_path, "mxsf", RequantEquiv("mxsf", 2, 6, 3), depth=3)
    assert r.status == "proved", r.line()


# -- mutations ---------------------------------------------------------------------------


class ScaleOffByOne(Requantizer):
    """The scale code one too large (elements unchanged)."""
    def elaborate(self, platform):
        m = Module()
        inner = wrapped_requantizer(m, self)
        m.d.comb += self.o.payload.scale.eq(inner.o.payload.scale + 1)
        return m


class RoundHalfUp(Requantizer):
    """Wrong rounding: ties away from zero (the increment ignores the even bit)."""
    def _pack(self, m, e, q0, gs, ec, zero, name):
        from amaranth.hdl import Cat, Const
        return super()._pack(m, e, q0, Cat(gs[0], Const(1, 1)), ec, zero, name)


@pytest.mark.toolchain
@pytest.mark.parametrize("mutant,fmt", [(ScaleOffByOne, "mxfp4"), (RoundHalfUp, "mxfp4"),
                                        (RoundHalfUp, "mxint8")])
def test_requant_mutation_caught(tmp_path, mutant, fmt):
    caught(prove(tmp_path, "mut", RequantEquiv(fmt, 2, 8, 4, dut=mutant)))


class MXSFErrorShifted(Requantizer):
    """The MXSF mode choice from errors of inputs one place off (each input exponent
    + 1): elements and scales of each mode unchanged, the choice between them wrong."""
    def elaborate(self, platform):
        orig = requant_mod.mxsf_select

        def shifted(m, o, en, reg, valid, modes, codes, mags, negs, exs, *rest):
            return orig(m, o, en, reg, valid, modes, codes, mags, negs,
                        [e + 1 for e in exs], *rest)
        requant_mod.mxsf_select = shifted
        try:
            return super().elaborate(platform)
        finally:
            requant_mod.mxsf_select = orig


@pytest.mark.toolchain
def test_mxsf_mutation_caught(tmp_path):
    caught(prove(tmp_path, "mut", RequantEquiv("mxsf", 2, 6, 3, dut=MXSFErrorShifted),
                  depth=3))
