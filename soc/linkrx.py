"""The host link's request side: the receive register with its byte compares, the
watchdog, and the states that take a request apart (IDLE, HDR, PAYLOAD, CRC, CHECK) or
drain a bad one (DRAIN). Part of :class:`~mxhw.soc.link.HostLink`."""

from contextlib import contextmanager

from amaranth import Cat, Mux, Signal, signed

from ..mem import BlockRAM
from .linkcore import RECEIVING, LinkState
from .protocol import SYNC_REQ, Cmd, Status

__all__ = ["receive_stage", "watchdog", "request_states"]


def receive_stage(c):
    """The receive buffer and the receive register.

    Request bytes go into a ring buffer of ``c.rx_depth`` bytes (block RAM) as they
    arrive; ``rx.ready`` is low only when it is full. In the receiving states
    (:data:`~mxhw.soc.linkcore.RECEIVING`) a fetch pointer reads it a byte per cycle; a
    byte reaches the receive register 3 cycles after its fetch, and the state machine
    takes it (``c.take``) if it is still receiving, which moves the commit pointer on. In
    every other state the fetch pointer rewinds to the commit pointer: bytes fetched but
    not taken are fetched again, so requests sent back to back are all parsed, whatever
    the link was doing when they arrived.

    The receive register holds the byte (``c.byte``), its strobe (``c.take``) and every
    compare the header checks make on it (``c.b_*``), registered together (one cycle,
    after the block RAM's output register; a byte every cycle; ``docs/link.md``,
    Timing)."""
    m = c.m
    abits = c.rx_depth.bit_length() - 1
    m.submodules.rxbuf = rxbuf = BlockRAM(8, c.rx_depth, read_latency=2)
    w_ptr = Signal(abits + 1)     # next byte to write
    r_ptr = Signal(abits + 1)     # next byte to take (commit pointer)
    f_ptr = Signal(abits + 1)     # next byte to fetch
    c.receiving = receiving = Signal()
    m.d.comb += receiving.eq(Cat(*(c.state == LinkState[n] for n in RECEIVING)).any())
    # the fetch side follows the state one cycle late (a flip-flop, not the state
    # decode): a fetch made in a state's first non-receiving cycle is dropped like the
    # others (its strobe is cleared, and take is gated by the state itself)
    recv_q = Signal()
    m.d.sync += recv_q.eq(receiving)
    full = Signal()
    m.d.comb += full.eq((w_ptr[:abits] == r_ptr[:abits]) & (w_ptr[-1] != r_ptr[-1]))
    m.d.comb += [c.rx.ready.eq(~full), rxbuf.w_addr.eq(w_ptr[:abits]),
                 rxbuf.w_data.eq(c.rx.payload), rxbuf.w_en.eq(c.rx.valid & ~full),
                 rxbuf.r_addr.eq(f_ptr[:abits])]
    with m.If(c.rx.valid & ~full):
        m.d.sync += w_ptr.eq(w_ptr + 1)
    fetch = Signal()
    fetched = Signal(2)           # the fetches of the last two cycles (block RAM latency)
    m.d.comb += fetch.eq(recv_q & (f_ptr != w_ptr))
    with m.If(~recv_q):
        # rewind; the bytes on their way are dropped (they are fetched again)
        m.d.sync += [f_ptr.eq(r_ptr), fetched.eq(0)]
    with m.Else():
        m.d.sync += fetched.eq(Cat(fetch, fetched[0]))
        with m.If(fetch):
            m.d.sync += f_ptr.eq(f_ptr + 1)

    c.byte = byte = Signal(8, reset_less=True)
    c.take = take = Signal()
    rxb = rxbuf.r_data
    mp_lo, mp_hi = c.max_payload & 0xFF, c.max_payload >> 8
    flags = {n: Signal(name=n, reset_less=True) for n in (
        "b_sync", "b_gt_cmd", "b_ping", "b_write", "b_read",
        "b_lo2", "b_nz", "b_one", "b_four", "b_gt_lo", "b_gt_hi", "b_eq_hi")}
    for n, s in flags.items():
        setattr(c, n, s)
    m.d.sync += take.eq(fetched[1] & receiving)
    m.d.sync += [byte.eq(rxb), c.b_sync.eq(rxb == SYNC_REQ), c.b_gt_cmd.eq(rxb > Cmd.WRITE),
                 c.b_ping.eq(rxb == Cmd.PING), c.b_write.eq(rxb == Cmd.WRITE),
                 c.b_read.eq(rxb == Cmd.READ), c.b_lo2.eq(rxb[:2] != 0),
                 c.b_nz.eq(rxb != 0), c.b_one.eq(rxb == 1), c.b_four.eq(rxb == 4),
                 c.b_gt_lo.eq(rxb > mp_lo), c.b_gt_hi.eq(rxb > mp_hi),
                 c.b_eq_hi.eq(rxb == mp_hi)]
    # a byte taken in a receiving state is consumed, whatever that state does with it
    with m.If(take & receiving):
        m.d.sync += r_ptr.eq(r_ptr + 1)


def watchdog(c):
    """Cycles since the last byte taken, as two down-counters whose sign bits are
    ``c.wdog_timeout`` and ``c.wdog_quiet`` (read in a packet, in DRAIN and in IDLE when
    out of step; a packet starts with a byte taken, which clears them). They clear on
    every byte taken and run otherwise."""
    m = c.m
    wd_clr = Signal()
    t_cnt = Signal(signed(c.timeout.bit_length() + 1))
    q_cnt = Signal(signed(c.quiet.bit_length() + 1))
    c.wdog_timeout, c.wdog_quiet = t_cnt[-1], q_cnt[-1]
    for cnt_, limit in ((t_cnt, c.timeout), (q_cnt, c.quiet)):
        with m.If(wd_clr):
            m.d.sync += cnt_.eq(limit - 1)
        with m.Elif(~cnt_[-1]):         # runs on every other cycle
            m.d.sync += cnt_.eq(cnt_ - 1)
    m.d.comb += wd_clr.eq(c.take)


@contextmanager
def _on_byte(c, bad_any=None, bad=None):
    """The body of a receiving state: it runs when a byte is taken. Before it, a bad
    header (``bad_any``) is answered with ``bad`` after the packet drains; after it, a
    packet that stalls is answered with TIMEOUT."""
    m = c.m
    if bad_any is not None:
        with m.If(bad_any):
            c.error(bad, "DRAIN")
        with m.Elif(c.take):
            yield
    else:
        with m.If(c.take):
            yield
    with m.Elif(c.wdog_timeout):
        c.error(Status.TIMEOUT)


def request_states(c):
    """The request states, inside the link's ``Switch(state)``: a header checked byte by
    byte, a WRITE's payload into the buffer, the CRC compared (CHECK); a bad header is
    answered from PAYLOAD / CRC after the rest of the packet drains (DRAIN), a bad CRC
    likewise (from EXEC); a byte that is no sync byte in IDLE starts an unanswered
    drain (IDLE with the out-of-step flag ``oos`` set)."""
    m, take, byte = c.m, c.take, c.byte
    cnt = Signal(16)              # bytes of the current field / payload
    word = Signal(32)
    crc_rx = Signal(16)
    # payload bytes after the next one, minus 1: counts down from length - 3; its sign
    # bit, taken with each byte, is the next byte's p_last (no 16-bit compare)
    p_rem = Signal(signed(18))
    p_last = Signal()             # the next payload byte is the packet's last
    bad_any = Signal()            # the header is bad, a flag register
    len_bad = Signal()            # its length is bad (with h_cmd_bad, h_addr_bad: the
                                  # status code, a function of three flip-flops)
    # header checks, each taken from its byte as it arrives (see HDR)
    h_cmd_bad, h_addr_bad = Signal(), Signal()
    h_ping = c.h_ping
    h_lo_nz, h_lo_gt, h_lo_one, h_lo_four = Signal(), Signal(), Signal(), Signal()
    h_len_bad = Signal()          # the length is bad whatever its high byte
    h_bad = Signal()              # the header is bad whatever the length's high byte
    # a bad header's status: the first error in the order command, length, address
    bad = Mux(h_cmd_bad, Status.BAD_CMD, Mux(len_bad, Status.BAD_LEN, Status.BAD_ADDR))

    # a byte other than the sync byte here means the stream is out of step (a lost or
    # corrupted sync byte): it and what follows it are discarded, unanswered, until the
    # line is quiet (oos set), so that no byte of a packet whose start was missed is
    # taken for a header
    oos = Signal()
    with m.Case(LinkState.IDLE):
        m.d.sync += [c.crc.eq(0xFFFF), cnt.eq(0), c.widx.eq(0)]
        with m.If(take & c.b_sync & ~oos):
            c.goto("HDR")
        with m.If(take & ~c.b_sync):
            m.d.sync += oos.eq(1)
        with m.Elif(~take & c.wdog_quiet):
            m.d.sync += oos.eq(0)

    with m.Case(LinkState.HDR):
        # the next byte may follow on the very next cycle: the header is checked as its
        # last byte arrives, and a bad one is answered from PAYLOAD / CRC. Each check is
        # computed from its own byte as that byte arrives and kept in a flag, so the last
        # byte (length, high) only meets 8-bit compares.
        with _on_byte(c):
            m.d.sync += [c.hdr.eq(Cat(c.hdr[8:], byte)), cnt.eq(cnt + 1)]
            c.crc_add()
            with m.Switch(cnt[:3]):
                with m.Case(0):                       # cmd
                    m.d.sync += [h_cmd_bad.eq(c.b_gt_cmd), h_ping.eq(c.b_ping),
                                 c.h_write.eq(c.b_write), c.h_read.eq(c.b_read)]
                with m.Case(2):                       # address, low byte (1: seq)
                    m.d.sync += h_addr_bad.eq(c.b_lo2)
                with m.Case(6):                       # length, low byte
                    # what the low byte alone already makes bad, folded here
                    lo_len_bad = c.b_lo2 | (h_ping & c.b_nz)
                    m.d.sync += [h_lo_nz.eq(c.b_nz), h_lo_one.eq(c.b_one),
                                 h_lo_four.eq(c.b_four),
                                 h_lo_gt.eq(c.b_gt_lo),
                                 h_len_bad.eq(lo_len_bad),
                                 h_bad.eq(h_cmd_bad | h_addr_bad | lo_len_bad)]
                with m.Case(7):                       # length, high byte
                    nlen_nz = h_lo_nz | c.b_nz
                    too_long = c.b_gt_hi | (c.b_eq_hi & h_lo_gt)
                    hi_len_bad = too_long | (h_ping & c.b_nz)
                    nlen = Cat(c.hdr[56:64], byte)
                    m.d.sync += [cnt.eq(0), p_rem.eq(nlen - 3),
                                 p_last.eq(h_lo_one & ~c.b_nz),
                                 c.l_nz.eq(nlen_nz), c.l_four.eq(h_lo_four & ~c.b_nz)]
                    # the header's checks are registered here and acted on in the next
                    # state's first cycle (no comparator before the FSM); the last byte
                    # meets only its own compares and the earlier flags
                    m.d.sync += bad_any.eq(h_bad | hi_len_bad)
                    m.d.sync += len_bad.eq(h_len_bad | hi_len_bad)
                    with m.If(c.h_write & nlen_nz):
                        c.goto("PAYLOAD")
                    with m.Else():
                        c.goto("CRC")

    with m.Case(LinkState.PAYLOAD):
        with _on_byte(c, bad_any, bad):
            m.d.sync += [word.eq(Cat(word[8:], byte)), cnt.eq(cnt + 1)]
            c.crc_add()
            with m.If(cnt[:2] == 3):
                m.d.sync += [c.wr_addr.eq(cnt[2:]), c.wr_data.eq(Cat(word[8:], byte)),
                             c.wr_en.eq(1)]
            # the byte count's end test is a flag register, set from p_rem's sign bit as
            # the byte before the last is taken
            m.d.sync += [p_last.eq(p_rem[-1]), p_rem.eq(p_rem - 1)]
            with m.If(p_last):
                m.d.sync += cnt.eq(0)
                c.goto("CRC")

    with m.Case(LinkState.CRC):
        with _on_byte(c, bad_any, bad):
            # cnt is 0 on entry (HDR and PAYLOAD clear it): its bit 0 tells the two CRC
            # bytes apart
            m.d.sync += [crc_rx.eq(Cat(crc_rx[8:], byte)), cnt.eq(cnt + 1)]
            with m.If(cnt[0]):
                c.goto("CHECK")

    # the CRC compare is registered here and acted on in EXEC (no 16-bit compare in front
    # of the FSM and the bus address counter). The bus address counter is loaded here for
    # a WRITE's commit, whatever EXEC decides (no request is in flight: the counter is
    # free), so its multiplexer sees a state flip-flop, not EXEC's tests.
    # The response's plan (words to prefetch and send, payload length) is registered here
    # too, from the header's flags, so RESPOND only masks it with st_ok.
    with m.Case(LinkState.CHECK):
        m.d.sync += [c.crc_bad.eq(crc_rx != c.crc), c.baddr.eq(c.addr[2:]),
                     c.p_words.eq(Mux(c.h_read, c.length[2:], c.h_ping)),
                     c.p_more.eq((c.h_read & c.l_nz) | c.h_ping),
                     c.p_len.eq(Mux(c.h_read, c.length, Mux(c.h_ping, 4, 0)))]
        c.goto("EXEC")

    with m.Case(LinkState.DRAIN):
        with m.If(~take & c.wdog_quiet):
            c.goto("RESPOND")
