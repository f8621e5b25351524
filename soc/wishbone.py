"""Wishbone B4 for the accelerator core: a bus signature with amaranth-soc's member names,
the core's Wishbone -> word-bus adapter and the word-bus -> Wishbone bridge the SoC's host
link masters it through.

The signature follows ``amaranth_soc.wishbone.bus.Signature`` (amaranth-soc is not a
dependency): members ``adr``, ``dat_w``, ``dat_r``, ``sel``, ``cyc``, ``stb``, ``we``,
``ack`` and, by ``features``, ``err``, ``rty``, ``stall``, ``lock``, ``cti``, ``bte``, seen
from the initiator (master): ``Out`` for what it drives. As in amaranth-soc, ``adr``
addresses ``data_width``-bit words and ``sel`` has ``data_width // granularity`` bits; a
bus with the ``stall`` feature is a *pipelined* B4 bus (a request is taken in every cycle
with ``cyc & stb & ~stall``; one ``ack`` per request, in order), one without it a
*classic* B4 bus (the initiator holds ``stb`` until it sees ``ack``).
"""

from amaranth import Cat, Module, Signal
from amaranth.lib import enum, wiring
from amaranth.lib.wiring import In, Out

from ..lib.params import check_int
from .bus import BusSignature

__all__ = ["Signature", "CycleType", "BurstTypeExt", "Feature", "WishboneToWordBus",
           "WordBusToWishbone"]


class CycleType(enum.Enum, shape=3):
    """Wishbone registered cycle type (``cti``), as amaranth-soc's."""
    CLASSIC = 0b000
    CONST_BURST = 0b001
    INCR_BURST = 0b010
    END_OF_BURST = 0b111


class BurstTypeExt(enum.Enum, shape=2):
    """Wishbone burst type extension (``bte``), as amaranth-soc's."""
    LINEAR = 0b00
    WRAP_4 = 0b01
    WRAP_8 = 0b10
    WRAP_16 = 0b11


#: the optional members (amaranth-soc's ``wishbone.Feature`` values)
Feature = ("err", "rty", "stall", "lock", "cti", "bte")


class Signature(wiring.Signature):
    """A Wishbone B4 bus, seen from the initiator.

    Parameters
    ----------
    addr_width : int
        Width of ``adr`` (a word address: words of ``data_width`` bits).
    data_width : int
        8, 16, 32 or 64.
    granularity : int or None
        The smallest unit ``sel`` selects (8, 16, 32 or 64, at most ``data_width``);
        ``None``: ``data_width`` (``sel`` is one bit).
    features : iterable of str
        Optional members: :data:`Feature` (``"stall"``: a pipelined bus).
    """

    def __init__(self, *, addr_width, data_width, granularity=None, features=()):
        check_int("addr_width", addr_width, 0, 64)
        if data_width not in (8, 16, 32, 64):
            raise ValueError(f"data_width must be 8, 16, 32 or 64, not {data_width!r}")
        granularity = data_width if granularity is None else granularity
        if granularity not in (8, 16, 32, 64) or granularity > data_width:
            raise ValueError(f"granularity must be 8, 16, 32 or 64 and at most data_width "
                             f"= {data_width}, not {granularity!r}")
        features = frozenset(features)
        unknown = sorted(features - set(Feature))
        if unknown:
            raise ValueError(f"unknown Wishbone feature(s) {', '.join(unknown)}; features: "
                             f"{', '.join(Feature)}")
        self._addr_width, self._data_width = addr_width, data_width
        self._granularity, self._features = granularity, features
        members = {
            "adr": Out(addr_width),
            "dat_w": Out(data_width),
            "dat_r": In(data_width),
            "sel": Out(data_width // granularity),
            "cyc": Out(1),
            "stb": Out(1),
            "we": Out(1),
            "ack": In(1),
        }
        if "err" in features:
            members["err"] = In(1)
        if "rty" in features:
            members["rty"] = In(1)
        if "stall" in features:
            members["stall"] = In(1)
        if "lock" in features:
            members["lock"] = Out(1)
        if "cti" in features:
            members["cti"] = Out(CycleType)
        if "bte" in features:
            members["bte"] = Out(BurstTypeExt)
        super().__init__(members)

    @property
    def addr_width(self):
        return self._addr_width

    @property
    def data_width(self):
        return self._data_width

    @property
    def granularity(self):
        return self._granularity

    @property
    def features(self):
        return self._features

    @property
    def pipelined(self):
        """Whether the bus is pipelined (it has ``stall``)."""
        return "stall" in self._features

    def __eq__(self, other):
        return (type(other) is type(self) and other.addr_width == self.addr_width
                and other.data_width == self.data_width
                and other.granularity == self.granularity and other.features == self.features)

    def __hash__(self):
        return hash((self.addr_width, self.data_width, self.granularity, self.features))

    def __repr__(self):
        return (f"wishbone.Signature(addr_width={self.addr_width}, "
                f"data_width={self.data_width}, granularity={self.granularity}, "
                f"features={set(self.features) or '{}'})")


class WishboneToWordBus(wiring.Component):
    """A 32-bit Wishbone target in front of a word-bus (:class:`~mxhw.soc.bus.BusSignature`)
    slave whose read data follows a request by exactly ``latency`` cycles and that takes
    one access per cycle.

    Every request taken is one word-bus access in the same cycle (a write only when its
    one ``sel`` bit is set; granularity 32: the word bus has no byte enables) and is
    acknowledged ``latency`` cycles later, ``dat_r`` then holding the read data.
    Pipelined (``stall`` present, always 0): a request every cycle. Classic: a request is
    taken only while none is in flight, so the initiator's ``stb``, held through the
    ``ack`` cycle, starts no second access. Dropping ``cyc`` cancels the acknowledgements
    still due (the accesses themselves are done).

    Members
    -------
    wb : In(Signature(addr_width=addr_width, data_width=32, features=...))
    bus : Out(BusSignature(addr_width))
    """

    def __init__(self, addr_width=30, latency=1, pipelined=True):
        check_int("addr_width", addr_width, 1, 30)
        check_int("latency", latency, 1, 16)
        self._latency, self._pipelined = latency, bool(pipelined)
        super().__init__({
            "wb": In(Signature(addr_width=addr_width, data_width=32,
                               features={"stall"} if pipelined else ())),
            "bus": Out(BusSignature(addr_width)),
        })

    def elaborate(self, platform):
        m = Module()
        wb, bus = self.wb, self.bus
        inflight = Signal(self._latency)    # bit i: a request taken i + 1 cycles ago
        take = Signal()
        if self._pipelined:
            m.d.comb += [take.eq(wb.cyc & wb.stb), wb.stall.eq(0)]
        else:
            m.d.comb += take.eq(wb.cyc & wb.stb & (inflight == 0))
        m.d.sync += inflight.eq(Cat(take, inflight[:-1]))
        with m.If(~wb.cyc):
            m.d.sync += inflight.eq(0)
        m.d.comb += [bus.addr.eq(wb.adr), bus.w_data.eq(wb.dat_w),
                     bus.w_en.eq(take & wb.we & wb.sel[0]), bus.r_en.eq(take & ~wb.we),
                     wb.ack.eq(inflight[-1] & wb.cyc), wb.dat_r.eq(bus.r_data)]
        return m


class WordBusToWishbone(wiring.Component):
    """A word-bus master (the host link) onto a pipelined 32-bit Wishbone target that
    never stalls and answers every request a fixed number of cycles later (the
    :class:`~mxhw.soc.core.AcceleratorCore`): each word-bus access is one request in the
    same cycle, ``r_data`` is ``dat_r`` (the master is told the target's latency).
    Combinational.

    Members
    -------
    bus : In(BusSignature(addr_width))
    wb : Out(Signature(addr_width=addr_width, data_width=32, features={"stall"}))
    """

    def __init__(self, addr_width=30):
        super().__init__({
            "bus": In(BusSignature(addr_width)),
            "wb": Out(Signature(addr_width=addr_width, data_width=32, features={"stall"})),
        })

    def elaborate(self, platform):
        m = Module()
        bus, wb = self.bus, self.wb
        req = bus.r_en | bus.w_en
        m.d.comb += [wb.adr.eq(bus.addr), wb.dat_w.eq(bus.w_data), wb.sel.eq(1),
                     wb.cyc.eq(req), wb.stb.eq(req), wb.we.eq(bus.w_en),
                     bus.r_data.eq(wb.dat_r)]
        return m
