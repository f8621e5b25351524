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

Reads of unmapped addresses return 0; writes to them are ignored. The registers, scratchpad
and units are the :class:`~mxhw.soc.core.AcceleratorCore` on Wishbone B4; its map, generated
from the code, is ``docs/core.md`` (:func:`mxhw.soc.core.render_map`).
"""


import dataclasses
from dataclasses import dataclass

from amaranth import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .. import golden
from ..lib.params import check_choice, check_int, check_pow2
from ..systolic.array import DATAFLOWS
from .gemm import GemmUnit, unit_format
from .gemv import LIMITS as GEMV_LIMITS, gemv_unit_for
from .gemv_map import GEMV_BASE
from .regmap import DATAFLOW_IDS, GEMM_BASE, field_range
from .link import HostLink
from .tileunit import MAX_SLOTS, TileGemmUnit, check_tile_unit, tile_unit_format
from .uart import UARTRx, UARTTx

__all__ = ["SoCConfig", "config_overrides", "SoC", "REGS", "ID_VALUE", "VERSION", "SCRATCHPAD_BASE", "DATAFLOWS",
           "LIMITS", "MAX_SCRATCH_WORDS"]

ID_VALUE = 0x4D584857
VERSION = (0, 2, 0)
SCRATCHPAD_BASE = 0x1000_0000

#: register name -> byte address
REGS = {
    "ID": 0x00, "VERSION": 0x04, "FEATURES": 0x08, "CLK_HZ": 0x0C, "CYCLES": 0x10,
    "LINK_ERRORS": 0x14, "SCRATCH": 0x20,
}


#: the largest scratchpad: 65536 words (256 KiB, 128 of the 208 18-kbit block RAMs of the
#: largest supported board's ECP5 LFE5U-85F, leaving the rest to the GEMM unit)
MAX_SCRATCH_WORDS = 1 << 16

#: upper bounds of the :class:`SoCConfig` fields (lower bounds and powers of two are
#: checked as well): the register fields they are reported in
#: (:data:`mxhw.soc.regmap.FIELDS`, the CLK_HZ word), the link's 16-bit length field, and
#: memory sizes that fit the largest supported board (and elaborate in seconds)
LIMITS = {
    "clk_hz": 1_000_000_000,                  # a 32-bit CLK_HZ register; far above any FPGA
    "baud": 12_000_000,                       # the fastest USB-UARTs (FT2232H)
    "scratch_words": MAX_SCRATCH_WORDS,
    "max_payload": 65532,                     # 16-bit length field, whole words
    "rows": 32,                               # GEOMETRY.rows holds 255; the arrays <= 32
    "cols": 32,
    "acc_width": field_range("ACC", "width")[1],
    "max_k": 4096,                            # GEOMETRY.log2_max_k; A/B memories' depth
    "a_tiles": 64,                            # GEOMETRY.log2_a_tiles holds 2**15
    "depth": 255,                             # the weight-stationary unit's tile height
    "b_tiles": 256,                           # CAPS.log2_b_tiles holds 2**15
    "c_tiles": 256,                           # CAPS.log2_c_tiles holds 2**15
    "prog_words": 1024,                       # CAPS.log2_prog_words holds 2**15
    # the GEMV unit's (mxhw.soc.gemv.LIMITS: its GEOMETRY fields)
    **{f"gemv_{k}": GEMV_LIMITS[k] for k in ("pes", "lanes", "max_rows", "max_cols")},
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
        0``; MXSF, whose block modes the A-scale memory holds, as the output-stationary
        unit's ``fmt_a`` only). ``fmt_a = fmt_b = "mxsf_tile"`` builds the tile unit
        (:mod:`mxhw.soc.tileunit`, output-stationary): ``a_tiles`` matrices of up to
        ``max_k x max_k`` stored once each and read as stored or transposed (``rows`` and
        ``cols`` 1, 2 or 4; no B or C tiles, program or activation path).
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
    b_tiles, c_tiles : int
        Output-stationary only: B tiles (``max_k x cols`` weights each) and C tiles
        (``rows x cols`` results each) the unit holds (powers of two): a layer's weights
        stay resident; a program's fixed-point layer writes ``M/rows * N/cols`` C tiles.
    prog_words : int
        Output-stationary only: program memory words (0: no program sequencer; else a
        power of two, at least 4; two words an instruction, ``docs/isa.md``).
    out_fmt : str
        The on-chip activation path's format ("" : none): ``fmt_a`` (its results become
        the next layer's A operand), with ``prog_words > 0`` and ``cols`` dividing 32.
    gemv_pes, gemv_lanes, gemv_max_rows, gemv_max_cols, gemv_act, gemv_families
        The BitMoD bit-serial GEMV unit (``docs/gemv.md``) at ``0x3000_0000``: its PEs
        (0: no GEMV unit), lanes, largest weight matrix, activation format (``mxint8`` or
        ``mxfp8_e4m3``) and weight families (comma-separated); it shares ``acc_width`` and
        ``acc_frac`` with the GEMM unit. ``rows = 0`` with ``gemv_pes > 0`` builds the
        GEMV unit alone. With a GEMM unit that has a program sequencer, ``fmt_a`` the GEMV
        unit's activation format, ``cols`` dividing 32 and ``gemv_max_rows >= 32`` the two
        are linked (:attr:`gemv_linked`): programs run GEMV layers (``docs/isa.md``).
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
    b_tiles: int = 1
    c_tiles: int = 1
    prog_words: int = 0
    out_fmt: str = ""
    gemv_pes: int = 0
    gemv_lanes: int = 4
    gemv_max_rows: int = 64
    gemv_max_cols: int = 256
    gemv_act: str = "mxint8"
    gemv_families: str = "bitmod_fp4,bitmod_fp3,int4,int3"

    def __post_init__(self):
        for name in ("rows", "cols", "acc_frac", "depth"):
            check_int(name, getattr(self, name), 0)
        for name in ("clk_hz", "baud", "max_payload", "acc_width", "max_k"):
            check_int(name, getattr(self, name), 1)
        check_pow2("scratch_words", self.scratch_words)
        check_pow2("a_tiles", self.a_tiles)
        for name in ("b_tiles", "c_tiles", "prog_words"):     # bounds first: LIMITS
            check_int(name, getattr(self, name), None, LIMITS[name])
        check_int("prog_words", self.prog_words, 0)
        check_pow2("b_tiles", self.b_tiles)
        check_pow2("c_tiles", self.c_tiles)
        if self.prog_words:
            check_pow2("prog_words", self.prog_words, 4)
        check_choice("dataflow", self.dataflow, DATAFLOWS)
        if self.depth and self.dataflow != "weight_stationary":
            raise ValueError(f"depth applies to the weight-stationary dataflow only, not "
                             f"{self.dataflow!r} (leave it 0)")
        tile = (tile_unit_format(self.fmt_a, self.fmt_b, self.dataflow) if self.rows
                else None)
        for name in ("fmt_a", "fmt_b"):
            # golden names: an alias (``mxfp4``) becomes the canonical name
            f = getattr(self, name)
            f = ((tile or unit_format(name, f, self.dataflow)) if self.rows
                 else golden.formats.get(f).name)
            object.__setattr__(self, name, f)
        if tile:
            self._check_tile_unit()
        for name in ("a_tiles", "b_tiles", "c_tiles", "prog_words"):
            v = getattr(self, name)
            if v > (0 if name == "prog_words" else 1) and self.dataflow != "output_stationary":
                raise ValueError(f"{name} applies to the output-stationary dataflow only "
                                 f"(leave it {0 if name == 'prog_words' else 1})")
        if not isinstance(self.out_fmt, str):
            raise TypeError(f"out_fmt must be a format name or \"\", not {self.out_fmt!r}")
        if self.out_fmt:
            out = golden.formats.get(self.out_fmt).name
            object.__setattr__(self, "out_fmt", out)
            if out != self.fmt_a or not self.prog_words or not self.rows:
                raise ValueError(f"out_fmt must be fmt_a ({self.fmt_a!r}: the activation "
                                 f"path writes the A memories) and needs a GEMM unit with "
                                 f"a program sequencer (prog_words > 0), not "
                                 f"out_fmt={self.out_fmt!r} with prog_words={self.prog_words}")
            if 32 % self.cols or self.acc_width > 53:
                raise ValueError(f"out_fmt needs cols dividing 32 (not {self.cols}) and "
                                 f"acc_width at most 53 (not {self.acc_width}): the "
                                 f"re-quantiser takes blocks of 32 of acc_width-bit values")
        self._check_bounds()
        self.gemv_unit()        # checks the GEMV unit's fields (elaborates nothing)

    def _check_tile_unit(self):
        """The tile unit (``fmt_a = fmt_b = "mxsf_tile"``): ``a_tiles`` matrix slots, no B
        or C tiles, program sequencer or activation path."""
        extra = {n: getattr(self, n) for n in ("b_tiles", "c_tiles", "prog_words", "out_fmt")
                 if getattr(self, n) != getattr(SoCConfig, n)}
        if extra:
            raise ValueError(f"the tile unit (fmt {self.fmt_a!r}) has no B or C tiles, program "
                             f"sequencer or activation path: leave "
                             f"{', '.join(f'{n}={v!r}' for n, v in extra.items())} at their "
                             f"defaults")
        if self.a_tiles > MAX_SLOTS:
            raise ValueError(f"a_tiles (the tile unit's matrix slots) must be at most "
                             f"{MAX_SLOTS}, not {self.a_tiles}")
        check_tile_unit(self.rows, self.cols, self.fmt_a, self.acc, self.max_k, self.a_tiles)

    def _check_bounds(self):
        """Upper bounds, checked before anything is elaborated (:data:`LIMITS`): what the
        register fields hold (:data:`mxhw.soc.regmap.FIELDS`), the link's 16-bit length
        field, and memories that fit the largest supported board's block RAM."""
        for name, hi in LIMITS.items():
            check_int(name, getattr(self, name), None, hi)
        if self.max_payload % 4:
            raise ValueError(f"max_payload must be a multiple of 4 in [4, 65532], "
                             f"not {self.max_payload}")
        check_int("acc_frac", self.acc_frac, None, field_range("ACC", "frac_bits")[1])

    @property
    def acc(self):
        return golden.fixed(self.acc_width, self.acc_frac, overflow="saturate",
                            rounding="floor")

    @property
    def tile_depth(self):
        """The weight-stationary unit's tile height: ``depth``, or ``rows`` when 0."""
        return self.depth or self.rows

    @property
    def gemv_linked(self):
        """The GEMV unit is driven by the GEMM unit's program sequencer (GEMV instructions,
        :mod:`mxhw.soc.gemv_link`): both built, the sequencer there, the GEMV activation
        format ``fmt_a`` (it copies A rows), ``cols`` dividing 32, ``gemv_max_rows >= 32``."""
        return bool(self.rows and self.gemv_pes and self.prog_words
                    and self.dataflow == "output_stationary"
                    and golden.formats.get(self.gemv_act).name == self.fmt_a
                    and 32 % self.cols == 0 and self.gemv_max_rows >= 32)

    def gemv_unit(self, linked=False):
        """The GEMV unit of this configuration (None when ``gemv_pes`` is 0)."""
        return gemv_unit_for(self.gemv_pes, self.gemv_lanes, self.gemv_max_rows,
                             self.gemv_max_cols, self.gemv_act, self.gemv_families,
                             self.acc_width, self.acc_frac, linked=linked)

    def units(self):
        """The compute units on the bus: ``(byte base address, component)`` pairs (each
        decodes ``2**UNIT_ADDR_BITS`` words): the GEMM unit when ``rows > 0``, the GEMV
        unit when ``gemv_pes > 0``."""
        gemv = self.gemv_unit(self.gemv_linked)
        return self._gemm_units() + ([(GEMV_BASE, gemv)] if gemv else [])

    def _gemm_units(self):
        if not self.rows:
            return []
        if tile_unit_format(self.fmt_a, self.fmt_b, self.dataflow):
            return [(GEMM_BASE, TileGemmUnit(self.rows, self.cols, self.fmt_a, self.acc,
                                             self.max_k, self.a_tiles))]
        ws = self.dataflow == "weight_stationary"
        return [(GEMM_BASE, GemmUnit(self.rows, self.cols, self.fmt_a, self.fmt_b, self.acc,
                                     self.max_k, self.a_tiles, dataflow=self.dataflow,
                                     depth=self.tile_depth if ws else None,
                                     b_tiles=self.b_tiles, c_tiles=self.c_tiles,
                                     prog_words=self.prog_words,
                                     out_fmt=self.out_fmt or None,
                                     gemv=(self.gemv_pes, self.gemv_max_rows,
                                           self.gemv_max_cols) if self.gemv_linked
                                     else None))]

    def features(self) -> int:
        """FEATURES register: log2(scratch_words) in bits 0-7; bit 8: a GEMM unit exists
        (its own registers describe it); bit 9: its dataflow (0 output-stationary,
        1 weight-stationary; also GEOMETRY bit 24); bit 10: it has a program sequencer;
        bit 11: it has the on-chip activation path (its CAPS register: which); bit 12: a
        GEMV unit exists (its registers at ``0x3000_0000``, ``docs/gemv.md``)."""
        g = self.rows > 0
        return ((self.scratch_words.bit_length() - 1) | g << 8
                | (g and DATAFLOW_IDS[self.dataflow]) << 9
                | (g and self.prog_words > 0) << 10 | (g and bool(self.out_fmt)) << 11
                | (self.gemv_pes > 0) << 12)


def config_overrides(items, base=None):
    """``base`` (default ``SoCConfig()``) with the ``KEY=VALUE`` overrides ``items`` (the
    ``--config`` arguments of the command lines): integer fields take decimal or 0x
    values, string fields (formats, dataflow) pass as given and :class:`SoCConfig` checks
    them. Raises ``ValueError`` with a one-line message for a bad item or configuration.

    Fields that depend on others follow them unless given too: with ``fmt_a`` overridden,
    a ``base`` activation path (``out_fmt == fmt_a``) takes the new ``fmt_a``; with
    ``dataflow=weight_stationary`` or ``rows=0``, the output-stationary unit's
    ``a_tiles``, ``b_tiles``, ``c_tiles``, ``prog_words`` and ``out_fmt`` return to their
    defaults (one tile each, no sequencer, no activation path)."""
    base = SoCConfig() if base is None else base
    kinds = {f.name: type(getattr(base, f.name)) for f in dataclasses.fields(SoCConfig)}
    updates = {}
    for item in ([items] if isinstance(items, str) else items):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in kinds:
            raise ValueError(f"--config takes KEY=VALUE with KEY one of "
                             f"{', '.join(kinds)}; got {item!r}")
        if key in updates:
            raise ValueError(f"--config {key} given twice")
        if kinds[key] is str:
            updates[key] = value
            continue
        try:
            updates[key] = int(value, 0)
        except ValueError:
            raise ValueError(f"--config {key} needs an integer, not {value!r}") from None
    if "fmt_a" in updates and "out_fmt" not in updates and base.out_fmt \
            and base.out_fmt == base.fmt_a:
        updates["out_fmt"] = updates["fmt_a"]
    if (updates.get("dataflow", base.dataflow) != "output_stationary"
            or updates.get("rows", base.rows) == 0):
        for f in ("a_tiles", "b_tiles", "c_tiles", "prog_words", "out_fmt"):
            updates.setdefault(f, getattr(SoCConfig, f))
    try:
        return dataclasses.replace(base, **updates)
    except (ValueError, TypeError, KeyError) as e:
        raise ValueError(e.args[0] if isinstance(e, KeyError) and e.args else str(e)) \
            from None


class SoC(wiring.Component):
    """The SoC: the host link, a bus master between a byte stream and the
    :class:`~mxhw.soc.core.AcceleratorCore` (registers, scratchpad, compute units), which
    it reaches through Wishbone B4 (pipelined): the link's word bus is bridged onto the
    core's Wishbone port (:class:`~mxhw.soc.wishbone.WordBusToWishbone`).

    Members
    -------
    rx : In(stream.Signature(8))
        Request bytes (from a UART receiver, or fed directly in simulation).
    tx : Out(stream.Signature(8))
        Response bytes.
    """

    #: cycles from the host link's bus read request to its read data: the core's latency
    #: (:attr:`mxhw.soc.core.AcceleratorCore.LATENCY`)
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
        from .core import AcceleratorCore
        from .wishbone import WordBusToWishbone
        m = Module()
        cfg = self._config
        m.submodules.core = core = AcceleratorCore(cfg)
        assert core.LATENCY == self.READ_LATENCY
        m.submodules.link = link = HostLink(cfg.max_payload, self._timeout, self._quiet,
                                            read_latency=self.READ_LATENCY)
        m.submodules.bridge = bridge = WordBusToWishbone()
        wiring.connect(m, wiring.flipped(self.rx), link.rx)
        wiring.connect(m, link.tx, wiring.flipped(self.tx))
        wiring.connect(m, link.bus, bridge.bus)
        wiring.connect(m, bridge.wb, core.bus)
        m.d.comb += core.link_errors.eq(link.errors)
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
