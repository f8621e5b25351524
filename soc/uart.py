"""8N1 UART receiver and transmitter on ``lib.stream`` byte interfaces.

The bit period is ``divisor`` clock cycles (``divisor = f_clk / baud``, rounded; the
achieved baud rate is ``f_clk / divisor``). The receiver double-registers its input,
finds the start bit's falling edge, samples every bit in the middle of its period and
drops a byte whose stop bit is low (a framing error, counted on ``frame_errors``).
"""

from amaranth import Module, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..lib.params import check_int

__all__ = ["UARTRx", "UARTTx", "divisor_for"]


def divisor_for(clk_hz, baud, tolerance=0.02):
    """Clock cycles per bit for ``baud`` at ``clk_hz``; ValueError if the rounding error
    exceeds ``tolerance`` (a UART frame tolerates a few percent)."""
    if baud <= 0 or clk_hz <= 0:
        raise ValueError(f"clock and baud rate must be positive, not {clk_hz!r} and {baud!r}")
    div = round(clk_hz / baud)
    if div < 4:
        raise ValueError(f"baud rate {baud} is too fast for a {clk_hz / 1e6:g} MHz clock "
                         f"(needs at least 4 cycles per bit, got {clk_hz / baud:.2f})")
    err = abs(clk_hz / div - baud) / baud
    if err > tolerance:
        raise ValueError(f"baud rate {baud} at {clk_hz / 1e6:g} MHz has a {err:.1%} error "
                         f"(divisor {div}); allowed {tolerance:.0%}")
    return div


class _UART(wiring.Component):
    """Shared by receiver and transmitter: the validated, read-only ``divisor``."""

    def __init__(self, divisor, signature):
        check_int("divisor", divisor)
        if divisor < 4:
            raise ValueError(f"divisor must be at least 4 clock cycles per bit, not {divisor}")
        self._divisor = divisor
        super().__init__(signature)

    @property
    def divisor(self):
        return self._divisor


class UARTRx(_UART):
    """UART receiver, 8 data bits, no parity, 1 stop bit; ``divisor`` clock cycles per bit
    (>= 4).

    Members
    -------
    rx : In(1)
        The serial line (idle high).
    o : Out(stream.Signature(8))
        Received bytes. There is no buffering beyond one byte: a byte not taken before the
        next one completes is dropped and counted on ``overruns``.
    frame_errors, overruns : Out(16)
        Saturating counters.
    """

    def __init__(self, divisor):
        super().__init__(divisor, {
            "rx": In(1, init=1),
            "o": Out(stream.Signature(8)),
            "frame_errors": Out(16),
            "overruns": Out(16),
        })

    def elaborate(self, platform):
        m = Module()
        div = self._divisor
        sync1 = Signal(init=1)
        line = Signal(init=1)
        m.d.sync += [sync1.eq(self.rx), line.eq(sync1)]

        timer = Signal(range(div * 3 // 2 + 1))
        bit = Signal(range(10))
        shreg = Signal(8)

        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(~line):
                    # wait half a bit, then confirm the start bit in its middle
                    m.d.sync += timer.eq(div // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(line):
                    m.next = "IDLE"  # a glitch, not a start bit
                with m.Else():
                    m.d.sync += [timer.eq(div - 1), bit.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.d.sync += [shreg.eq((line << 7) | (shreg >> 1)), timer.eq(div - 1),
                                 bit.eq(bit + 1)]
                    with m.If(bit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    with m.If(line):
                        with m.If(self.o.valid & ~self.o.ready):
                            with m.If(self.overruns != 0xFFFF):
                                m.d.sync += self.overruns.eq(self.overruns + 1)
                        with m.Else():
                            m.d.sync += [self.o.payload.eq(shreg), self.o.valid.eq(1)]
                        m.next = "IDLE"
                    with m.Else():
                        with m.If(self.frame_errors != 0xFFFF):
                            m.d.sync += self.frame_errors.eq(self.frame_errors + 1)
                        m.next = "BREAK"
            with m.State("BREAK"):
                with m.If(line):  # wait for the line to idle again
                    m.next = "IDLE"
        return m


class UARTTx(_UART):
    """UART transmitter, 8N1; ``divisor`` clock cycles per bit (>= 4).

    Members
    -------
    i : In(stream.Signature(8))
        Bytes to send; one is taken when the previous stop bit ends.
    tx : Out(1)
        The serial line (idle high).
    """

    def __init__(self, divisor):
        super().__init__(divisor, {
            "i": In(stream.Signature(8)),
            "tx": Out(1, init=1),
        })

    def elaborate(self, platform):
        m = Module()
        div = self._divisor
        # the bit timer counts down to -1: cycles left in the bit, minus 1; it runs while
        # its sign bit is clear (one flip-flop, not a compare, in the enables below)
        timer = Signal(signed(div.bit_length() + 1), init=-1)
        bits = Signal(10)
        count = Signal(range(11))
        more = Signal()               # count != 0, a flag register
        # idle, and the last stop bit (if any) has lasted its full period: a register, set
        # as the stop bit's timer runs out, so ``i.ready`` comes from a flip-flop
        idle = Signal(init=1)
        m.d.comb += self.i.ready.eq(idle)
        with m.If(idle):
            with m.If(self.i.valid):
                m.d.sync += [bits.eq((1 << 9) | (self.i.payload << 1)), count.eq(10),
                             more.eq(1), idle.eq(0)]
        with m.Elif(~timer[-1]):
            m.d.sync += timer.eq(timer - 1)
            with m.If((timer == 0) & ~more):
                m.d.sync += idle.eq(1)
        with m.Elif(more):
            m.d.sync += [self.tx.eq(bits[0]), bits.eq(bits >> 1), timer.eq(div - 2),
                         count.eq(count - 1), more.eq(count != 1)]
        return m
