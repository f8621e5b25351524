"""Stream FIFOs and skid buffers on amaranth.lib.stream."""

from __future__ import annotations

from amaranth.hdl import Module, Shape
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

__all__ = ["StreamFIFO", "SkidBuffer"]


class StreamFIFO(wiring.Component):
    """A synchronous FIFO between two streams (``amaranth.lib.fifo.SyncFIFOBuffered``).

    Parameters
    ----------
    shape : Shape-castable (payload)
    depth : int, >= 1

    Members
    -------
    i : In(stream.Signature(shape)), o : Out(stream.Signature(shape))

    Latency 1 cycle (registered output) -- a payload taken on ``i`` is valid on ``o`` the
    next cycle at the earliest; throughput one transfer per cycle on each side; holds up
    to ``depth`` payloads.
    """

    def __init__(self, shape, depth):
        try:
            Shape.cast(shape)
        except TypeError:
            raise TypeError(f"shape must be shape-castable, not {shape!r}") from None
        if not isinstance(depth, int) or isinstance(depth, bool):
            raise TypeError(f"depth must be an integer, not {depth!r}")
        if depth < 1:
            raise ValueError(f"depth must be >= 1, not {depth!r}")
        self._shape, self._depth = shape, depth
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})

    depth = property(lambda self: self._depth)

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=Shape.cast(self._shape).width,
                                                    depth=self._depth)
        # payload shapes may be layouts; the FIFO's streams carry plain bits
        m.d.comb += [
            fifo.w_stream.payload.eq(self.i.payload), fifo.w_stream.valid.eq(self.i.valid),
            self.i.ready.eq(fifo.w_stream.ready),
            self.o.payload.eq(fifo.r_stream.payload), self.o.valid.eq(fifo.r_stream.valid),
            fifo.r_stream.ready.eq(self.o.ready),
        ]
        return m


class SkidBuffer(wiring.Component):
    """Two-entry skid buffer: registers ``ready`` and the payload, full throughput.

    Members
    -------
    i : In(stream.Signature(shape)), o : Out(stream.Signature(shape))

    Latency 1 cycle; throughput one transfer per cycle; ``i.ready`` is a register (it
    does not depend combinationally on ``o.ready``).
    """

    def __init__(self, shape):
        try:
            Shape.cast(shape)
        except TypeError:
            raise TypeError(f"shape must be shape-castable, not {shape!r}") from None
        self._shape = shape
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})

    def elaborate(self, platform):
        from amaranth.hdl import Signal
        m = Module()
        skid = Signal(self._shape)
        skid_full = Signal()
        m.d.comb += self.i.ready.eq(~skid_full)
        with m.If(self.o.ready | ~self.o.valid):
            # output register free this cycle: refill it from the skid, else from the input
            with m.If(skid_full):
                m.d.sync += [self.o.payload.eq(skid), self.o.valid.eq(1), skid_full.eq(0)]
            with m.Else():
                m.d.sync += [self.o.payload.eq(self.i.payload), self.o.valid.eq(self.i.valid)]
        with m.Elif(self.i.valid & ~skid_full):
            m.d.sync += [skid.eq(self.i.payload), skid_full.eq(1)]
        return m
