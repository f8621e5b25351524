"""The host link's bus side: the WRITE payload buffer, the READ prefetch, and the states
that execute a checked request (EXEC, and a WRITE's commit: COMMIT_RD, COMMIT_RD2,
COMMIT_WR). Part of :class:`~mxhw.soc.link.HostLink`."""

from amaranth import Cat, Mux, Signal

from ..mem import BlockRAM
from .linkcore import LinkState
from .protocol import Status, link_info

__all__ = ["payload_buffer", "read_prefetch", "execute_states"]


def payload_buffer(c):
    """The WRITE payload buffer, ``max(nwords, 2)`` words, read latency 2, read at
    ``c.widx`` in every state and written through registers (``c.wr_en``, ``c.wr_addr``,
    ``c.wr_data``); the bus address and write data are ``c.baddr`` and its read data in
    every state (the bus reads them only with ``w_en`` / ``r_en``). See ``docs/link.md``."""
    m = c.m
    m.submodules.buf = buf = BlockRAM(32, max(c.nwords, 2), read_latency=2)
    c.wr_en, c.wr_addr, c.wr_data = Signal(name="wr_en"), Signal.like(buf.w_addr, name="wr_addr"), \
        Signal(32, name="wr_data")
    m.d.comb += [buf.w_en.eq(c.wr_en), buf.w_addr.eq(c.wr_addr), buf.w_data.eq(c.wr_data)]
    m.d.sync += c.wr_en.eq(0)
    m.d.comb += buf.r_addr.eq(c.widx)
    m.d.comb += [c.bus.addr.eq(c.baddr), c.bus.w_data.eq(buf.r_data)]


def read_prefetch(c):
    """A READ's words, prefetched over the bus (one request in flight, one word held in
    ``c.nword``) while the previous word's bytes go out: 4 cycles per word, not
    4 + latency. Words are left to request only between RESPOND and the last word's
    request. A PING's one word is the link information (:func:`~mxhw.soc.protocol.link_info`)
    in place of the bus's."""
    m = c.m
    in_flight = Signal(c.read_latency)
    issue = Signal()
    m.d.comb += issue.eq(c.rq_more & ~c.nvalid & (in_flight == 0))
    m.d.sync += in_flight.eq(Cat(issue, in_flight[:-1]))
    with m.If(issue):
        m.d.comb += c.bus.r_en.eq(1)
        m.d.sync += [c.baddr.eq(c.baddr + 1), c.rq_left.eq(c.rq_left - 1),
                     c.rq_more.eq(c.rq_left != 1)]
    with m.If(in_flight[-1]):
        # a PING reads one word too (at its address: reads have no side effects) and
        # answers the link information instead
        m.d.sync += [c.nword.eq(Mux(c.h_ping, link_info(c.max_payload, c.rx_depth),
                                    c.bus.r_data)), c.nvalid.eq(1)]


def execute_states(c):
    """The execute states, inside the link's ``Switch(state)``: EXEC acts on the CRC
    check; a WRITE then commits its buffered words to the bus, one per cycle."""
    m = c.m
    wleft = Signal(range(c.nwords + 1))   # WRITE words still to commit
    wl_zero, wl_one = Signal(), Signal()  # wleft == 0, wleft == 1: flag registers

    with m.Case(LinkState.EXEC):
        with m.If(c.crc_bad):
            # the packet's end is not known (its length may be what was corrupted):
            # discard what follows until the line is quiet, then answer
            c.error(Status.BAD_CRC, "DRAIN")
        with m.Elif(c.h_write):         # the command's flag, not an 8-bit compare
            # the header was good (a bad one drains): the length is a multiple of 4, so
            # its word count is 0 / 1 exactly when it is 0 / 4
            m.d.sync += [c.status.eq(Status.OK), c.st_ok.eq(1), c.widx.eq(0),
                         wleft.eq(c.length[2:]), wl_zero.eq(~c.l_nz), wl_one.eq(c.l_four)]
            c.goto("COMMIT_RD")
        with m.Else():
            m.d.sync += [c.status.eq(Status.OK), c.st_ok.eq(1)]
            c.goto("RESPOND")

    # one word per cycle: the buffer reads word widx while word widx-2 is written (two
    # cycles of read latency, filled by COMMIT_RD and COMMIT_RD2); the read address and
    # the end test are registers (no adder in front of them)
    with m.Case(LinkState.COMMIT_RD):
        with m.If(wl_zero):
            c.goto("RESPOND")
        with m.Else():
            m.d.sync += c.widx.eq(c.widx + 1)
            c.goto("COMMIT_RD2")
    with m.Case(LinkState.COMMIT_RD2):
        m.d.sync += c.widx.eq(c.widx + 1)
        c.goto("COMMIT_WR")
    with m.Case(LinkState.COMMIT_WR):
        m.d.comb += c.bus.w_en.eq(1)
        m.d.sync += [c.widx.eq(c.widx + 1), c.baddr.eq(c.baddr + 1), wleft.eq(wleft - 1),
                     wl_one.eq(wleft == 2)]
        with m.If(wl_one):
            c.goto("RESPOND")
