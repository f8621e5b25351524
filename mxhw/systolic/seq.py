"""The one GEMM sequencer: the step schedule of a systolic array's input, for either
dataflow, and the telemetry counters every GEMM engine keeps.

:class:`GemmSequencer` counts K steps (output-stationary) or weight-stationary passes,
blocks and tiles, and makes the array's control flags and the operand indices of each
input transfer. :class:`~mxhw.systolic.engine.GemmEngine` (operands streamed in) and the
SoC's GEMM unit (:mod:`mxhw.soc.gemm`: operands read from memories at the indices) are
both this sequencer in front of a :class:`~mxhw.systolic.array.SystolicArray`.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..lib.params import check_choice, check_int, check_pow2
from .array import DATAFLOWS

__all__ = ["GemmSequencer", "telemetry", "OS_FLAGS", "WS_FLAGS"]

#: the array input fields the sequencer makes, per dataflow
OS_FLAGS = ("last",)
WS_FLAGS = ("act", "w_valid", "block_first", "block_end", "tile_first", "last")


class GemmSequencer(wiring.Component):
    """Input schedule of ``tiles`` output tiles of one ``K`` on a systolic array.

    Output-stationary: per tile ``K`` transfers, one K step each, ``last`` on the tile's
    last. Weight-stationary (``depth``-row tiles, ``P = ceil(k / rows)`` passes per
    block): ``rows`` weight-only transfers load the first pass's weights, then every pass
    has ``max(depth, rows)`` slots (the run's final pass ``depth``): activation rows in the
    first ``depth`` (``act``), the next pass's weight rows in the first ``rows``
    (``w_valid``; none in the final pass), the tile's passes continuing into the next
    tile's (the schedule of :func:`mxhw.systolic.driver.ws_beats`).

    Parameters
    ----------
    dataflow : str
        ``"output_stationary"`` or ``"weight_stationary"``.
    rows : int
        The array's rows (weight-stationary: K elements per pass).
    k : int
        Block size (a power of two).
    max_k : int
        Largest K (a multiple of ``k``).
    depth : int or None
        Weight-stationary: activation rows per pass (the tile's height).
    tiles : int
        Tiles per run (default 1).

    Members
    -------
    start : In(1)
        Begin a run of ``K`` (sampled with ``start``; ``K = 0`` issues nothing).
    K : In(range(max_k + 1))
    step : Out(stream.Signature(:attr:`step_layout`))
        One payload per array transfer, valid while the run lasts; ``ready``: the
        transfer is taken (its operands read). Payload: the array's control fields
        (:data:`OS_FLAGS` / :data:`WS_FLAGS`), ``pad`` (weight-stationary: the weight row
        is padding past the block, to be zeroed) and the operand indices of a one-tile
        run: output-stationary ``k`` (the K step); weight-stationary ``a`` (A word: pass
        ``q``, row ``i`` at ``q * depth + i``), ``a_scale`` (block ``j``, row ``i`` at ``j *
        depth + i``), ``b`` (B row: real K rows only) and ``b_scale`` (B block). All are
        registers (no logic between them and a memory address).

    Latency: ``step`` is valid the cycle after ``start``; one transfer per cycle.
    """

    def __init__(self, dataflow, rows, k, max_k, depth=None, tiles=1):
        check_choice("dataflow", dataflow, DATAFLOWS)
        check_int("rows", rows, 1)
        check_pow2("k", k)
        check_int("max_k", max_k, k)
        if max_k % k:
            raise ValueError(f"max_k must be a multiple of the block size {k}, not {max_k}")
        check_int("tiles", tiles, 1)
        ws = dataflow == "weight_stationary"
        if ws:
            check_int("depth", depth, 1)
        self._ws, self._rows, self._k, self._max_k = ws, rows, k, max_k
        self._depth, self._tiles = depth, tiles
        pb = -(-k // rows)
        nb = max_k // k
        if ws:
            fields = {f: 1 for f in WS_FLAGS}
            fields.update(pad=1, a=range(max(2, nb * pb * depth + 1)),
                          a_scale=range(max(2, nb * depth + 1)), b=range(max_k + 1),
                          b_scale=range(nb + 1))
        else:
            fields = {"last": 1, "k": range(max(2, max_k))}
        self._layout = data.StructLayout(fields)
        super().__init__({
            "start": In(1), "K": In(range(max_k + 1)),
            "step": Out(stream.Signature(self._layout)),
        })

    step_layout = property(lambda self: self._layout)
    flags = property(lambda self: WS_FLAGS if self._ws else OS_FLAGS,
                     doc="The array input fields in the payload.")
    passes_per_block = property(lambda self: -(-self._k // self._rows))

    def elaborate(self, platform):
        m = Module()
        if self._ws:
            self._weight_stationary(m)
        else:
            self._output_stationary(m)
        return m

    def _output_stationary(self, m):
        T, p = self._tiles, self.step.payload
        kidx = Signal(range(max(2, self._max_k)))        # K step in the tile
        left = Signal(range(self._max_k + 1))           # K steps left in the tile
        running = Signal()
        tile = Signal(range(T))
        k_run = Signal.like(self.K)                     # K sampled with start
        take = self.step.valid & self.step.ready
        m.d.comb += [self.step.valid.eq(running), p.k.eq(kidx), p.last.eq(left == 1)]
        with m.If(take):
            m.d.sync += [kidx.eq(kidx + 1), left.eq(left - 1)]
            with m.If(left == 1):       # the tile's last step
                if T > 1:
                    m.d.sync += [kidx.eq(0), left.eq(k_run), tile.eq(tile + 1),
                                 running.eq(tile != T - 1)]
                else:
                    m.d.sync += running.eq(0)
        with m.If(self.start):
            m.d.sync += [kidx.eq(0), left.eq(self.K), running.eq(self.K != 0), tile.eq(0)]
            if T > 1:
                m.d.sync += k_run.eq(self.K)

    def _weight_stationary(self, m):
        R, D, k, T = self._rows, self._depth, self._k, self._tiles
        PB, NB, S = self.passes_per_block, self._max_k // k, max(self._depth, self._rows)
        p = self.step.payload
        running = Signal()                      # transfers of this run remain
        pre = Signal()                          # loading the first pass's weights
        n = Signal(range(S))                    # slot within the pass
        ja, pa = Signal(range(NB), name="ja"), Signal(range(PB), name="pa")  # activation pass
        jw, pw = Signal(range(NB + 1), name="jw"), Signal(range(PB), name="pw")  # the next
        nb_m1 = Signal(range(NB))               # blocks per tile - 1
        tile = Signal(range(T))
        ra = Signal(range(max(2, NB * PB * D + 1)))     # A codes word
        ras = Signal(range(max(2, NB * D + 1)))         # A scales word: ja * D + i
        rb = Signal(range(self._max_k + 1))             # B row: real K rows loaded

        last_pass, final = Signal(), Signal()   # the tile's last pass; the run's
        act, wv, pad, slot_end = Signal(), Signal(), Signal(), Signal()
        m.d.comb += last_pass.eq((ja == nb_m1) & (pa == PB - 1))
        m.d.comb += final.eq(last_pass & (tile == T - 1) if T > 1 else last_pass)
        with m.If(pre):
            m.d.comb += [act.eq(0), wv.eq(1), slot_end.eq(n == R - 1)]
        with m.Else():
            m.d.comb += [act.eq(n < D), wv.eq((n < R) & ~final),
                         slot_end.eq(Mux(final, n == D - 1, n == S - 1))]
        if k % R:
            # the block's last pass covers k - (PB-1)*R real K elements; the rest is padding
            m.d.comb += pad.eq((pw == PB - 1) & (n >= k - (PB - 1) * R))
        m.d.comb += [
            self.step.valid.eq(running),
            p.act.eq(act), p.w_valid.eq(wv), p.pad.eq(pad),
            p.a.eq(ra), p.a_scale.eq(ras), p.b.eq(rb), p.b_scale.eq(jw),
            p.block_first.eq(pa == 0), p.block_end.eq(pa == PB - 1),
            p.tile_first.eq(ja == 0), p.last.eq(last_pass),
        ]

        def advance(q, j, wrap=False):
            with m.If(q == PB - 1):
                if wrap:        # past the tile's last pass: the next tile's first
                    with m.If(j == nb_m1):
                        m.d.sync += [q.eq(0), j.eq(0), rb.eq(0)]
                    with m.Else():
                        m.d.sync += [q.eq(0), j.eq(j + 1)]
                else:
                    m.d.sync += [q.eq(0), j.eq(j + 1)]
            with m.Else():
                m.d.sync += q.eq(q + 1)

        with m.If(self.step.valid & self.step.ready):
            with m.If(act):
                m.d.sync += ra.eq(ra + 1)
                with m.If((n == D - 1) & (pa != PB - 1)):
                    m.d.sync += ras.eq(ras - (D - 1))    # the block's next pass: row 0 again
                with m.Else():
                    m.d.sync += ras.eq(ras + 1)
            with m.If(wv & ~pad):
                m.d.sync += rb.eq(rb + 1)
            with m.If(slot_end):
                m.d.sync += n.eq(0)
                with m.If(pre):
                    m.d.sync += pre.eq(0)
                    advance(pw, jw)
                with m.Elif(final):
                    m.d.sync += running.eq(0)
                with m.Else():
                    if T > 1:
                        with m.If(last_pass):
                            m.d.sync += [ja.eq(0), pa.eq(0), tile.eq(tile + 1), ra.eq(0),
                                         ras.eq(0)]
                        with m.Else():
                            advance(pa, ja)
                    else:
                        advance(pa, ja)
                    advance(pw, jw, wrap=T > 1)
            with m.Else():
                m.d.sync += n.eq(n + 1)

        kb_log = k.bit_length() - 1
        with m.If(self.start):
            m.d.sync += [running.eq(self.K != 0), pre.eq(1), n.eq(0), ja.eq(0), pa.eq(0),
                         jw.eq(0), pw.eq(0), ra.eq(0), ras.eq(0), rb.eq(0), tile.eq(0),
                         nb_m1.eq((self.K >> kb_log) - 1)]


def telemetry(m, active, valid, ready, *, cycles=None, busy=None, stalled=None, idle=None):
    """The GEMM engines' cycle counters, counted while ``active``: ``cycles`` every cycle,
    ``busy`` the array took a transfer (``valid & ready``), ``stalled`` it had one but
    could not take it, ``idle`` it had none. Each counter is a signal or None (not
    built)."""
    def inc(c):
        return [] if c is None else [c.eq(c + 1)]

    with m.If(active):
        m.d.sync += inc(cycles)
        with m.If(valid & ready):
            m.d.sync += inc(busy)
        with m.Elif(valid):
            m.d.sync += inc(stalled)
        with m.Else():
            m.d.sync += inc(idle)


