"""GEMM engine: operand FIFO + systolic array (either dataflow) + the GEMM sequencer
(:mod:`mxhw.systolic.seq`: tiling and telemetry)."""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..mem.fifo import StreamFIFO
from ..lib.params import check_int
from .array import DEFAULT_PIPELINE, SystolicArray
from .seq import GemmSequencer, telemetry

__all__ = ["GemmEngine"]


class GemmEngine(wiring.Component):
    """``C = A @ B`` for fixed ``M x K`` by ``K x N`` on a ``rows x cols`` array.

    The output is tiled in ``rows x cols`` tiles, row-major over (M, N) (see
    :func:`mxhw.systolic.driver.tile_order`); for each tile the host streams K transfers on
    ``i``, one K step each (the A tile's column with its scales, the B tile's row with its
    scales: :func:`mxhw.systolic.driver.array_beats` without ``last``). The controller
    counts K steps and tiles and marks each tile's last step itself. An operand FIFO
    (``fifo_depth`` transfers, default ``2*K``: a whole next tile) buffers the next tile
    while the array computes the current one, and the array's two result stages
    (PE result registers + output buffer) let a tile drain while the next computes, so the
    array takes one K step per cycle as long as operands arrive and results leave
    (bit-serial PEs, ``pe="bitserial"``: one K step per ``array.step_cycles`` cycles;
    the controller only follows the array's handshake). The controller is
    :class:`~mxhw.systolic.seq.GemmSequencer` (``tiles`` = :attr:`n_tiles`), the one
    that also sequences the SoC's GEMM unit.

    Weight-stationary (``dataflow="weight_stationary"``): tiles are ``depth x cols``
    (:attr:`tile_rows` = ``depth``, ``>= rows``) in the same order; the host streams
    :func:`mxhw.systolic.driver.ws_engine_beats`: ``rows`` transfers carrying the first
    pass's weight rows, then per pass ``depth`` transfers, each an activation row, the
    first ``rows`` of them also carrying the next pass's weight rows (``w``, ``w_scale``;
    ignored in the others). The controller counts passes and blocks and makes the
    array's ``act``/``w_valid``/pass flags itself. The FIFO defaults to ``2*depth``.

    Results leave on ``o`` as rows of ``cols`` values (:attr:`tile_rows` transfers per
    tile, rows beyond M included: the host drops them, columns beyond N likewise), with
    ``last`` on the final row of the final tile.

    Parameters
    ----------
    rows, cols : int
    fmt_a, fmt_b, acc, pe, dataflow, pipeline, depth :
        As :class:`SystolicArray`.
    M, N, K : int
        Problem size; K must be a multiple of the block size.
    fifo_depth : int or None

    Members
    -------
    i : In(stream.Signature(array.in_layout without "last"; weight-stationary: only
        "a", "a_scale", "w", "w_scale", and "a_mode" / "w_mode" for MXSF operands))
    o : Out(stream.Signature({"row": array.out_layout, "last": 1}))
    busy, stalled, idle : Out(32)
        Cycle counters since reset, until the last result row has left: ``busy`` the array
        took a transfer (a K step; weight-stationary: an activation row or a weight-only
        transfer); ``stalled`` it had an operand but could not take it (results not
        drained, or a bit-serial array still busy with the previous step's bits);
        ``idle`` no operand was available. ``done`` : Out(1) all results left.

    Latency: as :class:`SystolicArray` plus the FIFO (2 cycles). Golden twin:
    :func:`mxhw.golden.arith.gemm` with ``acc``.

    Raises
    ------
    TypeError, ValueError
        As :class:`SystolicArray`; M, N, K not positive integers; K not a multiple of the
        block size; weight-stationary ``depth < rows``.
    """

    def __init__(self, rows, cols, fmt_a, fmt_b, M, N, K, acc=None, pe=None,
                 dataflow="output_stationary", fifo_depth=None, pipeline=DEFAULT_PIPELINE,
                 depth=None):
        for name, v in (("M", M), ("N", N), ("K", K)):
            check_int(name, v, 1)
        self._array = SystolicArray(rows, cols, fmt_a, fmt_b, dataflow=dataflow, acc=acc, pe=pe,
                                    pipeline=pipeline, depth=depth)
        k = self._array.k
        if K % k:
            raise ValueError(f"K must be a multiple of the block size {k}, not {K}")
        ws = dataflow == "weight_stationary"
        if ws and self._array.depth < rows:
            raise ValueError(f"depth must be >= rows ({rows}) for the weight-stationary "
                             f"engine (the next pass's weights load during the current "
                             f"pass), not {self._array.depth}")
        if fifo_depth is None:
            fifo_depth = 2 * self._array.depth if ws else 2 * K
        check_int("fifo_depth", fifo_depth, 1)
        self._M, self._N, self._K, self._depth = M, N, K, fifo_depth
        fields = dict(self._array.in_layout.members)
        for f in (("act", "w_valid", "block_first", "block_end", "tile_first", "last")
                  if ws else ("last",)):
            del fields[f]
        self._in_layout = data.StructLayout(fields)
        self._out_layout = data.StructLayout({"row": self._array.out_layout, "last": 1})
        super().__init__({
            "i": In(stream.Signature(self._in_layout)),
            "o": Out(stream.Signature(self._out_layout)),
            "busy": Out(32), "stalled": Out(32), "idle": Out(32), "done": Out(1),
        })

    array = property(lambda self: self._array)
    rows = property(lambda self: self._array.rows)
    cols = property(lambda self: self._array.cols)

    @property
    def tile_rows(self):
        """Output rows per tile: ``rows`` (output-stationary) or ``depth``."""
        return self._array.depth or self._array.rows

    @property
    def n_tiles(self):
        R, C = self.tile_rows, self._array.cols
        return (-(-self._M // R)) * (-(-self._N // C))

    def elaborate(self, platform):
        m = Module()
        arr = self._array
        m.submodules.array = arr
        m.submodules.fifo = fifo = StreamFIFO(self._in_layout, self._depth)
        wiring.connect(m, wiring.flipped(self.i), fifo.i)
        T, R = self.n_tiles, self.tile_rows
        m.submodules.seq = seq = GemmSequencer(arr.dataflow, arr.rows, arr.k, self._K,
                                               depth=arr.depth, tiles=T)
        # the run starts out of reset; the FIFO's operands meet the sequencer's flags
        started = Signal()
        m.d.sync += started.eq(1)
        m.d.comb += [
            seq.start.eq(~started), seq.K.eq(self._K),
            arr.i.valid.eq(fifo.o.valid & seq.step.valid),
            fifo.o.ready.eq(arr.i.ready & seq.step.valid),
            seq.step.ready.eq(arr.i.ready & fifo.o.valid),
        ]
        for name in self._in_layout.members:
            m.d.comb += getattr(arr.i.payload, name).eq(getattr(fifo.o.payload, name))
        for name in seq.flags:
            m.d.comb += getattr(arr.i.payload, name).eq(getattr(seq.step.payload, name))

        # results: count rows to mark the final one
        out_rows = Signal(range(T * R + 1))
        m.d.comb += [
            self.o.valid.eq(arr.o.valid),
            self.o.payload.row.eq(arr.o.payload),
            self.o.payload.last.eq(out_rows == T * R - 1),
            arr.o.ready.eq(self.o.ready),
            self.done.eq(out_rows == T * R),
        ]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += out_rows.eq(out_rows + 1)
        telemetry(m, ~self.done, arr.i.valid, arr.i.ready, busy=self.busy,
                  stalled=self.stalled, idle=self.idle)
        return m
