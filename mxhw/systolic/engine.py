"""GEMM engine: operand FIFO + systolic array (either dataflow) + tiling controller +
telemetry."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..mem.fifo import StreamFIFO
from .array import DEFAULT_PIPELINE, SystolicArray, _check_pos_int
from .pe import block_format

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
    the controller only follows the array's handshake).

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
            _check_pos_int(name, v)
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
        _check_pos_int("fifo_depth", fifo_depth)
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

        K, T, R = self._K, self.n_tiles, self.tile_rows
        m.d.comb += [
            arr.i.valid.eq(fifo.o.valid),
            fifo.o.ready.eq(arr.i.ready),
        ]
        take = arr.i.valid & arr.i.ready
        for name in self._in_layout.members:
            m.d.comb += getattr(arr.i.payload, name).eq(getattr(fifo.o.payload, name))
        if arr.dataflow == "weight_stationary":
            self._ws_control(m, arr, take)
        else:
            kstep = Signal(range(K))
            m.d.comb += arr.i.payload.last.eq(kstep == K - 1)
            with m.If(take):
                m.d.sync += kstep.eq(0 if K == 1 else kstep + 1)
                with m.If(kstep == K - 1):
                    m.d.sync += kstep.eq(0)

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

        # telemetry
        with m.If(~self.done):
            with m.If(arr.i.valid & arr.i.ready):
                m.d.sync += self.busy.eq(self.busy + 1)
            with m.Elif(arr.i.valid):
                m.d.sync += self.stalled.eq(self.stalled + 1)
            with m.Else():
                m.d.sync += self.idle.eq(self.idle + 1)
        return m

    def _ws_control(self, m, arr, take):
        """Pass flags of the fixed weight-stationary schedule (:func:`ws_engine_beats`):
        ``rows`` weight-only transfers, then passes of ``depth`` activation transfers whose
        first ``rows`` carry the next pass's weights."""
        R, D, k = arr.rows, arr.depth, arr.k
        per_block, nb = -(-k // R), self._K // k
        pre = Signal(range(R + 1))
        t, p, j = Signal(range(D)), Signal(range(per_block)), Signal(range(nb))
        act = Signal()
        m.d.comb += [
            act.eq(pre == R),
            arr.i.payload.act.eq(act),
            arr.i.payload.w_valid.eq(~act | (t < R)),
            arr.i.payload.block_first.eq(p == 0),
            arr.i.payload.block_end.eq(p == per_block - 1),
            arr.i.payload.tile_first.eq(j == 0),
            arr.i.payload.last.eq((j == nb - 1) & (p == per_block - 1)),
        ]
        with m.If(take):
            with m.If(~act):
                m.d.sync += pre.eq(pre + 1)
            with m.Elif(t != D - 1):
                m.d.sync += t.eq(t + 1)
            with m.Else():
                m.d.sync += t.eq(0)
                with m.If(p != per_block - 1):
                    m.d.sync += p.eq(p + 1)
                with m.Else():
                    m.d.sync += [p.eq(0), j.eq(Mux(j == nb - 1, 0, j + 1))]
