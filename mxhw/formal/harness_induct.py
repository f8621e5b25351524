"""Stream contracts proved unbounded: :class:`~mxhw.formal.harness.StreamContract` plus
invariants on the block's internal registers, so that SBY's k-induction (``mode prove``)
closes: the contract then holds in every reachable state, after any number of cycles, not
only for a bounded depth.

The invariants tie the block's state to the harness's reference (``got``: transfers out
so far, ``inside``: payloads held; the payloads are sequence numbers, so the payload the
block holds in each place is known): they are asserted too, so they are proved, not
assumed. The block is elaborated by the harness (:mod:`mxhw.formal.probe`) and its
registers are read by name; the component itself is unchanged.
"""

from __future__ import annotations

from amaranth.hdl import Assert, Mux

from .harness import StreamContract
from .probe import elaborate, find_signal, find_subfragment, memory_rows

__all__ = ["SkidInduction", "FifoInduction"]


class _Induction(StreamContract):
    def submodule(self):
        self.frag = elaborate(self.dut)
        return self.frag


class SkidInduction(_Induction):
    """:class:`~mxhw.mem.SkidBuffer`: ``inside == o.valid + skid_full``; a full skid
    register implies a valid output and holds the payload after it (``got + 1``)."""

    def __init__(self, dut, width=4):
        super().__init__(dut, width, 2)

    def invariants(self, m, got, inside):
        full = find_signal(self.frag, "skid_full")
        skid = find_signal(self.frag, "skid")
        o, w = self.dut.o, self.width
        m.d.comb += [Assert(inside == o.valid + full, "inv: inside == o.valid + skid_full"),
                     Assert(~full | o.valid, "inv: skid full -> o.valid"),
                     Assert(~full | (skid == (got + 1)[:w]), "inv: skid holds got + 1")]


class FifoInduction(_Induction):
    """:class:`~mxhw.mem.StreamFIFO` (``amaranth.lib.fifo.SyncFIFOBuffered``: an output
    register ``r_rdy``/``r_data`` after a ``depth - 1`` entry memory ring): the pointers
    agree with the level, ``inside == inner_level + r_rdy``, and the memory row ``i``
    places after ``consume`` holds ``got + r_rdy + i``."""

    def __init__(self, dut, width=4):
        super().__init__(dut, width, dut.depth)

    def invariants(self, m, got, inside):
        f = find_subfragment(self.frag, "fifo")
        w, d = self.width, self.dut.depth - 1
        if d == 0:
            level = find_signal(f, "level")
            m.d.comb += Assert(inside == level, "inv: inside == level")
            return
        produce, consume = find_signal(f, "produce"), find_signal(f, "consume")
        level, r_rdy = find_signal(f, "inner_level"), find_signal(f, "r_rdy")
        rows = memory_rows(find_subfragment(f, "storage"))
        end = consume + level
        m.d.comb += [Assert((produce < d) & (consume < d) & (level <= d),
                            "inv: pointers and level in range"),
                     Assert(Mux(end >= d, end - d, end) == produce,
                            "inv: produce == consume + level (mod depth - 1)"),
                     Assert(inside == level + r_rdy, "inv: inside == level + r_rdy")]
        for a, row in enumerate(rows):
            idx = Mux(consume <= a, a - consume, a + d - consume)
            with m.If(idx < level):
                m.d.comb += Assert(row == (got + r_rdy + idx)[:w],
                                   "inv: memory row holds its sequence number")
