"""AXI4-Lite in front of a Wishbone B4 target (the accelerator core): an AXI4-Lite
subordinate that turns each read and write into one Wishbone cycle.

:class:`AXI4LiteSignature` has the AXI4-Lite channels' signals, named as in the AMBA
specification in lower case with the channel's prefix (``awaddr``, ``wdata``, ``bresp``,
``araddr``, ``rdata``, ...), seen from the manager (``Out`` for what it drives).
:class:`AXI4LiteToWishbone` is the adapter: ``axi`` is its subordinate port, ``wb`` a
Wishbone initiator port that connects to :class:`~mxhw.soc.core.AcceleratorCore`'s
``bus`` with ``wiring.connect``.
"""

from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..lib.params import check_int
from .wishbone import Signature as WishboneSignature

__all__ = ["AXI4LiteSignature", "AXI4LiteToWishbone", "Resp"]


class Resp:
    """AXI response codes (``bresp``, ``rresp``)."""
    OKAY = 0b00
    SLVERR = 0b10


class AXI4LiteSignature(wiring.Signature):
    """AXI4-Lite, 32-bit data, seen from the manager.

    Parameters
    ----------
    addr_width : int
        Width of the byte addresses ``awaddr`` and ``araddr`` (3..32).
    """

    def __init__(self, addr_width=32):
        check_int("addr_width", addr_width, 3, 32)
        self._addr_width = addr_width
        super().__init__({
            "awaddr": Out(addr_width), "awprot": Out(3), "awvalid": Out(1), "awready": In(1),
            "wdata": Out(32), "wstrb": Out(4), "wvalid": Out(1), "wready": In(1),
            "bresp": In(2), "bvalid": In(1), "bready": Out(1),
            "araddr": Out(addr_width), "arprot": Out(3), "arvalid": Out(1), "arready": In(1),
            "rdata": In(32), "rresp": In(2), "rvalid": In(1), "rready": Out(1),
        })

    @property
    def addr_width(self):
        return self._addr_width

    def __eq__(self, other):
        return type(other) is type(self) and other.addr_width == self.addr_width

    def __hash__(self):
        return hash(self._addr_width)

    def __repr__(self):
        return f"AXI4LiteSignature(addr_width={self._addr_width})"


class AXI4LiteToWishbone(wiring.Component):
    """An AXI4-Lite subordinate onto a 32-bit Wishbone B4 initiator port.

    One transaction at a time: a write is taken when both its address and its data are
    valid (``awready`` and ``wready`` together), a read when its address is; writes go
    first when both are waiting. Each becomes one Wishbone cycle (``cyc`` held, one
    ``stb`` taken when ``stall`` is low, then the ``ack``); the response is held until the
    manager takes it. The word address is ``addr[2:]``; ``awprot``/``arprot`` are
    ignored. The Wishbone target has no byte enables (granularity 32): a write whose
    ``wstrb`` is not ``0b1111`` writes nothing and is answered SLVERR; every other
    transaction OKAY.

    Parameters
    ----------
    addr_width : int
        AXI byte address width (3..32); the Wishbone word address has 2 bits fewer.
    pipelined : bool
        Whether ``wb`` has ``stall`` (pipelined B4, as the core's default) or not
        (classic B4: ``stb`` is held until ``ack``).

    Members
    -------
    axi : In(AXI4LiteSignature(addr_width))
    wb : Out(wishbone.Signature(addr_width=addr_width - 2, data_width=32, ...))

    Latency: a read's ``rvalid`` 2 cycles after the core's ``ack`` is due (the request
    and the response registers); throughput one transaction per target latency + 3 cycles.
    """

    def __init__(self, addr_width=32, pipelined=True):
        check_int("addr_width", addr_width, 3, 32)
        self._pipelined = bool(pipelined)
        super().__init__({
            "axi": In(AXI4LiteSignature(addr_width)),
            "wb": Out(WishboneSignature(addr_width=addr_width - 2, data_width=32,
                                        features={"stall"} if pipelined else ())),
        })

    def elaborate(self, platform):
        m = Module()
        axi, wb = self.axi, self.wb
        m.d.comb += wb.sel.eq(1)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(axi.awvalid & axi.wvalid):
                    m.d.comb += [axi.awready.eq(1), axi.wready.eq(1)]
                    with m.If(axi.wstrb == 0b1111):
                        m.d.sync += [wb.adr.eq(axi.awaddr[2:]), wb.dat_w.eq(axi.wdata),
                                     wb.we.eq(1), wb.cyc.eq(1), wb.stb.eq(1)]
                        m.next = "WAIT"
                    with m.Else():
                        m.d.sync += [axi.bresp.eq(Resp.SLVERR), axi.bvalid.eq(1)]
                        m.next = "B"
                with m.Elif(axi.arvalid):
                    m.d.comb += axi.arready.eq(1)
                    m.d.sync += [wb.adr.eq(axi.araddr[2:]), wb.we.eq(0), wb.cyc.eq(1),
                                 wb.stb.eq(1)]
                    m.next = "WAIT"
            with m.State("WAIT"):
                if self._pipelined:
                    with m.If(~wb.stall):
                        m.d.sync += wb.stb.eq(0)      # the request is taken
                with m.If(wb.ack):
                    m.d.sync += [wb.cyc.eq(0), wb.stb.eq(0)]
                    with m.If(wb.we):
                        m.d.sync += [axi.bresp.eq(Resp.OKAY), axi.bvalid.eq(1)]
                        m.next = "B"
                    with m.Else():
                        m.d.sync += [axi.rdata.eq(wb.dat_r), axi.rresp.eq(Resp.OKAY),
                                     axi.rvalid.eq(1)]
                        m.next = "R"
            with m.State("B"):
                with m.If(axi.bready):
                    m.d.sync += axi.bvalid.eq(0)
                    m.next = "IDLE"
            with m.State("R"):
                with m.If(axi.rready):
                    m.d.sync += axi.rvalid.eq(0)
                    m.next = "IDLE"
        return m
