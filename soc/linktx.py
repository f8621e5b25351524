"""The host link's response side: the states that answer a request (RESPOND, then the
response bytes TX_SYNC .. TX_CRC1, a READ's words from the prefetch, a PING's from
:func:`~mxhw.soc.protocol.link_info`). Part of
:class:`~mxhw.soc.link.HostLink`."""

from amaranth import Mux, Signal

from .linkcore import LinkState
from .protocol import SYNC_RESP

__all__ = ["response_states"]


def response_states(c):
    """The response states, inside the link's ``Switch(state)``. A PING's answer is one
    word, :func:`~mxhw.soc.protocol.link_info`, sent like a READ's prefetched word."""
    m = c.m
    resp_len = Signal(16)
    rword = Signal(32)
    bsel = Signal(2)

    with m.Case(LinkState.RESPOND):
        # the response's plan was registered in CHECK (``c.p_*``); an error answers no
        # payload. A PING's word is prefetched like a READ's (see read_prefetch).
        m.d.sync += [c.crc.eq(0xFFFF), resp_len.eq(Mux(c.st_ok, c.p_len, 0)),
                     bsel.eq(0), c.baddr.eq(c.addr[2:]), c.nvalid.eq(0),
                     c.rq_left.eq(Mux(c.st_ok, c.p_words, 0)),
                     c.tx_left.eq(Mux(c.st_ok, c.p_words, 0)),
                     c.rq_more.eq(c.st_ok & c.p_more), c.tx_more.eq(c.st_ok & c.p_more)]
        with m.If(~c.st_ok & (c.errors != 0xFFFF)):
            m.d.sync += c.errors.eq(c.errors + 1)
        c.goto("TX_SYNC")
    with m.Case(LinkState.TX_SYNC):
        c.send(SYNC_RESP, "TX_STATUS", crc_it=False)
    with m.Case(LinkState.TX_STATUS):
        c.send(c.status, "TX_SEQ")
    with m.Case(LinkState.TX_SEQ):
        c.send(c.seq, "TX_LEN0")
    with m.Case(LinkState.TX_LEN0):
        c.send(resp_len[:8], "TX_LEN1")
    with m.Case(LinkState.TX_LEN1):
        c.send(resp_len[8:], "TX_NEXT")
    next_word = [rword.eq(c.nword), c.nvalid.eq(0), bsel.eq(0),
                 c.tx_left.eq(c.tx_left - 1), c.tx_more.eq(c.tx_left != 1)]
    with m.Case(LinkState.TX_NEXT):            # wait for the next prefetched word
        with m.If(~c.tx_more):
            c.goto("TX_CRC0")
        with m.Elif(c.nvalid):
            m.d.sync += next_word
            c.goto("TX_DATA")
    with m.Case(LinkState.TX_DATA):
        # the word shifts down a byte per byte sent: the byte is rword's low byte
        m.d.comb += [c.tx.valid.eq(1), c.tx.payload.eq(rword[:8])]
        with m.If(c.tx.ready):
            m.d.sync += [bsel.eq(bsel + 1), rword.eq(rword >> 8)]
            c.crc_add()
            with m.If(bsel == 3):
                with m.If(c.nvalid & c.tx_more):                  # back to back
                    m.d.sync += next_word
                with m.Else():
                    c.goto("TX_NEXT")
    with m.Case(LinkState.TX_CRC0):
        c.send(c.crc[:8], "TX_CRC1", crc_it=False)
    with m.Case(LinkState.TX_CRC1):
        c.send(c.crc[8:], "IDLE", crc_it=False)
