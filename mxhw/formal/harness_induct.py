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
from .harness_seq import SequencerLiveness
from .probe import elaborate, find_signal, find_subfragment, memory_rows

__all__ = ["Probed", "SkidInduction", "FifoInduction", "SeqInduction"]


class Probed:
    """Mixin: the harness adds the block's elaborated fragment (``self.frag``) in its
    place, to read its registers."""

    def submodule(self):
        self.frag = elaborate(self.dut)
        return self.frag


class _Induction(Probed, StreamContract):
    pass


class SkidInduction(_Induction):
    """:class:`~mxhw.mem.SkidBuffer`: ``inside == o.valid + skid_full``; a full skid
    register implies a valid output and holds the payload after it (``got + 1``)."""

    def __init__(self, dut, width=4):
        super().__init__(dut, width, 2)

    def invariants(self, m, *, got, inside):
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

    def invariants(self, m, *, got, inside):
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


class SeqInduction(Probed, SequencerLiveness):
    """:class:`~mxhw.formal.harness_seq.SequencerLiveness` unbounded: the harness's
    transfers left (``left``, from the documented schedule) equal the count implied by
    the sequencer's registers (output-stationary: ``left + (tiles - 1 - tile) * k_run``;
    weight-stationary: the weight-only slots left, then the passes left at
    ``max(depth, rows)`` slots, the final one ``depth``), and the time since the start is
    within ``(N_max - left) * (stall + 1) + low`` (``low``: the current stall), so the
    bound holds at every reachable cycle, not only in the first ``bmc_depth``."""

    def invariants(self, m, *, left, age, low):
        dataflow, rows, k, max_k, depth, tiles = self.args
        f, S = self.frag, self.stall + 1
        nmax = max(self.counts.values())
        running = find_signal(f, "running")
        with m.If(left != 0):
            m.d.comb += Assert(age + left * S <= nmax * S + low,
                               "inv: time since start within the transfers made")
        if dataflow == "output_stationary":
            remaining, ok = self._os(f, k, max_k, tiles)
        else:
            remaining, ok = self._ws(f, rows, k, max_k, depth, tiles)
        m.d.comb += Assert(Mux(running, remaining, 0) == left,
                           "inv: the sequencer's registers count the transfers left")
        with m.If(running):
            m.d.comb += Assert(ok, "inv: the sequencer's registers in range")

    @staticmethod
    def _os(f, k, max_k, tiles):
        d_left = find_signal(f, "left")
        if tiles == 1:
            return d_left, d_left != 0
        tile, k_run = find_signal(f, "tile"), find_signal(f, "k_run")
        ok = ((d_left != 0) & (d_left <= k_run) & (tile < tiles) & (k_run != 0)
              & (k_run <= max_k) & ((k_run % k) == 0))
        return d_left + (tiles - 1 - tile) * k_run, ok

    @staticmethod
    def _ws(f, rows, k, max_k, depth, tiles):
        R, D, PB, NB = rows, depth, -(-k // rows), max_k // k
        S = max(D, R)
        pre, n = find_signal(f, "pre"), find_signal(f, "n")
        ja, pa, nb_m1 = find_signal(f, "ja"), find_signal(f, "pa"), find_signal(f, "nb_m1")
        tile = find_signal(f, "tile") if tiles > 1 else 0
        nb = nb_m1 + 1
        total = tiles * nb * PB                       # passes in the run
        g = (tile * nb + ja) * PB + pa                 # the current activation pass
        final = g == total - 1
        remaining = Mux(pre, (R - n) + (total - 1) * S + D,
                        Mux(final, D - n, (S - n) + (total - 2 - g) * S + D))
        ok = ((nb_m1 < NB) & (ja <= nb_m1) & (pa < PB) & (tile < tiles)
              & Mux(pre, (n < R) & (ja == 0) & (pa == 0) & (tile == 0),
                    Mux(final, n < D, n < S)))
        return remaining, ok
