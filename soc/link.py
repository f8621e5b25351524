"""The host link: the packet protocol of ``soc/PROTOCOL.md`` in gateware.

Golden twin: :mod:`mxhw.soc.protocol` (the host side builds and checks the same packets).
The link is one state machine whose jobs live in their own modules: the receiver
(:mod:`.linkrx`: receive register, watchdog, header, payload and CRC states), the
executor (:mod:`.linkexec`: payload buffer, READ prefetch, EXEC and COMMIT states) and the
responder (:mod:`.linktx`); :mod:`.linkcore` holds what they share, :mod:`.crc16` the CRC.
"""

from amaranth import Module, Mux, ResetSignal, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..lib.params import check_int, check_pow2
from .bus import BusSignature
from .crc16 import crc16_step
from .linkcore import LinkCore, LinkState
from .linkexec import execute_states, payload_buffer, read_prefetch
from .linkrx import receive_stage, request_states, watchdog
from .linktx import response_states

__all__ = ["HostLink", "LinkState", "crc16_step", "default_rx_depth"]


def default_rx_depth(max_payload):
    """The receive buffer a :class:`HostLink` gets by default: the smallest power of two
    that holds a whole request (header, ``max_payload`` bytes, CRC) and more."""
    return 1 << (max_payload + 15).bit_length()


class HostLink(wiring.Component):
    """Packet link between a byte stream and a word bus.

    Parameters
    ----------
    max_payload : int
        Largest READ/WRITE length in bytes (a multiple of 4). WRITE payloads are buffered
        in a memory of ``max_payload // 4`` words before any is written to the bus.
    timeout_cycles : int
        Watchdog: a packet that stops arriving for this long in its middle is dropped and
        answered with TIMEOUT.
    quiet_cycles : int
        After a bad header, input is discarded until the line is quiet this long.
    read_latency : int
        Cycles from a bus read request to its ``r_data`` (>= 1).
    rx_depth : int or None
        Bytes of the receive buffer (a power of two in [16, 2**17]); ``None``: the
        smallest power of two that holds the largest request (``max_payload + 11``) and
        5 more bytes. Requests that arrive while the link executes or answers another wait
        there; a host that keeps the bytes of its unanswered requests within it never has
        one lost.

    Members
    -------
    rx : In(stream.Signature(8))
        Request bytes (``ready`` is low only while the receive buffer is full).
    tx : Out(stream.Signature(8))
        Response bytes.
    bus : Out(BusSignature())
        Word bus master.
    errors : Out(16)
        Count of error responses (saturating).

    Throughput: one request byte per cycle (each passes the receive buffer, a block RAM,
    and a receive register with its compares before the state machine sees it); a WRITE commits one word per cycle, after
    its CRC checks and two cycles of buffer read latency; a READ sends one byte per cycle
    the transmitter takes it.

    Reset: synthesis makes the state machine one-hot and drops its initial value, so the
    domain must see a reset before the first byte (the board clock modules and Amaranth's
    platform domains do: reset asserted for at least two clock edges at start-up). The
    state register takes that reset one cycle late, from a local copy of it.

    Structure and timing design: ``docs/link.md``.
    """

    def __init__(self, max_payload=1024, timeout_cycles=1_000_000, quiet_cycles=10_000,
                 read_latency=1, rx_depth=None):
        check_int("max_payload", max_payload)
        if max_payload < 4 or max_payload % 4 or max_payload > 65532:
            raise ValueError(f"max_payload must be a multiple of 4 in [4, 65532], "
                             f"not {max_payload}")
        check_int("timeout_cycles", timeout_cycles)
        check_int("quiet_cycles", quiet_cycles)
        check_int("read_latency", read_latency, 1, 16)
        if timeout_cycles < 16:
            raise ValueError(f"timeout_cycles must be at least 16, not {timeout_cycles}")
        if quiet_cycles < 16:
            raise ValueError(f"quiet_cycles must be at least 16, not {quiet_cycles}")
        if rx_depth is None:
            rx_depth = default_rx_depth(max_payload)
        check_pow2("rx_depth", rx_depth)
        check_int("rx_depth", rx_depth, 16, 1 << 17)
        self._rx_depth = rx_depth
        self._read_latency = read_latency
        self._max_payload = max_payload
        self._timeout = timeout_cycles
        self._quiet = quiet_cycles
        super().__init__({
            "rx": In(stream.Signature(8)),
            "tx": Out(stream.Signature(8)),
            "bus": Out(BusSignature()),
            "errors": Out(16),
        })

    @property
    def max_payload(self):
        return self._max_payload

    @property
    def rx_depth(self):
        return self._rx_depth

    def elaborate(self, platform):
        m = Module()
        c = LinkCore(m, self, self._max_payload, self._timeout, self._quiet,
                     self._read_latency, self._rx_depth)
        payload_buffer(c)
        receive_stage(c)
        watchdog(c)
        self._crc(c)
        # the state's reset: a local copy of the domain reset, one cycle late (see below)
        rst_l = Signal(reset_less=True)
        m.d.sync += rst_l.eq(ResetSignal())
        read_prefetch(c)
        with m.Switch(c.state):
            request_states(c)
            execute_states(c)
            response_states(c)
        # The state register has no reset of its own. A one-hot state machine takes its
        # reset through its next-state logic, not the flip-flops' set/reset input, so the
        # domain reset's net (every flip-flop's LSR, across the die) would otherwise feed
        # these LUTs; now one flip-flop of it does, placed beside them.
        with m.If(rst_l):
            m.d.sync += c.state.eq(LinkState.IDLE)
        return m

    @staticmethod
    def _crc(c):
        """The CRC register: it takes its byte and enable one cycle late, from registers;
        every reader of ``crc`` (EXEC's check, TX_CRC0/1) runs at least two cycles after
        the last ``crc_add``, and the resets to 0xFFFF (IDLE, RESPOND) follow no
        ``crc_add``. The byte is the received one in HDR and PAYLOAD, the sent one
        (``tx.payload``) otherwise."""
        m = c.m
        crc_from_rx = Signal()        # HDR or PAYLOAD
        crc_byte_r = Signal(8)
        crc_en_r = Signal()
        m.d.sync += [crc_byte_r.eq(Mux(crc_from_rx, c.byte, c.tx.payload)),
                     crc_en_r.eq(c.crc_en)]
        crc_next = crc16_step(m, c.crc, crc_byte_r)
        with m.If(crc_en_r):
            m.d.sync += c.crc.eq(crc_next)
        m.d.comb += crc_from_rx.eq((c.state == LinkState.HDR) | (c.state == LinkState.PAYLOAD))
