"""The accelerator core: registers, scratchpad and compute units behind a Wishbone B4 port.

:class:`AcceleratorCore` is everything of the SoC but the host link, the UART and the
board's clocking. An Amaranth design connects its ``bus`` (a
:class:`~mxhw.soc.wishbone.Signature` with amaranth-soc's member names) with
``wiring.connect``; ``python -m mxhw.export core --config KEY=VALUE ...`` writes it as
Verilog. :func:`render_map` renders its register and memory map (``docs/core.md``) from
:data:`mxhw.soc.top.REGS` and :mod:`mxhw.soc.regmap`.
"""

from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..mem import BlockRAM
from .bus import BusSignature, word_select
from .gemv_map import GEMV_BASE, GEMV_REGION, GEMV_REGISTERS
from .regmap import GEMM_BASE, REGION, REGION_SHIFT, REGISTERS, UNIT_ADDR_BITS
from .top import ID_VALUE, REGS, SCRATCHPAD_BASE, VERSION, SoCConfig
from .wishbone import Signature as WishboneSignature, WishboneToWordBus

__all__ = ["AcceleratorCore", "CoreDecode", "REG_DOCS", "render_map"]

#: what the core's own registers (:data:`mxhw.soc.top.REGS`) hold: name -> (access, doc)
REG_DOCS = {
    "ID": ("R", f"0x{ID_VALUE:08X} (\"MXHW\")"),
    "VERSION": ("R", "major << 16 | minor << 8 | patch"),
    "FEATURES": ("R", "log2(scratch_words) in bits 0-7; bit 8: a GEMM unit exists; bit 9: "
                 "its dataflow (0 output-stationary, 1 weight-stationary); bit 10: a program "
                 "sequencer; bit 11: the on-chip activation path; bit 12: a GEMV unit "
                 "(its registers at 0x3000_0000)"),
    "CLK_HZ": ("R", "the clock frequency the core was built for"),
    "CYCLES": ("R", "free-running cycle counter (wraps)"),
    "LINK_ERRORS": ("R", "error responses of the host link in front (the core's "
                    "`link_errors` input; 0 without one)"),
    "SCRATCH": ("R/W", "a plain read/write register"),
}


class CoreDecode(wiring.Component):
    """The core's word-bus slave: registers, scratchpad and compute units, read data
    :attr:`READ_LATENCY` cycles after a read (0 in the cycles after no read), one access
    per cycle.

    The bus is registered twice (request; then the address decode, as flags beside the
    request); each slave's read data is registered on its own (the scratchpad's in its
    block RAM's output register on ECP5) and ``bus.r_data`` is the OR of those registers:
    no address compare lies between a request register and a slave, and no logic follows a
    block RAM's output.

    Members
    -------
    bus : In(BusSignature())
    link_errors : In(16)
    busy : Out(1)
        Some compute unit is busy.
    """

    READ_LATENCY = 4

    def __init__(self, config: SoCConfig):
        if not isinstance(config, SoCConfig):
            raise TypeError(f"config must be a SoCConfig, not {config!r}")
        self._config = config
        super().__init__({"bus": In(BusSignature()), "link_errors": In(16), "busy": Out(1)})

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        src = self.bus
        # read latency 2: on ECP5 the second stage is the block RAM's output register
        m.submodules.scratch = spad = BlockRAM(32, max(cfg.scratch_words, 2), read_latency=2)

        cycles = Signal(32)
        scratch = Signal(32)
        m.d.sync += cycles.eq(cycles + 1)

        bq = BusSignature().flip().create(path=("bus_q",))
        m.d.sync += [bq.addr.eq(src.addr), bq.w_data.eq(src.w_data),
                     bq.w_en.eq(src.w_en), bq.r_en.eq(src.r_en)]
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
        busy = 0
        units = cfg.units()
        for i, (base, unit) in enumerate(units):
            m.submodules["gemv" if base == GEMV_BASE else f"gemm{i}" if i else "gemm"] = unit
            hit = Signal(name=f"unit_hit{i}")
            m.d.sync += hit.eq(bq.addr[UNIT_ADDR_BITS:] == (base >> 2) >> UNIT_ADDR_BITS)
            m.d.comb += [unit.bus.addr.eq(bus.addr[:UNIT_ADDR_BITS]),
                         unit.bus.w_data.eq(bus.w_data), unit.bus.w_en.eq(bus.w_en & hit),
                         unit.bus.r_en.eq(bus.r_en & hit)]
            # a unit's read data is 0 unless it was asked for a read
            eng_data = eng_data | unit.bus.r_data
            busy = busy | unit.busy
        m.d.comb += self.busy.eq(busy)
        linked = [u for _, u in units if "gemv" in u.signature.members
                  or "prog" in u.signature.members]
        if len(linked) == 2:        # the GEMM unit's program sequencer drives the GEMV unit
            wiring.connect(m, linked[0].gemv, linked[1].prog)
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
            REGS["LINK_ERRORS"]: self.link_errors,
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
        # one register. The master reads the OR of the two, one LUT level.
        spad_v, other_q = Signal(), Signal(32, reset_less=True)
        m.d.sync += [spad_v.eq(read_spad),
                     other_q.eq((read_regs.replicate(32) & reg_data) | eng_data)]
        m.d.comb += src.r_data.eq((spad_v.replicate(32) & spad.r_data) | other_q)
        return m


class AcceleratorCore(wiring.Component):
    """The accelerator core on a Wishbone B4 bus: registers, scratchpad, compute units.

    Parameters
    ----------
    config : SoCConfig
        What it is built with (``clk_hz`` fills CLK_HZ; ``baud`` and ``max_payload``
        concern the host link only and are ignored).
    pipelined : bool
        ``True`` (default): a pipelined B4 target (``stall`` member, always 0: a request
        every cycle); ``False``: classic B4 (no ``stall``; one request in flight).

    Members
    -------
    bus : In(wishbone.Signature(addr_width=30, data_width=32, granularity=32, features=...))
        Byte address ``4 * adr``; the map is :func:`render_map`. Every request is
        acknowledged :attr:`LATENCY` cycles after it is taken, in order; reads of unmapped
        addresses return 0, writes to them are ignored; ``sel`` (one bit) gates writes.
    link_errors : In(16)
        Read back in LINK_ERRORS (for a host link in front; leave unconnected: 0).
    busy : Out(1)
        A compute unit is busy.
    """

    #: cycles from a request taken to its ``ack``
    LATENCY = CoreDecode.READ_LATENCY

    def __init__(self, config: SoCConfig = SoCConfig(), *, pipelined=True):
        if not isinstance(config, SoCConfig):
            raise TypeError(f"config must be a SoCConfig, not {config!r}")
        self._config = config
        self._pipelined = bool(pipelined)
        super().__init__({
            "bus": In(WishboneSignature(addr_width=30, data_width=32,
                                        features={"stall"} if pipelined else ())),
            "link_errors": In(16),
            "busy": Out(1),
        })

    @property
    def config(self):
        return self._config

    @property
    def pipelined(self):
        return self._pipelined

    def elaborate(self, platform):
        m = Module()
        m.submodules.adapter = adapter = WishboneToWordBus(30, self.LATENCY, self._pipelined)
        m.submodules.decode = decode = CoreDecode(self._config)
        wiring.connect(m, wiring.flipped(self.bus), adapter.wb)
        wiring.connect(m, adapter.bus, decode.bus)
        m.d.comb += [decode.link_errors.eq(self.link_errors), self.busy.eq(decode.busy)]
        return m


def _cell(text):
    return str(text).replace("|", "\\|")


def _hex(v):
    return f"0x{v >> 16:04X}_{v & 0xFFFF:04X}"


def render_map() -> str:
    """The core's register and memory map as Markdown (byte addresses), from
    :data:`mxhw.soc.top.REGS`, :data:`REG_DOCS` and :mod:`mxhw.soc.regmap`."""
    lines = ["| byte address | access | name | meaning |", "|---|---|---|---|"]
    for name, addr in sorted(REGS.items(), key=lambda kv: kv[1]):
        access, doc = REG_DOCS[name]
        lines.append(f"| {_hex(addr)} | {access} | {name} | {_cell(doc)} |")
    lines.append(f"| {_hex(SCRATCHPAD_BASE)} | R/W | scratchpad | `scratch_words` words "
                 f"(block RAM) |")
    lines.append(f"| {_hex(GEMM_BASE)} | | GEMM unit | when `rows > 0`: the regions "
                 f"below |")
    lines += ["", "GEMM unit regions (each `2**REGION_SHIFT` = "
              f"{1 << REGION_SHIFT} words):", "",
              "| byte address | region |", "|---|---|"]
    for name, rid in sorted(REGION.items(), key=lambda kv: kv[1]):
        lines.append(f"| {_hex(GEMM_BASE + 4 * (rid << REGION_SHIFT))} | {name} |")
    lines += ["", "GEMM unit registers (region `regs`):", "",
              "| byte address | access | name | dataflows | meaning |", "|---|---|---|---|---|"]
    for r in REGISTERS:
        flows = ", ".join(r.dataflows) if r.dataflows else "all"
        lines.append(f"| {_hex(GEMM_BASE + r.offset)} | {r.access} | {r.name} | {flows} | "
                     f"{_cell(r.doc)} |")
    lines += ["", f"GEMV unit (when `gemv_pes > 0`, at {_hex(GEMV_BASE)}; docs/gemv.md) "
              "regions and registers:", "", "| byte address | region |", "|---|---|"]
    for name, rid in sorted(GEMV_REGION.items(), key=lambda kv: kv[1]):
        lines.append(f"| {_hex(GEMV_BASE + 4 * (rid << REGION_SHIFT))} | {name} |")
    lines += ["", "| byte address | access | name | meaning |", "|---|---|---|---|"]
    for r in GEMV_REGISTERS:
        lines.append(f"| {_hex(GEMV_BASE + r.offset)} | {r.access} | {r.name} | "
                     f"{_cell(r.doc)} |")
    lines += ["", "Reads of unmapped addresses return 0; writes to them are ignored."]
    return "\n".join(lines) + "\n"
