"""Harness of the GEMM sequencer (:class:`~mxhw.systolic.seq.GemmSequencer`): every
started run finishes, with exactly the documented number of transfers, within a bound of
cycles, for any back-pressure that releases within ``stall`` cycles.

The transfer count comes from the documented schedule (``docs/systolic.md``,
:func:`mxhw.systolic.driver.ws_beats`), not from the sequencer: output-stationary
``tiles * K``; weight-stationary ``rows`` weight-only transfers, then per pass
``max(depth, rows)`` slots, the run's final pass ``depth``, over ``tiles * (K / k) *
ceil(k / rows)`` passes. The environment starts a run (any ``K`` in ``k, 2k, ..,
max_k``, and 0) only while the sequencer is idle (``step.valid`` low), holds ``step.ready``
low at most ``stall`` cycles in a row; assumed nothing else.
"""

from __future__ import annotations

from amaranth.hdl import Assert, Assume, Module, Signal

from .base import Harness

__all__ = ["SequencerLiveness", "run_transfers", "bmc_depth"]


def run_transfers(dataflow, rows, k, K, depth=None, tiles=1):
    """The number of transfers of a run of ``K`` (the documented schedule)."""
    if K == 0:
        return 0
    if dataflow == "output_stationary":
        return tiles * K
    passes = tiles * (K // k) * -(-k // rows)
    return rows + (passes - 1) * max(depth, rows) + depth


def bmc_depth(dataflow, rows, k, max_k, depth=None, tiles=1, stall=1, **_):
    """A BMC depth that covers the longest run from a start at cycle 0 to its end."""
    return max(run_transfers(dataflow, rows, k, K, depth, tiles) * (stall + 1) + 1
               for K in range(0, max_k + 1, k)) + 3


class SequencerLiveness(Harness):
    """``GemmSequencer(dataflow, rows, k, max_k, depth, tiles)`` (``dut``: a mutant)
    against :func:`run_transfers`: ``step.valid`` stays high exactly until the run's
    transfers are taken, and a run of ``N`` transfers ends within ``N * (stall + 1) + 1``
    cycles of its ``start``. ``hold_k``: the environment holds ``K`` while a run lasts
    (else ``K`` is free after the ``start`` cycle)."""

    def __init__(self, dataflow, rows, k, max_k, depth=None, tiles=1, stall=1, hold_k=True,
                 dut=None):
        from ..systolic.seq import GemmSequencer
        super().__init__()
        self.args = (dataflow, rows, k, max_k, depth, tiles)
        self.stall, self.hold_k = stall, hold_k
        self.dut = dut or GemmSequencer(dataflow, rows, k, max_k, depth=depth, tiles=tiles)
        self.start = Signal()
        self.K = Signal(range(max_k + 1))
        self.ready = Signal()
        dataflow, rows, k, max_k, depth, tiles = self.args
        self.counts = {K: run_transfers(dataflow, rows, k, K, depth, tiles)
                       for K in range(0, max_k + 1, k)}
        self.bound = max(n * (stall + 1) + 1 for n in self.counts.values())

    def inputs(self):
        return [self.start, self.K, self.ready]

    def depth(self):
        """:func:`bmc_depth` of this harness."""
        return bmc_depth(*self.args, stall=self.stall)

    def elaborate(self, platform):
        m = Module()
        self.setup(m)
        m.submodules.dut = self.submodule()
        dut = self.dut
        m.d.comb += [dut.start.eq(self.start), dut.K.eq(self.K),
                     dut.step.ready.eq(self.ready)]
        # the environment: a start only while idle, a K the sequencer supports
        with m.If(self.start):
            m.d.comb += Assume(~dut.step.valid)
            m.d.comb += Assume(((self.K % self.args[2]) == 0) & (self.K <= self.args[3]))
        if self.hold_k:
            # K held while a run lasts (both users drive it from a constant or a register
            # written only while idle); hold_k=False: K free after start, as the docstring's
            # "sampled with start" allows
            k_prev = Signal.like(self.K)
            m.d.sync += k_prev.eq(self.K)
            with m.If(dut.step.valid):
                m.d.comb += Assume(self.K == k_prev)
        low = Signal(range(self.stall + 2))
        with m.If(dut.step.valid & ~self.ready):
            m.d.sync += low.eq(low + 1)
        with m.Else():
            m.d.sync += low.eq(0)
        m.d.comb += Assume(low <= self.stall)

        # the reference: transfers left in the run, cycles since its start
        nmax = max(self.counts.values())
        left = Signal(range(nmax + 1))
        age = Signal(range(self.bound + 2))
        with m.If(self.start):
            with m.Switch(self.K):
                for K, n in self.counts.items():
                    with m.Case(K):
                        m.d.sync += left.eq(n)
            m.d.sync += age.eq(0)
        with m.Else():
            with m.If(dut.step.valid & dut.step.ready & (left != 0)):
                m.d.sync += left.eq(left - 1)
            with m.If(age != self.bound + 1):
                m.d.sync += age.eq(age + 1)
        m.d.comb += [Assert(dut.step.valid == (left != 0),
                            "step.valid exactly while the run's transfers remain"),
                     Assert((left == 0) | (age <= self.bound),
                            "the run ends within N * (stall + 1) + 1 cycles")]
        self.invariants(m, left=left, age=age, low=low)
        return m
