"""mxhw.boards: board wrappers: which platform, which toolchain, the UART pins, and the
default SoC configuration sized for the board.

Clocking: ULX3S runs the SoC from an ECP5 PLL and the Arty boards from an MMCM
(``boards/clocks.py``) at ``clk_hz``; the iCEBreaker (12 MHz) runs from its oscillator.

Default GEMM units: ULX3S a 4x4 MXFP4 systolic array at 150 MHz; iCEBreaker a 2x2 MXFP4
array with a 24-bit accumulator at 12 MHz; Arty A7-35T a 4x4 and A7-100T an 8x8 at
100 MHz. Measured Fmax and utilisation per board: the README and ``docs/build.md``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from amaranth import ClockDomain, Elaboratable, Module

from ..soc.top import BoardSoC, SoCConfig
from .clocks import ECP5_PLL_25MHZ, ECP5PLL, XilinxMMCM, mmcm_params

__all__ = ["Board", "BOARDS", "get_board", "BoardTop"]


@dataclass(frozen=True)
class Board:
    """A supported board.

    Attributes
    ----------
    name : str
    description : str
    platform : str
        ``module:Class`` of its amaranth-boards platform.
    flow : str
        ``"ecp5"`` or ``"ice40"`` (open toolchain from PyPI, bitstream built here) or
        ``"vivado"`` (build tree written here; the bitstream needs Vivado).
    clk_hz : int
        The system clock.
    pll : str or None
        ``"ecp5"``: the system clock comes from an ECP5 PLL fed by the board oscillator
        (frequencies in :data:`~mxhw.boards.clocks.ECP5_PLL_25MHZ`); ``"mmcm"``: from a
        7-series MMCM (any frequency :func:`~mxhw.boards.clocks.mmcm_params` makes exactly);
        ``None``: the system clock is the oscillator.
    osc_hz : int or None
        The oscillator feeding the MMCM (``pll="mmcm"``; the ECP5 PLL table assumes the
        ULX3S's 25 MHz).
    config : SoCConfig
        The default SoC configuration for this board.
    """

    name: str
    description: str
    platform: str
    flow: str
    clk_hz: int
    config: SoCConfig = field(default_factory=SoCConfig)
    pll: str | None = None
    osc_hz: int | None = None

    def check_clock(self, clk_hz):
        """Raise ``ValueError`` unless this board's clocking makes ``clk_hz`` exactly."""
        if self.pll is None and clk_hz != self.clk_hz:
            raise ValueError(f"config.clk_hz ({clk_hz}) must be the {self.name} clock "
                             f"({self.clk_hz}): this board has no PLL stage")
        if self.pll == "ecp5" and (clk_hz % 1_000_000
                                   or clk_hz // 1_000_000 not in ECP5_PLL_25MHZ):
            raise ValueError(f"clk_hz must be one of the PLL's frequencies "
                             f"{', '.join(f'{f}000000' for f in ECP5_PLL_25MHZ)}, "
                             f"not {clk_hz}")
        if self.pll == "mmcm":
            mmcm_params(self.osc_hz, clk_hz)    # ValueError when not exactly possible

    def make_platform(self):
        """A fresh instance of the board's amaranth-boards platform."""
        mod, cls = self.platform.split(":")
        return getattr(importlib.import_module(mod), cls)()


BOARDS = {b.name: b for b in [
    Board("ulx3s", "Radiona ULX3S, ECP5 LFE5U-85F (open toolchain)",
          "amaranth_boards.ulx3s:ULX3S_85F_Platform", "ecp5", 150_000_000,
          SoCConfig(clk_hz=150_000_000, baud=3_000_000, scratch_words=4096, rows=4, cols=4,
                    fmt_a="mxfp4_e2m1", fmt_b="mxfp4_e2m1", max_k=256), pll="ecp5"),
    Board("icebreaker", "1BitSquared iCEBreaker, iCE40 UP5K (open toolchain)",
          "amaranth_boards.icebreaker:ICEBreakerPlatform", "ice40", 12_000_000,
          SoCConfig(clk_hz=12_000_000, baud=1_000_000, scratch_words=256, max_payload=256,
                    rows=2, cols=2, fmt_a="mxfp4_e2m1", fmt_b="mxfp4_e2m1", max_k=64,
                    acc_width=24, acc_frac=12)),
    Board("arty", "Digilent Arty A7-35T, xc7a35ti (Vivado)",
          "amaranth_boards.arty_a7:ArtyA7_35Platform", "vivado", 100_000_000,
          SoCConfig(clk_hz=100_000_000, baud=3_000_000, scratch_words=4096, rows=4, cols=4,
                    fmt_a="mxfp4_e2m1", fmt_b="mxfp4_e2m1", max_k=256),
          pll="mmcm", osc_hz=100_000_000),
    Board("arty-100t", "Digilent Arty A7-100T, xc7a100ti (Vivado)",
          "amaranth_boards.arty_a7:ArtyA7_100Platform", "vivado", 100_000_000,
          SoCConfig(clk_hz=100_000_000, baud=3_000_000, scratch_words=8192, rows=8, cols=8,
                    fmt_a="mxfp4_e2m1", fmt_b="mxfp4_e2m1", max_k=256),
          pll="mmcm", osc_hz=100_000_000),
]}


def get_board(name: str) -> Board:
    try:
        return BOARDS[name]
    except KeyError:
        raise KeyError(f"unknown board {name!r}; boards: {', '.join(BOARDS)}") from None


class BoardTop(Elaboratable):
    """The SoC on a board: the UART resource's pins to the SoC's serial lines."""

    def __init__(self, config: SoCConfig, pll=None, osc_hz=None):
        self.config = config
        self.pll = pll
        self.osc_hz = osc_hz

    def elaborate(self, platform):
        m = Module()
        if self.pll is not None:
            m.domains.sync = ClockDomain("sync")    # driven by the PLL / MMCM below
        if self.pll == "ecp5":
            m.submodules.pll = ECP5PLL(self.config.clk_hz // 1_000_000)
        elif self.pll == "mmcm":
            m.submodules.pll = XilinxMMCM(self.osc_hz, self.config.clk_hz)
        m.submodules.soc = soc = BoardSoC(self.config)
        uart = platform.request("uart", 0)
        m.d.comb += [soc.rx.eq(uart.rx.i), uart.tx.o.eq(soc.tx)]
        return m
