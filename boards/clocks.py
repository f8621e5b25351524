"""Clock generation: the board oscillator through a PLL (ECP5) or an MMCM (Xilinx 7-series)
to the system clock.

The ECP5 settings come from Project Trellis' ``ecppll`` (shipped as ``yowasp-ecppll``):
``yowasp-ecppll -i 25 -o F``. The 7-series MMCM settings are computed exactly by
:func:`mmcm_params` within the MMCME2 ranges of the Artix-7 data sheet.
"""

from fractions import Fraction

from amaranth import ClockSignal, Elaboratable, Instance, Module, Signal
from amaranth.lib.cdc import ResetSynchronizer

from ..lib.params import check_int

__all__ = ["ECP5_PLL_25MHZ", "ECP5PLL", "MMCM_LIMITS", "mmcm_params", "XilinxMMCM"]

#: output MHz -> EHXPLLL parameters for a 25 MHz input (from ``yowasp-ecppll -i 25 -o F``)
ECP5_PLL_25MHZ = {
    25: dict(CLKI_DIV=1, CLKFB_DIV=1, CLKOP_DIV=24, CLKOP_CPHASE=11),   # VCO 600 MHz
    50: dict(CLKI_DIV=1, CLKFB_DIV=2, CLKOP_DIV=12, CLKOP_CPHASE=5),    # VCO 600
    75: dict(CLKI_DIV=1, CLKFB_DIV=3, CLKOP_DIV=8, CLKOP_CPHASE=4),     # VCO 600
    100: dict(CLKI_DIV=1, CLKFB_DIV=4, CLKOP_DIV=6, CLKOP_CPHASE=2),    # VCO 600
    125: dict(CLKI_DIV=1, CLKFB_DIV=5, CLKOP_DIV=5, CLKOP_CPHASE=2),    # VCO 625
    150: dict(CLKI_DIV=1, CLKFB_DIV=6, CLKOP_DIV=4, CLKOP_CPHASE=2),    # VCO 600
    175: dict(CLKI_DIV=1, CLKFB_DIV=7, CLKOP_DIV=3, CLKOP_CPHASE=1),    # VCO 525
    200: dict(CLKI_DIV=1, CLKFB_DIV=8, CLKOP_DIV=3, CLKOP_CPHASE=1),    # VCO 600
}


def _drive_sync(m, clk, lock):
    """``sync`` from ``clk``, in reset until ``lock`` and released synchronously two clock
    edges after it: every register sees reset on clock edges, whatever its initial value
    (the host link's one-hot state machine has none that synthesis keeps)."""
    m.d.comb += ClockSignal("sync").eq(clk)
    m.submodules.rst_sync = ResetSynchronizer(~lock, domain="sync")


class ECP5PLL(Elaboratable):
    """Drives the ``sync`` domain (defined by the parent) at ``out_mhz`` from the platform's
    default clock (25 MHz); ``sync`` is held in reset until two of its clock edges after
    the PLL locks."""

    def __init__(self, out_mhz):
        if out_mhz not in ECP5_PLL_25MHZ:
            raise ValueError(f"no ECP5 PLL setting for {out_mhz!r} MHz; available: "
                             f"{', '.join(map(str, ECP5_PLL_25MHZ))}")
        self.out_mhz = out_mhz

    def elaborate(self, platform):
        m = Module()
        p = ECP5_PLL_25MHZ[self.out_mhz]
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
        _drive_sync(m, clk_out, lock)
        platform.add_clock_constraint(clk_out, self.out_mhz * 1e6)
        return m


#: MMCME2 ranges for Artix-7 speed grades -1/-1L (Xilinx DS181, "MMCM Switching
#: Characteristics"; the divider ranges from UG472): Hz for frequencies.
MMCM_LIMITS = dict(vco_min=600_000_000, vco_max=1_200_000_000,
                   pfd_min=10_000_000, pfd_max=450_000_000,
                   divclk=(1, 106), mult=(2, 64), out_div=(1, 128))


def mmcm_params(in_hz, out_hz):
    """Exact MMCME2 settings ``{"DIVCLK_DIVIDE", "CLKFBOUT_MULT_F", "CLKOUT0_DIVIDE_F"}``
    giving ``out_hz`` from ``in_hz`` (``out = in * MULT / (DIVCLK * DIV0)``).

    Among exact settings within :data:`MMCM_LIMITS`, integer multipliers and dividers come
    first (fractional ones, in steps of 1/8, only when no integer setting exists), then the
    smallest input divider, then the highest VCO frequency (lowest jitter). Raises
    ``ValueError`` when no exact setting exists (``TypeError`` for a frequency that is
    not an integer in Hz).
    """
    check_int("in_hz", in_hz, 1)
    check_int("out_hz", out_hz, 1)
    L = MMCM_LIMITS
    best = None
    for d in range(L["divclk"][0], L["divclk"][1] + 1):
        pfd = Fraction(in_hz, d)
        if not L["pfd_min"] <= pfd <= L["pfd_max"]:
            continue
        for m8 in range(8 * L["mult"][0], 8 * L["mult"][1] + 1):
            vco = pfd * Fraction(m8, 8)
            if not L["vco_min"] <= vco <= L["vco_max"]:
                continue
            o = vco / out_hz
            if (o * 8).denominator != 1 or not L["out_div"][0] <= o <= L["out_div"][1] \
                    or (o.denominator != 1 and o < 2):    # fractional divide needs >= 2
                continue
            integer = m8 % 8 == 0 and o.denominator == 1
            key = (integer, -d, vco)
            if best is None or key > best[0]:
                best = (key, dict(DIVCLK_DIVIDE=d, CLKFBOUT_MULT_F=m8 / 8,
                                  CLKOUT0_DIVIDE_F=float(o)))
    if best is None:
        raise ValueError(f"no exact MMCM setting makes {out_hz} Hz from {in_hz} Hz "
                         f"(VCO {L['vco_min'] // 10**6}-{L['vco_max'] // 10**6} MHz)")
    return best[1]


class XilinxMMCM(Elaboratable):
    """Drives the ``sync`` domain (defined by the parent) at ``out_hz`` from the platform's
    default clock through an MMCME2_BASE (settings from :func:`mmcm_params`) and a BUFG;
    ``sync`` is held in reset until two of its clock edges after the MMCM locks."""

    def __init__(self, in_hz, out_hz):
        self.in_hz, self.out_hz = in_hz, out_hz
        self.params = mmcm_params(in_hz, out_hz)

    def elaborate(self, platform):
        m = Module()
        p = self.params
        clk_in = platform.request(platform.default_clk, dir="i").i
        lock, fb, clk_mmcm, clk_out = Signal(), Signal(), Signal(), Signal()
        m.submodules.mmcm = Instance(
            "MMCME2_BASE",
            p_BANDWIDTH="OPTIMIZED", p_CLKIN1_PERIOD=round(1e9 / self.in_hz, 3),
            p_DIVCLK_DIVIDE=p["DIVCLK_DIVIDE"], p_CLKFBOUT_MULT_F=p["CLKFBOUT_MULT_F"],
            p_CLKOUT0_DIVIDE_F=p["CLKOUT0_DIVIDE_F"], p_CLKOUT0_PHASE=0.0,
            p_CLKOUT0_DUTY_CYCLE=0.5, p_STARTUP_WAIT="FALSE",
            i_CLKIN1=clk_in, i_CLKFBIN=fb, o_CLKFBOUT=fb, o_CLKOUT0=clk_mmcm,
            i_RST=0, i_PWRDWN=0, o_LOCKED=lock,
        )
        m.submodules.bufg = Instance("BUFG", i_I=clk_mmcm, o_O=clk_out)
        _drive_sync(m, clk_out, lock)
        platform.add_clock_constraint(clk_out, self.out_hz)
        return m
