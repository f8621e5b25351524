"""Unbounded (k-induction) stream contracts (mxhw/formal/harness_induct.py): they prove,
they need their invariants, and they bite -- each mutation (made here, by subclassing the
component, never in the source) is rejected."""

from __future__ import annotations

import pytest
from amaranth.hdl import Signal

from mxhw.formal.harness import StreamContract
from mxhw.formal.harness_induct import FifoInduction, SkidInduction
from mxhw.formal.probe import elaborate, find_signal, find_subfragment, memory_rows
from mxhw.mem import SkidBuffer, StreamFIFO
from support.formal import caught, prove


# -- the probe (no tools) ---------------------------------------------------------------

def test_probe_finds_registers():
    f = elaborate(StreamFIFO(4, 4))
    fifo = find_subfragment(f, "fifo")
    assert find_signal(fifo, "produce").name == "produce"
    assert len(memory_rows(find_subfragment(fifo, "storage"))) == 3


def test_probe_missing_names_raise():
    f = elaborate(SkidBuffer(4))
    with pytest.raises(LookupError, match="signals named 'nope'"):
        find_signal(f, "nope")
    with pytest.raises(LookupError, match="no subfragment"):
        find_subfragment(f, "nope")
    with pytest.raises(TypeError, match="MemoryInstance"):
        memory_rows(f)


# -- proofs that hold -------------------------------------------------------------------

pytestmark_tools = pytest.mark.toolchain


@pytestmark_tools
@pytest.mark.parametrize("harness", [lambda: SkidInduction(SkidBuffer(4)),
                                     lambda: FifoInduction(StreamFIFO(4, 1)),
                                     lambda: FifoInduction(StreamFIFO(4, 4))])
def test_stream_induction_proved(tmp_path, harness):
    r = prove(tmp_path, "ind", harness(), mode="prove", depth=3)
    assert r.status == "proved", r.line()


@pytestmark_tools
def test_without_invariants_induction_does_not_close(tmp_path):
    # the plain contract is not inductive: the skid register's content is unconstrained
    r = prove(tmp_path, "plain", StreamContract(SkidBuffer(4), 4, 2), mode="prove", depth=3)
    assert r.status == "unproved", r.line()


# -- mutations ----------------------------------------------------------------------------

class SkidReadyHigh(SkidBuffer):
    """``i.ready`` stuck high: a payload offered while the skid is full is lost."""
    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.comb += self.i.ready.eq(1)
        return m


class SkidLateDrop(SkidBuffer):
    """Drops one payload after 24 transfers (a bug deeper than the 20-cycle BMC)."""
    def elaborate(self, platform):
        m = super().elaborate(platform)
        n = Signal(5, name="n_in")
        fire = self.i.valid & self.i.ready
        with m.If(fire & (n != 31)):
            m.d.sync += n.eq(n + 1)
        with m.If(n == 24):
            m.d.comb += self.i.ready.eq(1)      # taken but, with the skid full, lost
        return m


class FifoReadIgnored(StreamFIFO):
    """The read side ignores ``o.ready``: payloads drop while the sink stalls."""
    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.comb += m.submodules["fifo"].r_en.eq(1)
        return m


class FifoWriteIgnoresFull(StreamFIFO):
    """``i.ready`` high while full: an entry of the ring is overwritten."""
    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.comb += self.i.ready.eq(1)
        return m


@pytestmark_tools
@pytest.mark.parametrize("harness", [lambda: SkidInduction(SkidReadyHigh(4)),
                                     lambda: FifoInduction(FifoReadIgnored(4, 4)),
                                     lambda: FifoInduction(FifoWriteIgnoresFull(4, 4))])
def test_stream_induction_mutation_caught(tmp_path, harness):
    # depth 6: the base case reaches the bug from reset (a counterexample trace)
    caught(prove(tmp_path, "mut", harness(), mode="prove", depth=6))


@pytestmark_tools
def test_deep_bug_escapes_bmc_not_induction(tmp_path):
    # BMC of the CI depth (20) proves the late-dropping mutant; induction rejects it
    bmc = prove(tmp_path / "bmc", "bmc", StreamContract(SkidLateDrop(4), 4, 2), depth=20)
    assert bmc.status == "proved", bmc.line()
    ind = prove(tmp_path / "ind", "ind", SkidInduction(SkidLateDrop(4)), mode="prove",
                depth=3)
    assert ind.status in ("failed", "unproved"), ind.line()
