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


# -- the GEMM sequencer, unbounded ---------------------------------------------------------

from mxhw.formal.harness_induct import SeqInduction  # noqa: E402
from mxhw.systolic.seq import GemmSequencer  # noqa: E402


@pytestmark_tools
@pytest.mark.parametrize("args,kw", [
    (("output_stationary", 2, 2, 4, None, 2), {}),
    (("output_stationary", 2, 2, 4, None, 2), dict(hold_k=False)),
    (("weight_stationary", 3, 4, 16, 5, 3), {})])
def test_sequencer_induction_proved(tmp_path, args, kw):
    r = prove(tmp_path, "seq", SeqInduction(*args, **kw), mode="prove", depth=3)
    assert r.status == "proved", r.line()


class OsReloadShort(GemmSequencer):
    """Output-stationary: the next tile reloaded with one K step too few."""
    def elaborate(self, platform):
        m = super().elaborate(platform)
        left, k_run = find_signal(m, "left"), find_signal(m, "k_run")
        with m.If(self.step.valid & self.step.ready & (left == 1)):
            m.d.sync += left.eq(k_run - 1)
        return m


class WsFinalIgnoresTile(GemmSequencer):
    """Weight-stationary: the run's final pass taken as the first tile's last (the tile
    term forgotten): a run of two tiles ends after one."""
    def elaborate(self, platform):
        m = super().elaborate(platform)
        ja, pa, nb_m1 = (find_signal(m, n) for n in ("ja", "pa", "nb_m1"))
        m.d.comb += find_signal(m, "final").eq((ja == nb_m1) & (pa == self.passes_per_block - 1))
        return m


class OsNeverEnds(GemmSequencer):
    """Output-stationary: a run of K = max_k never ends (its last transfer keeps coming)."""
    def elaborate(self, platform):
        m = super().elaborate(platform)
        k_run, running = find_signal(m, "k_run"), find_signal(m, "running")
        with m.If(k_run == self._max_k):
            m.d.sync += running.eq(1)
        return m


@pytestmark_tools
@pytest.mark.parametrize("args,mutant", [
    (("output_stationary", 2, 2, 4, None, 2), OsReloadShort),
    (("output_stationary", 2, 2, 4, None, 2), OsNeverEnds),
    (("weight_stationary", 4, 4, 8, 2, 2), WsFinalIgnoresTile)])
def test_sequencer_induction_mutation_caught(tmp_path, args, mutant):
    df, rows, k, max_k, d, tiles = args
    dut = mutant(df, rows, k, max_k, depth=d, tiles=tiles)
    # depth 12: the base case reaches the bug from reset (a counterexample trace)
    caught(prove(tmp_path, "mut", SeqInduction(*args, dut=dut), mode="prove", depth=12))
