"""The host link: the packet protocol of ``soc/PROTOCOL.md`` in gateware.

Golden twin: :mod:`mxhw.soc.protocol` (the host side builds and checks the same packets).
"""

from amaranth import Cat, Module, Mux, ResetSignal, Signal, signed
from amaranth.lib import enum, stream, wiring
from amaranth.lib.wiring import In, Out

from ..mem import BlockRAM
from .bus import BusSignature
from .protocol import SYNC_REQ, SYNC_RESP, Cmd, Status

__all__ = ["HostLink", "crc16_step"]


def _crc16_byte(crc, byte):
    """CRC-16/CCITT-FALSE register after one more ``byte`` (integers; the reference)."""
    crc ^= byte << 8
    for _ in range(8):
        crc = ((crc << 1) ^ 0x1021 if crc & 0x8000 else crc << 1) & 0xFFFF
    return crc


def _crc16_matrix():
    """The byte step is linear over GF(2) in (crc, byte): for each new CRC bit, the masks
    of the old CRC bits and byte bits it is the parity of."""
    cols = [_crc16_byte(1 << i, 0) for i in range(16)] + \
           [_crc16_byte(0, 1 << i) for i in range(8)]
    return [(sum(1 << i for i in range(16) if cols[i] >> o & 1),
             sum(1 << i for i in range(8) if cols[16 + i] >> o & 1)) for o in range(16)]


def crc16_step(m, crc, byte, name="crc"):
    """Add logic to ``m`` computing CRC-16/CCITT-FALSE of one more ``byte``; returns the
    new CRC as a signal. Each new bit is the parity of its set of old CRC and byte bits
    (the step's GF(2) matrix, derived from the bitwise algorithm at elaboration): at most
    a dozen inputs per bit, two LUT levels, where the bit-serial form was eight."""
    out = Signal(16, name=f"{name}_next")
    for o, (mc, mb) in enumerate(_crc16_matrix()):
        bits = [crc[i] for i in range(16) if mc >> i & 1] + \
               [byte[i] for i in range(8) if mb >> i & 1]
        m.d.comb += out[o].eq(Cat(*bits).xor())
    return out


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

    Members
    -------
    rx : In(stream.Signature(8))
        Request bytes.
    tx : Out(stream.Signature(8))
        Response bytes.
    bus : Out(BusSignature())
        Word bus master.
    errors : Out(16)
        Count of error responses (saturating).

    Throughput: one request byte per cycle (each passes a receive register, with its
    compares, before the state machine sees it); a WRITE commits one word per cycle, after
    its CRC checks and two cycles of buffer read latency; a READ sends one byte per cycle
    the transmitter takes it.

    Reset: synthesis makes the state machine one-hot and drops its initial value, so the
    domain must see a reset before the first byte (the board clock modules and Amaranth's
    platform domains do: reset asserted for at least two clock edges at start-up). The
    state register takes that reset one cycle late, from a local copy of it.
    """

    def __init__(self, max_payload=1024, timeout_cycles=1_000_000, quiet_cycles=10_000,
                 read_latency=1):
        for name, v in (("max_payload", max_payload), ("timeout_cycles", timeout_cycles),
                        ("quiet_cycles", quiet_cycles), ("read_latency", read_latency)):
            if not isinstance(v, int) or isinstance(v, bool):
                raise TypeError(f"{name} must be an integer, not {v!r}")
        if max_payload < 4 or max_payload % 4 or max_payload > 65532:
            raise ValueError(f"max_payload must be a multiple of 4 in [4, 65532], "
                             f"not {max_payload}")
        if timeout_cycles < 16:
            raise ValueError(f"timeout_cycles must be at least 16, not {timeout_cycles}")
        if quiet_cycles < 16:
            raise ValueError(f"quiet_cycles must be at least 16, not {quiet_cycles}")
        if not 1 <= read_latency <= 16:
            raise ValueError(f"read_latency must be in [1, 16], not {read_latency}")
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

    def elaborate(self, platform):
        m = Module()
        nwords = self._max_payload // 4
        # the payload buffer: read latency 2 (on ECP5 the block RAM's output register, so
        # the bus register behind it meets a flip-flop's clock-to-out, not the RAM
        # array's); it is read only by the COMMIT states, at ``widx``: its address is that
        # register whatever the state (no FSM decode in front of the block RAM). Its
        # writes are registered (no FSM logic in front of its write enable either).
        m.submodules.buf = buf = BlockRAM(32, max(nwords, 2), read_latency=2)
        wr_en, wr_addr, wr_data = Signal(), Signal.like(buf.w_addr), Signal(32)
        m.d.comb += [buf.w_en.eq(wr_en), buf.w_addr.eq(wr_addr), buf.w_data.eq(wr_data)]
        m.d.sync += wr_en.eq(0)

        crc = Signal(16, init=0xFFFF)
        crc_bad = Signal()            # the received CRC differs (CHECK -> EXEC)
        cnt = Signal(16)              # bytes of the current field / payload
        hdr = Signal(56)              # cmd, addr, len (LSB first as received)
        addr = hdr[8:40]
        length = hdr[40:56]
        word = Signal(32)
        crc_rx = Signal(16)
        status = Signal(8)
        st_ok = Signal()              # status == OK, a flag register
        l_nz, l_four = Signal(), Signal()   # length != 0, length == 4 (from the header)
        resp_len = Signal(16)
        widx = Signal(range(nwords + 1))
        m.d.comb += buf.r_addr.eq(widx)
        wleft = Signal(range(nwords + 1))   # WRITE words still to commit
        wl_zero, wl_one = Signal(), Signal()  # wleft == 0, wleft == 1: flag registers
        baddr = Signal(30)            # bus word address, a counter (no adder on the bus)
        # the bus address and write data are that counter and the buffer's read data in
        # every state (the bus reads them only with ``w_en`` / ``r_en``): no gating logic
        # between the block RAM's output and the bus register
        m.d.comb += [self.bus.addr.eq(baddr), self.bus.w_data.eq(buf.r_data)]
        # Watchdog: cycles since the last byte of a packet (or of a drained one). Two
        # down-counters, reloaded when it clears and decremented while it runs, hold
        # ``limit - 1 - cycles``; their sign bits are the timeout / quiet flags, so the FSM
        # tests one flip-flop each and the only logic in front of them is one decrement.
        # It clears in IDLE and on every byte received (in any state: outside a packet
        # and DRAIN the counters are not read, and IDLE clears them before the next), and
        # runs otherwise, so its enables are the byte strobe and one state flip-flop, not
        # the state machine's tests (set after the state machine below).
        wd_clr = Signal()
        t_cnt = Signal(signed(self._timeout.bit_length() + 1))
        q_cnt = Signal(signed(self._quiet.bit_length() + 1))
        wdog_timeout, wdog_quiet = t_cnt[-1], q_cnt[-1]
        for cnt_, limit in ((t_cnt, self._timeout), (q_cnt, self._quiet)):
            with m.If(wd_clr):
                m.d.sync += cnt_.eq(limit - 1)
            with m.Elif(~cnt_[-1]):         # runs on every other cycle
                m.d.sync += cnt_.eq(cnt_ - 1)
        # payload bytes after the next one, minus 1: counts down from length - 3; its sign
        # bit, taken with each byte, is the next byte's p_last (no 16-bit compare)
        p_rem = Signal(signed(18))
        p_last = Signal()             # the next payload byte is the packet's last
        bad_any = Signal()            # the header is bad, a flag register
        len_bad = Signal()            # its length is bad (with h_cmd_bad, h_addr_bad: the
                                      # status code, a function of three flip-flops)
        # header checks, each taken from its byte as it arrives (see HDR)
        h_cmd_bad, h_ping, h_write, h_addr_bad = Signal(), Signal(), Signal(), Signal()
        h_read = Signal()
        h_lo_nz, h_lo_gt, h_lo_one, h_lo_four = Signal(), Signal(), Signal(), Signal()
        h_len_bad = Signal()          # the length is bad whatever its high byte
        h_bad = Signal()              # the header is bad whatever the length's high byte
        rword = Signal(32)
        bsel = Signal(2)
        # response words not yet started, and whether any is left (a flag register: the
        # state machine tests one flip-flop, not a counter compare)
        tx_left = Signal(range(nwords + 1))
        tx_more = Signal()
        # The receive stage: the byte, its strobe and every compare the header checks make
        # on it are registered together, so the state machine and the header flags meet
        # flip-flops, never an 8-bit compare of a byte routed from the receiver (the
        # stage adds one cycle of latency; bytes are taken every cycle, as before).
        byte = Signal(8, reset_less=True)
        take = Signal()
        rxb = self.rx.payload
        mp_lo, mp_hi = self._max_payload & 0xFF, self._max_payload >> 8
        b_sync, b_gt_cmd, b_ping, b_write, b_read = (Signal(name=n, reset_less=True) for n in (
            "b_sync", "b_gt_cmd", "b_ping", "b_write", "b_read"))
        b_lo2, b_nz, b_one, b_four, b_gt_lo, b_gt_hi, b_eq_hi = (
            Signal(name=n, reset_less=True) for n in (
                "b_lo2", "b_nz", "b_one", "b_four", "b_gt_lo", "b_gt_hi", "b_eq_hi"))
        m.d.sync += take.eq(self.rx.valid & self.rx.ready)
        m.d.sync += [byte.eq(rxb), b_sync.eq(rxb == SYNC_REQ), b_gt_cmd.eq(rxb > Cmd.WRITE),
                     b_ping.eq(rxb == Cmd.PING), b_write.eq(rxb == Cmd.WRITE),
                     b_read.eq(rxb == Cmd.READ), b_lo2.eq(rxb[:2] != 0), b_nz.eq(rxb != 0),
                     b_one.eq(rxb == 1), b_four.eq(rxb == 4), b_gt_lo.eq(rxb > mp_lo),
                     b_gt_hi.eq(rxb > mp_hi), b_eq_hi.eq(rxb == mp_hi)]
        # the CRC takes its bytes one cycle late, from registers (the byte chosen by the
        # state machine does not feed the CRC logic in the same cycle); every reader of
        # ``crc`` (EXEC's check, TX_CRC0/1) runs at least two cycles after the last
        # crc_add, and the resets to 0xFFFF (IDLE, RESPOND) follow no crc_add.
        # The byte is the received one in the request states, the transmitted one
        # (``tx.payload``) in the response states, chosen by two state flip-flops (no
        # per-state multiplexer of its own); only the enable comes from the FSM's tests.
        crc_en = Signal()
        crc_from_rx = Signal()        # HDR or PAYLOAD (set after the FSM below)
        crc_byte_r = Signal(8)
        crc_en_r = Signal()
        m.d.sync += [crc_byte_r.eq(Mux(crc_from_rx, byte, self.tx.payload)), crc_en_r.eq(crc_en)]
        crc_next = crc16_step(m, crc, crc_byte_r)
        with m.If(crc_en_r):
            m.d.sync += crc.eq(crc_next)

        # The state machine: one-hot in synthesis (Yosys extracts and recodes a state
        # machine only when told: Amaranth gives every register an initial value), so the
        # next-state logic of these 19 states is a few LUT levels, not a decoder of a
        # binary state. Yosys drops the initial value: the state needs a reset before use
        # (the board clock modules hold ``sync`` in reset for two edges after lock).
        state = Signal(LinkState, reset_less=True, attrs={"fsm_encoding": "one-hot"})
        rst_l = Signal(reset_less=True)
        m.d.sync += rst_l.eq(ResetSignal())

        def goto(name):
            m.d.sync += state.eq(LinkState[name])

        def crc_add():
            """Add this cycle's byte (received or sent, by state) to the CRC."""
            m.d.comb += crc_en.eq(1)

        def send(value, next_state, crc_it=True):
            m.d.comb += [self.tx.valid.eq(1), self.tx.payload.eq(value)]
            with m.If(self.tx.ready):
                if crc_it:
                    crc_add()
                goto(next_state)

        # a bad header's status: the first error in the order command, length, address
        bad = Mux(h_cmd_bad, Status.BAD_CMD, Mux(len_bad, Status.BAD_LEN, Status.BAD_ADDR))

        def error(code, state="RESPOND"):
            m.d.sync += [status.eq(code), st_ok.eq(0)]
            goto(state)

        # A UART cannot be back-pressured: bytes are always taken, and those that arrive
        # while the link executes or answers a request are discarded.
        m.d.comb += self.rx.ready.eq(1)

        # READ responses: the words are prefetched over the bus (one request in flight, one
        # word held in ``nword``) while the previous word's bytes go out, so a READ sends
        # a byte every cycle the transmitter takes one (4 cycles per word), not 4 + latency.
        # ``issue`` is an AND of flip-flops (no state decode, no counter compare): words
        # are left to request only between RESPOND and the last word's request.
        nword, nvalid = Signal(32), Signal()
        rq_left = Signal(range(nwords + 1))   # words still to request
        rq_more = Signal()                    # rq_left != 0, a flag register
        in_flight = Signal(self._read_latency)
        issue = Signal()
        m.d.comb += issue.eq(rq_more & ~nvalid & (in_flight == 0))
        m.d.sync += in_flight.eq(Cat(issue, in_flight[:-1]))
        with m.If(issue):
            m.d.comb += self.bus.r_en.eq(1)
            m.d.sync += [baddr.eq(baddr + 1), rq_left.eq(rq_left - 1),
                         rq_more.eq(rq_left != 1)]
        with m.If(in_flight[-1]):
            m.d.sync += [nword.eq(self.bus.r_data), nvalid.eq(1)]

        with m.Switch(state):
            with m.Case(LinkState.IDLE):
                m.d.sync += [crc.eq(0xFFFF), cnt.eq(0), widx.eq(0)]
                with m.If(take & b_sync):
                    goto("HDR")

            with m.Case(LinkState.HDR):
                # the next byte may follow on the very next cycle: the header is checked
                # as its last byte arrives, and a bad one is answered from PAYLOAD / CRC.
                # Each check is computed from its own byte as that byte arrives and kept in
                # a flag, so the last byte (length, high) only meets 8-bit compares.
                with m.If(take):
                    m.d.sync += [hdr.eq(Cat(hdr[8:], byte)), cnt.eq(cnt + 1)]
                    crc_add()
                    with m.Switch(cnt[:3]):
                        with m.Case(0):                       # cmd
                            m.d.sync += [h_cmd_bad.eq(b_gt_cmd), h_ping.eq(b_ping),
                                         h_write.eq(b_write), h_read.eq(b_read)]
                        with m.Case(1):                       # address, low byte
                            m.d.sync += h_addr_bad.eq(b_lo2)
                        with m.Case(5):                       # length, low byte
                            # what the low byte alone already makes bad, folded here
                            lo_len_bad = b_lo2 | (h_ping & b_nz)
                            m.d.sync += [h_lo_nz.eq(b_nz), h_lo_one.eq(b_one),
                                         h_lo_four.eq(b_four),
                                         h_lo_gt.eq(b_gt_lo),
                                         h_len_bad.eq(lo_len_bad),
                                         h_bad.eq(h_cmd_bad | h_addr_bad | lo_len_bad)]
                        with m.Case(6):                       # length, high byte
                            nlen_nz = h_lo_nz | b_nz
                            too_long = b_gt_hi | (b_eq_hi & h_lo_gt)
                            hi_len_bad = too_long | (h_ping & b_nz)
                            nlen = Cat(hdr[48:56], byte)
                            m.d.sync += [cnt.eq(0), p_rem.eq(nlen - 3),
                                         p_last.eq(h_lo_one & ~b_nz),
                                         l_nz.eq(nlen_nz), l_four.eq(h_lo_four & ~b_nz)]
                            # the header's checks are registered here and acted on in the
                            # next state's first cycle (no comparator before the FSM); the
                            # last byte meets only its own compares and the earlier flags
                            m.d.sync += bad_any.eq(h_bad | hi_len_bad)
                            m.d.sync += len_bad.eq(h_len_bad | hi_len_bad)
                            with m.If(h_write & nlen_nz):
                                goto("PAYLOAD")
                            with m.Else():
                                goto("CRC")
                with m.Elif(wdog_timeout):
                    error(Status.TIMEOUT)

            with m.Case(LinkState.PAYLOAD):
                with m.If(bad_any):
                    error(bad, "DRAIN")
                with m.Elif(take):
                    m.d.sync += [word.eq(Cat(word[8:], byte)), cnt.eq(cnt + 1)]
                    crc_add()
                    with m.If(cnt[:2] == 3):
                        m.d.sync += [wr_addr.eq(cnt[2:]), wr_data.eq(Cat(word[8:], byte)),
                                     wr_en.eq(1)]
                    # the byte count's end test is a flag register, set from p_rem's sign
                    # bit as the byte before the last is taken
                    m.d.sync += [p_last.eq(p_rem[-1]), p_rem.eq(p_rem - 1)]
                    with m.If(p_last):
                        m.d.sync += cnt.eq(0)
                        goto("CRC")
                with m.Elif(wdog_timeout):
                    error(Status.TIMEOUT)

            with m.Case(LinkState.CRC):
                with m.If(bad_any):
                    error(bad, "DRAIN")
                with m.Elif(take):
                    # cnt is 0 on entry (HDR and PAYLOAD clear it): its bit 0 tells the
                    # two CRC bytes apart
                    m.d.sync += [crc_rx.eq(Cat(crc_rx[8:], byte)), cnt.eq(cnt + 1)]
                    with m.If(cnt[0]):
                        goto("CHECK")
                with m.Elif(wdog_timeout):
                    error(Status.TIMEOUT)

            # the CRC compare is registered here and acted on in EXEC (no 16-bit compare
            # in front of the FSM and the bus address counter)
            # The bus address counter is loaded here for a WRITE's commit, whatever EXEC
            # decides (no request is in flight: the counter is free), so its multiplexer
            # sees a state flip-flop, not EXEC's tests.
            with m.Case(LinkState.CHECK):
                m.d.sync += [crc_bad.eq(crc_rx != crc), baddr.eq(addr[2:])]
                goto("EXEC")

            with m.Case(LinkState.EXEC):
                with m.If(crc_bad):
                    error(Status.BAD_CRC)
                with m.Elif(h_write):         # the command's flag, not an 8-bit compare
                    # the header was good (a bad one drains): the length is a multiple
                    # of 4, so its word count is 0 / 1 exactly when it is 0 / 4
                    m.d.sync += [status.eq(Status.OK), st_ok.eq(1), widx.eq(0),
                                 wleft.eq(length[2:]), wl_zero.eq(~l_nz), wl_one.eq(l_four)]
                    goto("COMMIT_RD")
                with m.Else():
                    m.d.sync += [status.eq(Status.OK), st_ok.eq(1)]
                    goto("RESPOND")

            # one word per cycle: the buffer reads word widx while word widx-2 is written
            # (two cycles of read latency, filled by COMMIT_RD and COMMIT_RD2); the read
            # address and the end test are registers (no adder in front of them)
            with m.Case(LinkState.COMMIT_RD):
                with m.If(wl_zero):
                    goto("RESPOND")
                with m.Else():
                    m.d.sync += widx.eq(widx + 1)
                    goto("COMMIT_RD2")
            with m.Case(LinkState.COMMIT_RD2):
                m.d.sync += widx.eq(widx + 1)
                goto("COMMIT_WR")
            with m.Case(LinkState.COMMIT_WR):
                m.d.comb += self.bus.w_en.eq(1)
                m.d.sync += [widx.eq(widx + 1), baddr.eq(baddr + 1), wleft.eq(wleft - 1),
                             wl_one.eq(wleft == 2)]
                with m.If(wl_one):
                    goto("RESPOND")

            with m.Case(LinkState.DRAIN):
                with m.If(~take & wdog_quiet):
                    goto("RESPOND")

            with m.Case(LinkState.RESPOND):
                # OK: the header was good, its length a multiple of 4 (see EXEC)
                is_read = st_ok & h_read
                words = Mux(is_read, length[2:], 0)      # to request, and to send
                more = is_read & l_nz
                m.d.sync += [crc.eq(0xFFFF), resp_len.eq(is_read.as_unsigned() * length),
                             bsel.eq(0), baddr.eq(addr[2:]), nvalid.eq(0),
                             rq_left.eq(words), tx_left.eq(words),
                             rq_more.eq(more), tx_more.eq(more)]
                with m.If(~st_ok & (self.errors != 0xFFFF)):
                    m.d.sync += self.errors.eq(self.errors + 1)
                goto("TX_SYNC")
            with m.Case(LinkState.TX_SYNC):
                send(SYNC_RESP, "TX_STATUS", crc_it=False)
            with m.Case(LinkState.TX_STATUS):
                send(status, "TX_LEN0")
            with m.Case(LinkState.TX_LEN0):
                send(resp_len[:8], "TX_LEN1")
            with m.Case(LinkState.TX_LEN1):
                send(resp_len[8:], "TX_NEXT")
            with m.Case(LinkState.TX_NEXT):            # wait for the next prefetched word
                with m.If(~tx_more):
                    goto("TX_CRC0")
                with m.Elif(nvalid):
                    m.d.sync += [rword.eq(nword), nvalid.eq(0), bsel.eq(0),
                                 tx_left.eq(tx_left - 1), tx_more.eq(tx_left != 1)]
                    goto("TX_DATA")
            with m.Case(LinkState.TX_DATA):
                # the word shifts down a byte per byte sent: the byte is rword's low byte
                m.d.comb += [self.tx.valid.eq(1), self.tx.payload.eq(rword[:8])]
                with m.If(self.tx.ready):
                    m.d.sync += [bsel.eq(bsel + 1), rword.eq(rword >> 8)]
                    crc_add()
                    with m.If(bsel == 3):
                        with m.If(nvalid & tx_more):                  # back to back
                            m.d.sync += [rword.eq(nword), nvalid.eq(0), bsel.eq(0),
                                         tx_left.eq(tx_left - 1), tx_more.eq(tx_left != 1)]
                        with m.Else():
                            goto("TX_NEXT")
            with m.Case(LinkState.TX_CRC0):
                send(crc[:8], "TX_CRC1", crc_it=False)
            with m.Case(LinkState.TX_CRC1):
                send(crc[8:], "IDLE", crc_it=False)
        # The state's reset: a local copy of the domain reset, one cycle late (the state
        # register has no reset of its own). A one-hot state machine takes its reset
        # through its next-state logic, not the flip-flops' set/reset input, so the
        # domain reset's net (every flip-flop's LSR, across the die) would otherwise feed
        # these LUTs; now one flip-flop of it does, placed beside them.
        with m.If(rst_l):
            m.d.sync += state.eq(LinkState.IDLE)
        m.d.comb += crc_from_rx.eq((state == LinkState.HDR) | (state == LinkState.PAYLOAD))
        m.d.comb += wd_clr.eq(take | (state == LinkState.IDLE))
        return m
