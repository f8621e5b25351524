"""The pipelined re-quantiser (``pipeline`` 1..7, the registered variants) proved against
the same reference, the outputs exactly ``latency`` cycles after their inputs; mutations
(made here, never in the source) are caught with a counterexample."""

from __future__ import annotations

import pytest
from amaranth.hdl import Module, Signal

from mxhw.dequant import Requantizer
from mxhw.formal.harness_requant import RequantEquiv
from support.formal import caught, prove, wrapped_requantizer

pytestmark = pytest.mark.toolchain


@pytest.mark.parametrize("pl", [1, 6, 7])
def test_requant_pipelined_proved(tmp_path, pl):
    h = RequantEquiv("mxfp4", 2, 8, 4, pipeline=pl)
    r = prove(tmp_path, "rq", h, depth=pl + 1)
    assert r.status == "proved", r.line()


class LateByOne(Requantizer):
    """One register stage more than the stated latency."""
    def elaborate(self, platform):
        m = Module()
        wrapped_requantizer(m, self, extra_stages=1)
        return m


class StaleScale(Requantizer):
    """The scale one block late (an extra register on the scale only)."""
    def elaborate(self, platform):
        m = Module()
        inner = wrapped_requantizer(m, self)
        s = Signal(8)
        m.d.sync += s.eq(inner.o.payload.scale)
        m.d.comb += self.o.payload.scale.eq(s)
        return m


@pytest.mark.parametrize("mutant", [LateByOne, StaleScale])
def test_requant_pipelined_mutation_caught(tmp_path, mutant):
    h = RequantEquiv("mxfp4", 2, 8, 4, dut=mutant, pipeline=3)
    caught(prove(tmp_path, "mut", h, depth=5))
