"""Clock generation: the board oscillator through a PLL to the system clock.

The ECP5 settings come from Project Trellis' ``ecppll`` (shipped as ``yowasp-ecppll``):
``yowasp-ecppll -i 25 -o F``; each row was checked by a nextpnr build.
"""

from amaranth import ClockDomain, ClockSignal, Elaboratable, Instance, Module, ResetSignal, Signal

__all__ = ["ECP5_PLL_25MHZ", "ECP5PLL"]

#: output MHz -> EHXPLLL parameters for a 25 MHz input (VCO 600 MHz)
ECP5_PLL_25MHZ = {
    25: dict(CLKI_DIV=1, CLKFB_DIV=1, CLKOP_DIV=24, CLKOP_CPHASE=11),
    50: dict(CLKI_DIV=1, CLKFB_DIV=2, CLKOP_DIV=12, CLKOP_CPHASE=5),
    75: dict(CLKI_DIV=1, CLKFB_DIV=3, CLKOP_DIV=8, CLKOP_CPHASE=4),
    100: dict(CLKI_DIV=1, CLKFB_DIV=4, CLKOP_DIV=6, CLKOP_CPHASE=2),
}


class ECP5PLL(Elaboratable):
    """Creates the ``sync`` domain at ``out_mhz`` from the platform's default clock
    (25 MHz); ``sync`` is held in reset until the PLL locks."""

    def __init__(self, out_mhz):
        if out_mhz not in ECP5_PLL_25MHZ:
            raise ValueError(f"no ECP5 PLL setting for {out_mhz!r} MHz; available: "
                             f"{', '.join(map(str, ECP5_PLL_25MHZ))}")
        self.out_mhz = out_mhz

    def elaborate(self, platform):
        m = Module()
        p = ECP5_PLL_25MHZ[self.out_mhz]
        m.domains.sync = ClockDomain("sync")
        clk_in = platform.request(platform.default_clk, dir="i").i
        lock = Signal()
        clk_out = Signal()
        m.submodules.pll = Instance(
            "EHXPLLL",
            p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA",
            p_CLKOP_ENABLE="ENABLED", p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP",
            p_CLKI_DIV=p["CLKI_DIV"], p_CLKFB_DIV=p["CLKFB_DIV"], p_CLKOP_DIV=p["CLKOP_DIV"],
            p_CLKOP_CPHASE=p["CLKOP_CPHASE"],
            i_CLKI=clk_in, i_CLKFB=clk_out, o_CLKOP=clk_out,
            i_RST=0, i_STDBY=0, i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1,
            i_PHASELOADREG=1, i_PLLWAKESYNC=0, i_ENCLKOP=0, o_LOCK=lock,
        )
        m.d.comb += [ClockSignal("sync").eq(clk_out), ResetSignal("sync").eq(~lock)]
        platform.add_clock_constraint(clk_out, self.out_mhz * 1e6)
        return m
