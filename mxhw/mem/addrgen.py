"""Tile address generators."""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["TileAddressGenerator"]


class TileAddressGenerator(wiring.Component):
    """Addresses of a ``rows x cols`` tile in a row-major ``height x width`` matrix stored
    from word 0, tile by tile: on ``start`` (with the tile's origin ``row0``, ``col0``), it
    emits ``base + (row0 + r) * width + col0 + c`` for r, c in row-major order on ``o``,
    with ``last`` on the final address. Rows/columns beyond the matrix are skipped.

    Parameters
    ----------
    height, width, rows, cols : int, >= 1

    Members
    -------
    start : In(1), row0 : In(range(height)), col0 : In(range(width)), busy : Out(1)
    o : Out(stream.Signature({"addr": range(height * width), "last": 1}))

    Throughput one address per cycle; latency 1 cycle from ``start``.
    Golden twin: the Python loop in the docstring.
    """

    def __init__(self, height, width, rows, cols):
        for name, v in (("height", height), ("width", width), ("rows", rows), ("cols", cols)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive integer, not {v!r}")
        self._p = (height, width, rows, cols)
        from amaranth.lib import data
        self._layout = data.StructLayout({"addr": range(height * width), "last": 1})
        super().__init__({
            "start": In(1), "row0": In(range(height)), "col0": In(range(width)),
            "busy": Out(1), "o": Out(stream.Signature(self._layout)),
        })

    def elaborate(self, platform):
        height, width, rows, cols = self._p
        m = Module()
        r0 = Signal(range(height)); c0 = Signal(range(width))
        r = Signal(range(rows)); c = Signal(range(cols))
        nr = Signal(range(rows + 1)); nc = Signal(range(cols + 1))
        m.d.comb += [self.busy.eq(self.o.valid),
                     self.o.payload.addr.eq((r0 + r) * width + c0 + c),
                     self.o.payload.last.eq((r == nr - 1) & (c == nc - 1))]
        with m.If(~self.o.valid & self.start):
            m.d.sync += [r0.eq(self.row0), c0.eq(self.col0), r.eq(0), c.eq(0),
                         self.o.valid.eq(1)]
            m.d.sync += [nr.eq(Mux_min(self.row0, height, rows)),
                         nc.eq(Mux_min(self.col0, width, cols))]
        with m.If(self.o.valid & self.o.ready):
            with m.If(c == nc - 1):
                m.d.sync += c.eq(0)
                with m.If(r == nr - 1):
                    m.d.sync += self.o.valid.eq(0)
                with m.Else():
                    m.d.sync += r.eq(r + 1)
            with m.Else():
                m.d.sync += c.eq(c + 1)
        return m


def Mux_min(origin, size, n):
    """``min(n, size - origin)`` as a value."""
    from amaranth.hdl import Mux
    rem = size - origin
    return Mux(rem < n, rem, n)
