"""The accelerator SoC: host link, registers, scratchpad, and the compute engine slot.

Address map (byte addresses; every register is a 32-bit word):

=========== ======== ==================================================================
address     access   meaning
=========== ======== ==================================================================
0x0000_0000 R        ID: 0x4D58_4857 ("MXHW")
0x0000_0004 R        VERSION: major << 16 | minor << 8 | patch
0x0000_0008 R        FEATURES: the built configuration, see :meth:`SoCConfig.features`
0x0000_000C R        CLK_HZ: the system clock frequency the SoC was built for
0x0000_0010 R        CYCLES: free-running cycle counter (wraps)
0x0000_0014 R        LINK_ERRORS: error responses sent by the host link (saturating)
0x0000_0020 R/W      SCRATCH: a plain read/write register (link tests, host probing)
0x1000_0000 R/W      scratchpad: ``scratch_words`` words of block RAM
0x2000_0000 R/W      the GEMM unit (when ``rows > 0``): :mod:`mxhw.soc.gemm`, its map in
                     :mod:`mxhw.soc.regmap` and ``soc/PROTOCOL.md``
=========== ======== ==================================================================

Reads of unmapped addresses return 0; writes to them are ignored.
"""


from dataclasses import dataclass

from amaranth import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .. import golden
from ..lib.params import check_choice, check_int, check_pow2
from ..mem import BlockRAM
from ..systolic.array import DATAFLOWS
from .bus import BusSignature, word_select
from .gemm import GemmUnit, unit_format
from .regmap import DATAFLOW_IDS, GEMM_BASE, UNIT_ADDR_BITS
from .link import HostLink
from .uart import UARTRx, UARTTx

__all__ = ["SoCConfig", "SoC", "REGS", "ID_VALUE", "VERSION", "SCRATCHPAD_BASE", "DATAFLOWS"]

ID_VALUE = 0x4D584857
VERSION = (0, 1, 0)
SCRATCHPAD_BASE = 0x1000_0000

#: register name -> byte address
REGS = {
    "ID": 0x00, "VERSION": 0x04, "FEATURES": 0x08, "CLK_HZ": 0x0C, "CYCLES": 0x10,
    "LINK_ERRORS": 0x14, "SCRATCH": 0x20,
}


@dataclass(frozen=True)
class SoCConfig:
    """What a SoC is built with.

    Parameters
    ----------
    clk_hz : int
        System clock frequency (for the UART divisor and the CLK_HZ register).
    baud : int
        UART baud rate.
    scratch_words : int
        Scratchpad size in 32-bit words (a power of two).
    max_payload : int
        Largest link packet payload in bytes.
    rows, cols : int
        The GEMM unit's systolic array (``rows = 0``: no GEMM unit).
    fmt_a, fmt_b : str
        Its operand block formats, golden names or aliases (``"mxfp4"``), held by their
        canonical names; keys of ``mxhw.soc.regmap.FORMAT_IDS`` (checked when ``rows >
        0``; MXSF, which the arrays take, is not one: the operand memories carry no block
        modes).
    acc_width, acc_frac : int
        Its accumulation: ``golden.fixed(acc_width, acc_frac)`` (saturating, floor).
    max_k : int
        Largest K of one tile (operand memory depth).
    a_tiles : int
        Row blocks of A (``rows x max_k`` each) the GEMM unit's A memories hold (a power of
        two): the driver loads up to this many once and streams B past them.
    dataflow : str
        The GEMM unit's dataflow (:data:`mxhw.systolic.array.DATAFLOWS`):
        ``"output_stationary"`` (``rows x cols`` tiles) or ``"weight_stationary"``
        (``depth x cols`` tiles, ``rows`` K elements per pass).
    depth : int
        Weight-stationary only: activation rows per pass, the output tile's height
        (1..255); 0 (the default) means ``rows``. Must be 0 for the output-stationary unit.
    """

    clk_hz: int = 25_000_000
    baud: int = 1_000_000
    scratch_words: int = 1024
    max_payload: int = 1024
    rows: int = 4
    cols: int = 4
    fmt_a: str = "mxfp4_e2m1"
    fmt_b: str = "mxfp4_e2m1"
    acc_width: int = 32
    acc_frac: int = 16
    max_k: int = 256
    a_tiles: int = 1
    dataflow: str = "output_stationary"
    depth: int = 0

    def __post_init__(self):
        for name in ("rows", "cols", "acc_frac", "depth"):
            check_int(name, getattr(self, name), 0)
        for name in ("clk_hz", "baud", "max_payload", "acc_width", "max_k"):
            check_int(name, getattr(self, name), 1)
        check_pow2("scratch_words", self.scratch_words)
        check_pow2("a_tiles", self.a_tiles)
        check_choice("dataflow", self.dataflow, DATAFLOWS)
        if self.depth and self.dataflow != "weight_stationary":
            raise ValueError(f"depth applies to the weight-stationary dataflow only, not "
                             f"{self.dataflow!r} (leave it 0)")
        for name in ("fmt_a", "fmt_b"):
            # golden names: an alias (``mxfp4``) becomes the canonical name
            f = getattr(self, name)
            f = unit_format(name, f) if self.rows else golden.formats.get(f).name
            object.__setattr__(self, name, f)
        if self.a_tiles > 1 and self.dataflow != "output_stationary":
            raise ValueError("a_tiles applies to the output-stationary dataflow only "
                             "(leave it 1)")

    @property
    def acc(self):
        return golden.fixed(self.acc_width, self.acc_frac, overflow="saturate",
                            rounding="floor")

    @property
    def tile_depth(self):
        """The weight-stationary unit's tile height: ``depth``, or ``rows`` when 0."""
        return self.depth or self.rows

    def units(self):
        """The compute units on the bus: ``(byte base address, component)`` pairs (each
        decodes ``2**UNIT_ADDR_BITS`` words); the GEMM unit when ``rows > 0``."""
        if not self.rows:
            return []
        ws = self.dataflow == "weight_stationary"
        return [(GEMM_BASE, GemmUnit(self.rows, self.cols, self.fmt_a, self.fmt_b, self.acc,
                                     self.max_k, self.a_tiles, dataflow=self.dataflow,
                                     depth=self.tile_depth if ws else None))]

    def features(self) -> int:
        """FEATURES register: log2(scratch_words) in bits 0-7; bit 8: a GEMM unit exists
        (its own registers describe it); bit 9: its dataflow (0 output-stationary,
        1 weight-stationary; also GEOMETRY bit 24)."""
        return ((self.scratch_words.bit_length() - 1) | (self.rows > 0) << 8
                | (self.rows > 0 and DATAFLOW_IDS[self.dataflow]) << 9)


class SoC(wiring.Component):
    """The SoC core, between a byte stream and the registers/scratchpad/engine.

    Members
    -------
    rx : In(stream.Signature(8))
        Request bytes (from a UART receiver, or fed directly in simulation).
    tx : Out(stream.Signature(8))
        Response bytes.
    """

    #: cycles from the host link's bus read request to its read data: the request
    #: register, the decode register beside the second request register, the slave's
    #: read (block RAM or register), the per-source read-data register (for the
    #: scratchpad, its block RAM's output register on ECP5)
    READ_LATENCY = 4

    def __init__(self, config: SoCConfig = SoCConfig(), *, timeout_cycles=None,
                 quiet_cycles=None):
        if not isinstance(config, SoCConfig):
            raise TypeError(f"config must be a SoCConfig, not {config!r}")
        self._config = config
        # watchdog: 100 ms; quiet gap after a bad header: 20 byte times
        byte_cycles = 10 * config.clk_hz // config.baud
        self._timeout = timeout_cycles or max(16, config.clk_hz // 10)
        self._quiet = quiet_cycles or max(16, 20 * byte_cycles)
        super().__init__({
            "rx": In(stream.Signature(8)),
            "tx": Out(stream.Signature(8)),
        })

    @property
    def config(self):
        return self._config

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        # the bus from the link is registered twice (request; then the address decode, as
        # flags beside the request); each slave's read data is registered on its own (the
        # scratchpad's in its block RAM's output register on ECP5) and the link takes the
        # OR of those registers: reads take READ_LATENCY cycles, no path runs from the
        # link's FSM into a slave, no address compare lies between a request register and
        # a slave, and no logic follows a block RAM's output
        m.submodules.link = link = HostLink(cfg.max_payload, self._timeout, self._quiet,
                                            read_latency=self.READ_LATENCY)
        wiring.connect(m, wiring.flipped(self.rx), link.rx)
        wiring.connect(m, link.tx, wiring.flipped(self.tx))

        # read latency 2: on ECP5 the second stage is the block RAM's output register
        m.submodules.scratch = spad = BlockRAM(32, max(cfg.scratch_words, 2), read_latency=2)

        cycles = Signal(32)
        scratch = Signal(32)
        m.d.sync += cycles.eq(cycles + 1)

        bq = BusSignature().flip().create(path=("bus_q",))
        m.d.sync += [bq.addr.eq(link.bus.addr), bq.w_data.eq(link.bus.w_data),
                     bq.w_en.eq(link.bus.w_en), bq.r_en.eq(link.bus.r_en)]
        bus = BusSignature().flip().create(path=("bus_d",))
        m.d.sync += [bus.addr.eq(bq.addr), bus.w_data.eq(bq.w_data), bus.w_en.eq(bq.w_en),
                     bus.r_en.eq(bq.r_en)]
        # decode flags, registered beside ``bus``: the scratchpad's word addresses are
        # SCRATCHPAD_BASE/4 + [0, scratch_words), with scratch_words a power of two; the
        # registers are words 0 .. 2**rbits - 1
        ibits = cfg.scratch_words.bit_length() - 1
        rbits = (max(REGS.values()) >> 2).bit_length()
        spad_hit, regs_hit = Signal(), Signal()
        m.d.sync += [spad_hit.eq(bq.addr[ibits:] == (SCRATCHPAD_BASE >> 2) >> ibits),
                     regs_hit.eq(bq.addr[rbits:] == 0)]
        eng_data = 0
        for i, (base, unit) in enumerate(cfg.units()):
            m.submodules[f"gemm{i}" if i else "gemm"] = unit
            hit = Signal(name=f"unit_hit{i}")
            m.d.sync += hit.eq(bq.addr[UNIT_ADDR_BITS:] == (base >> 2) >> UNIT_ADDR_BITS)
            m.d.comb += [unit.bus.addr.eq(bus.addr[:UNIT_ADDR_BITS]),
                         unit.bus.w_data.eq(bus.w_data), unit.bus.w_en.eq(bus.w_en & hit),
                         unit.bus.r_en.eq(bus.r_en & hit)]
            # a unit's read data is 0 unless it was asked for a read
            eng_data = eng_data | unit.bus.r_data
        widx = bus.addr[:ibits]
        m.d.comb += [spad.w_addr.eq(widx), spad.w_data.eq(bus.w_data),
                     spad.w_en.eq(bus.w_en & spad_hit), spad.r_addr.eq(widx)]

        major, minor, patch = VERSION
        regs = {
            REGS["ID"]: ID_VALUE,
            REGS["VERSION"]: major << 16 | minor << 8 | patch,
            REGS["FEATURES"]: cfg.features(),
            REGS["CLK_HZ"]: cfg.clk_hz,
            REGS["CYCLES"]: cycles,
            REGS["LINK_ERRORS"]: link.errors,
            REGS["SCRATCH"]: scratch,
        }
        with m.If(bus.w_en & regs_hit & (bus.addr[:rbits] == REGS["SCRATCH"] >> 2)):
            m.d.sync += scratch.eq(bus.w_data)

        # reads: registers answer on the next cycle, like the scratchpad's read port (a
        # multiplexer on the low word-address bits, registered every cycle: reads have no
        # side effects; whether the registers were read is a flag beside it, applied in
        # the next stage, so no read decode lies in front of the 32 data flip-flops)
        reg_data = Signal(32, reset_less=True)     # written every cycle: no reset
        read_spad, read_regs = Signal(), Signal()
        word, _ = word_select({a >> 2: v for a, v in regs.items()}, bus.addr, rbits)
        m.d.sync += [reg_data.eq(word), read_spad.eq(bus.r_en & spad_hit),
                     read_regs.eq(bus.r_en & regs_hit)]
        # one more register stage per source: the scratchpad's second read stage (on ECP5
        # the block RAM's output register), its hit flag beside it; the registers' word
        # (cleared unless read) and the GEMM unit's (already 0 unless read) are ORed into
        # one register. The link reads the OR of the two, one LUT level.
        spad_v, other_q = Signal(), Signal(32, reset_less=True)
        m.d.sync += [spad_v.eq(read_spad),
                     other_q.eq((read_regs.replicate(32) & reg_data) | eng_data)]
        m.d.comb += [bus.r_data.eq((spad_v.replicate(32) & spad.r_data) | other_q),
                     link.bus.r_data.eq(bus.r_data)]
        return m


class BoardSoC(wiring.Component):
    """The SoC with a UART on pins: ``rx``/``tx`` are the serial lines.

    Members
    -------
    rx : In(1)
    tx : Out(1)
    """

    rx: In(1, init=1)
    tx: Out(1, init=1)

    def __init__(self, config: SoCConfig = SoCConfig()):
        self._config = config
        super().__init__()

    def elaborate(self, platform):
        from .uart import divisor_for
        m = Module()
        cfg = self._config
        div = divisor_for(cfg.clk_hz, cfg.baud)
        m.submodules.core = core = SoC(cfg)
        m.submodules.urx = urx = UARTRx(div)
        m.submodules.utx = utx = UARTTx(div)
        m.d.comb += [urx.rx.eq(self.rx), self.tx.eq(utx.tx)]
        # the received bytes through one register (the core takes every byte: its
        # rx.ready is 1), so the receiver, placed by the pins, is one flip-flop-to-flip-flop
        # route away from the host link's receive stage (where the byte's compares sit)
        m.d.comb += urx.o.ready.eq(1)
        m.d.sync += [core.rx.valid.eq(urx.o.valid), core.rx.payload.eq(urx.o.payload)]
        # the response bytes through a one-byte buffer whose ready is a flip-flop (not
        # full), so the transmitter's ready, logic of its bit timer, does not reach the
        # host link's state machine (a byte takes 10 bit times to send: the buffer's one
        # idle cycle between bytes costs nothing)
        full = Signal()
        tbyte = Signal(8, reset_less=True)
        m.d.comb += [core.tx.ready.eq(~full), utx.i.valid.eq(full), utx.i.payload.eq(tbyte)]
        with m.If(~full):
            with m.If(core.tx.valid):
                m.d.sync += [tbyte.eq(core.tx.payload), full.eq(1)]
        with m.Elif(utx.i.ready):
            m.d.sync += full.eq(0)
        return m
