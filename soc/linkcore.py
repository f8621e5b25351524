"""What the host link's jobs share: its states, the registers more than one job reads,
and the state machine's helpers. :class:`~mxhw.soc.link.HostLink` builds one
:class:`LinkCore` and hands it to the receiver (:mod:`.linkrx`), the executor
(:mod:`.linkexec`) and the responder (:mod:`.linktx`), which add their logic to its module.
"""

from amaranth import Signal
from amaranth.lib import enum

__all__ = ["LinkState", "LinkCore", "RECEIVING"]


class LinkState(enum.Enum, shape=5):
    """The host link's states (its state register decodes to these names in waveforms)."""
    IDLE = 0
    HDR = 1
    PAYLOAD = 2
    CRC = 3
    CHECK = 4
    EXEC = 5
    COMMIT_RD = 6
    COMMIT_RD2 = 7
    COMMIT_WR = 8
    DRAIN = 9
    RESPOND = 10
    TX_SYNC = 11
    TX_STATUS = 12
    TX_LEN0 = 13
    TX_LEN1 = 14
    TX_NEXT = 15
    TX_DATA = 16
    TX_CRC0 = 17
    TX_CRC1 = 18
    TX_SEQ = 19


#: the states that take bytes from the receive buffer (in every other state its read
#: pointer rewinds to the first byte not yet taken: nothing is lost while the link works)
RECEIVING = ("IDLE", "HDR", "PAYLOAD", "CRC", "DRAIN")


class LinkCore:
    """The module ``m`` the link is built in, the link's ports, and the registers the
    request, execute and response jobs share (most are flag registers, so the state
    machine tests one flip-flop, not a compare).

    Attributes
    ----------
    m : Module
    rx, tx, bus, errors :
        The :class:`~mxhw.soc.link.HostLink` ports.
    max_payload, timeout, quiet, read_latency, rx_depth : int
        The link's parameters; ``nwords = max_payload // 4``.
    state : Signal(LinkState)
        The state register: one-hot in synthesis, without a reset of its own (see
        :meth:`~mxhw.soc.link.HostLink.elaborate`).
    """

    def __init__(self, m, link, max_payload, timeout, quiet, read_latency, rx_depth):
        self.m = m
        self.rx_depth = rx_depth
        self.rx, self.tx, self.bus, self.errors = link.rx, link.tx, link.bus, link.errors
        self.max_payload, self.timeout, self.quiet = max_payload, timeout, quiet
        self.read_latency = read_latency
        self.nwords = nwords = max_payload // 4
        # one-hot in synthesis (Yosys recodes a state machine only when told), without an
        # initial value: it needs a reset before use (docs/link.md)
        self.state = Signal(LinkState, reset_less=True, attrs={"fsm_encoding": "one-hot"})
        self.crc = Signal(16, init=0xFFFF)
        self.crc_en = Signal()        # this cycle's byte goes into the CRC
        self.hdr = Signal(64)         # cmd, seq, addr, len (LSB first as received)
        self.seq = self.hdr[8:16]
        self.addr = self.hdr[16:48]
        self.length = self.hdr[48:64]
        self.crc_bad = Signal()       # the received CRC differs (CHECK -> EXEC)
        self.status = Signal(8)
        self.st_ok = Signal()         # status == OK
        self.l_nz = Signal()          # length != 0 (from the header)
        self.l_four = Signal()        # length == 4
        self.h_write = Signal()       # the command is WRITE / READ / PING
        self.h_read = Signal()
        self.h_ping = Signal()
        self.widx = Signal(range(nwords + 1))   # payload buffer word (write and commit)
        self.baddr = Signal(30)       # bus word address, a counter (no adder on the bus)
        # READ prefetch: the word held, and words still to request / to send
        self.nword = Signal(32)
        self.nvalid = Signal()
        self.rq_left = Signal(range(nwords + 1))
        self.rq_more = Signal()       # rq_left != 0
        self.tx_left = Signal(range(nwords + 1))
        self.tx_more = Signal()       # tx_left != 0
        # a good request's response, planned in CHECK: words to prefetch and send (a
        # READ's, or a PING's one), whether there are any, the payload's length
        self.p_words = Signal(range(nwords + 1))
        self.p_more = Signal()
        self.p_len = Signal(16)

    def goto(self, name):
        self.m.d.sync += self.state.eq(LinkState[name])

    def crc_add(self):
        """Add this cycle's byte (received or sent, by state) to the CRC."""
        self.m.d.comb += self.crc_en.eq(1)

    def send(self, value, next_state, crc_it=True):
        """Offer ``value`` on ``tx``; when taken, add it to the CRC and go on."""
        self.m.d.comb += [self.tx.valid.eq(1), self.tx.payload.eq(value)]
        with self.m.If(self.tx.ready):
            if crc_it:
                self.crc_add()
            self.goto(next_state)

    def error(self, code, state="RESPOND"):
        """Answer with status ``code`` (after ``state``)."""
        self.m.d.sync += [self.status.eq(code), self.st_ok.eq(0)]
        self.goto(state)
