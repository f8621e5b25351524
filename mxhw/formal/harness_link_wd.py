"""The host link's recovery from garbage: for **every** byte stream of up to ``garbage``
bytes (each byte's value and arrival time free: fully symbolic), once the line has been
quiet for ``bound`` cycles the link is back in IDLE, in step (no out-of-step drain), with
its receive buffer empty and nothing being sent -- whatever the bytes were (half a header,
a bad length, a packet whose CRC happens to match, noise).

``tx.ready`` is low at most ``stall`` cycles in a row, the bus read data is free. The link
is ``HostLink(16, timeout_cycles=16, quiet_cycles=16)``, reset for two cycles. Its state
is read through :mod:`mxhw.formal.probe` (``state``, ``oos``, ``w_ptr``, ``r_ptr``); the
link is unchanged. Bounded (BMC): the garbage may arrive anywhere in the first
``depth - bound`` cycles.
"""

from __future__ import annotations

from amaranth.hdl import Assert, Assume, ClockDomain, Module, Mux, Signal

from .base import Harness
from .harness_induct import Probed
from .probe import find_signal

__all__ = ["LinkRecovery", "recovery_bound"]


def recovery_bound(max_payload=16, timeout=16, quiet=16, stall=1):
    """Quiet cycles after which the link must be idle: a stalled packet's watchdog (or a
    drain's quiet time), then the longest response (7 bytes and a full READ payload) at
    ``stall`` cycles before each byte, and 24 cycles of execution and margin."""
    return max(timeout, quiet) + (7 + max_payload) * (stall + 1) + 24


class LinkRecovery(Probed, Harness):
    RESET = 2

    def __init__(self, garbage=8, stall=1, dut=None):
        from ..soc.link import HostLink
        super().__init__()
        self.cd = ClockDomain("sync")
        self.garbage, self.stall = garbage, stall
        self.dut = dut or HostLink(max_payload=16, timeout_cycles=16, quiet_cycles=16)
        self.bound = recovery_bound(16, 16, 16, stall)
        self.rx_valid, self.rx_byte = Signal(), Signal(8)
        self.tx_ready, self.r_data = Signal(), Signal(32)

    def inputs(self):
        return [self.rx_valid, self.rx_byte, self.tx_ready, self.r_data]

    def depth(self):
        """A BMC depth with room for the garbage and the bound after it."""
        return self.RESET + self.garbage + self.bound + 2

    def elaborate(self, platform):
        from ..soc.linkcore import LinkState
        m = Module()
        m.domains.sync = self.cd
        m.submodules.dut = self.submodule()
        dut = self.dut
        age = Signal(range(self.RESET + 1), reset_less=True)
        with m.If(age != self.RESET):
            m.d.sync += age.eq(age + 1)
        m.d.comb += self.cd.rst.eq(age != self.RESET)
        run = age == self.RESET

        sent = Signal(range(self.garbage + 1), reset_less=True)
        send = Signal()
        m.d.comb += [send.eq(self.rx_valid & (sent != self.garbage) & run),
                     dut.rx.valid.eq(send), dut.rx.payload.eq(self.rx_byte)]
        with m.If(send & dut.rx.ready):
            m.d.sync += sent.eq(sent + 1)
        low = Signal(range(self.stall + 2), reset_less=True)
        m.d.sync += low.eq(Mux(self.tx_ready, 0, low + 1))
        m.d.comb += [Assume(low <= self.stall), dut.tx.ready.eq(self.tx_ready),
                     dut.bus.r_data.eq(self.r_data)]

        quiet = Signal(range(self.bound + 2), reset_less=True)
        with m.If(send | ~run):
            m.d.sync += quiet.eq(0)
        with m.Elif(quiet != self.bound + 1):
            m.d.sync += quiet.eq(quiet + 1)
        f = self.frag
        state, oos = find_signal(f, "state"), find_signal(f, "oos")
        w_ptr, r_ptr = find_signal(f, "w_ptr"), find_signal(f, "r_ptr")
        with m.If(quiet == self.bound):
            m.d.comb += [Assert(state == LinkState.IDLE.value, "back in IDLE"),
                         Assert(~oos, "in step (no drain pending)"),
                         Assert(w_ptr == r_ptr, "receive buffer empty"),
                         Assert(~dut.tx.valid, "nothing being sent")]
        return m
