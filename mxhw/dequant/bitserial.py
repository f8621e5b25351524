"""Bit-serial dequantiser (BitMoD-style): group partial sums times integer group scales.

Golden twin: :func:`mxhw.golden.bitserial.dequant` (cycle-level: ``dequant_serial``).
"""

from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..lib.accum import accumulate, serial_advance
from ..lib.params import check_int

__all__ = ["BitSerialDequant"]


class BitSerialDequant(wiring.Component):
    """Rescales each group's partial sum by its unsigned integer group scale, one scale bit
    per cycle MSB first (``out = (out << 1) + (sum & scale_bit)``, i.e. ``out = sum *
    scale``), and accumulates the products of the groups of one output.

    Each input beat is one group: ``sum`` (signed), ``scale`` (unsigned) and ``last``
    (the output's last group). On a ``last`` beat the accumulated value
    ``sum_g sum_g * scale_g`` (wrapped to ``acc_width`` bits) is emitted and the
    accumulator cleared.

    Parameters
    ----------
    sum_width : int
        Width of a group's partial sum (signed).
    scale_width : int
        Width of the integer group scale (unsigned); also the cycles per group.
    acc_width : int
        Output accumulator width (two's complement, wraps); at least
        ``sum_width + scale_width`` (one exact product).

    Members
    -------
    i : In(stream.Signature(StructLayout{sum: signed(sum_width), scale:
        unsigned(scale_width), last: 1}))
    o : Out(stream.Signature(signed(acc_width)))

    Latency and throughput
    ----------------------
    ``scale_width`` cycles per group; a new group is accepted in the cycle the previous
    one's last scale bit is processed (one group per ``scale_width`` cycles, steady
    state). The output is valid ``scale_width`` cycles after the transfer of the ``last``
    group. Stalls only when a finished output is not yet taken.

    Golden twin: ``golden.bitserial.dequant`` (``dequant_serial`` cycle by cycle).
    """

    def __init__(self, sum_width, scale_width, acc_width):
        check_int("sum_width", sum_width, 2, 96)
        check_int("scale_width", scale_width, 1, 32)
        check_int("acc_width", acc_width, 2, 128)
        if acc_width < sum_width + scale_width:
            raise ValueError(f"acc_width must be >= sum_width + scale_width = "
                             f"{sum_width + scale_width}, not {acc_width}")
        self._sum_width, self._scale_width, self._acc_width = sum_width, scale_width, acc_width
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "sum": signed(sum_width), "scale": scale_width, "last": 1}))),
            "o": Out(stream.Signature(signed(acc_width))),
        })

    sum_width = property(lambda self: self._sum_width)
    scale_width = property(lambda self: self._scale_width)
    acc_width = property(lambda self: self._acc_width)

    def elaborate(self, platform):
        m = Module()
        S, C = self._sum_width, self._scale_width
        busy = Signal()
        k = Signal(range(C))
        last = Signal()
        sum_reg = Signal(signed(S))
        sreg = Signal(C)
        out = Signal(signed(S + C))
        acc = Signal(signed(self._acc_width))

        final = k == C - 1
        out_new = Signal(signed(S + C))
        m.d.comb += out_new.eq((out << 1) + Mux(sreg[C - 1], sum_reg, 0))

        with m.If(serial_advance(m, self.i, self.o, busy, final, last)):
            m.d.sync += [k.eq(k + 1), out.eq(out_new), sreg.eq(sreg << 1)]
            with m.If(final):
                m.d.sync += busy.eq(0)
                accumulate(m, acc, out_new, last, self.o)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [busy.eq(1), k.eq(0), out.eq(0), last.eq(self.i.payload.last),
                         sum_reg.eq(self.i.payload.sum), sreg.eq(self.i.payload.scale)]
        return m
