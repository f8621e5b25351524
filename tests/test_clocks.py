"""Clock generation settings: the ECP5 PLL table and the 7-series MMCM solver."""

from fractions import Fraction

import pytest
from hypothesis import given, strategies as st

from mxhw.boards.clocks import ECP5_PLL_25MHZ, ECP5PLL, MMCM_LIMITS, mmcm_params


@pytest.mark.parametrize("mhz", sorted(ECP5_PLL_25MHZ))
def test_ecp5_table_is_exact(mhz):
    p = ECP5_PLL_25MHZ[mhz]
    vco = 25 * p["CLKFB_DIV"] * p["CLKOP_DIV"] / p["CLKI_DIV"]
    assert 400 <= vco <= 800                        # ECP5 PLL VCO range (FPGA-TN-02200)
    assert 25 * p["CLKFB_DIV"] / p["CLKI_DIV"] == mhz


def _out(in_hz, p):
    return Fraction(in_hz) * Fraction(p["CLKFBOUT_MULT_F"]) / (
        p["DIVCLK_DIVIDE"] * Fraction(p["CLKOUT0_DIVIDE_F"]))


@pytest.mark.parametrize("mhz, expect", [
    (100, dict(DIVCLK_DIVIDE=1, CLKFBOUT_MULT_F=12.0, CLKOUT0_DIVIDE_F=12.0)),
    (150, dict(DIVCLK_DIVIDE=1, CLKFBOUT_MULT_F=12.0, CLKOUT0_DIVIDE_F=8.0)),
    (125, dict(DIVCLK_DIVIDE=1, CLKFBOUT_MULT_F=10.0, CLKOUT0_DIVIDE_F=8.0)),
])
def test_mmcm_known_settings(mhz, expect):
    assert mmcm_params(100_000_000, mhz * 1_000_000) == expect


@given(out_mhz=st.integers(5, 450))
def test_mmcm_settings_are_exact_and_in_range(out_mhz):
    out_hz = out_mhz * 1_000_000
    try:
        p = mmcm_params(100_000_000, out_hz)
    except ValueError as e:
        assert "no exact MMCM setting" in str(e)
        # brute force agrees: no integer setting with DIVCLK 1..10 either
        for d in range(1, 11):
            for m in range(2, 65):
                vco = 100_000_000 * m // d
                if MMCM_LIMITS["vco_min"] <= vco <= MMCM_LIMITS["vco_max"]:
                    assert (100_000_000 * m) % (d * out_hz) != 0 or \
                        not 1 <= 100_000_000 * m // (d * out_hz) <= 128
        return
    assert _out(100_000_000, p) == out_hz
    vco = Fraction(100_000_000) * Fraction(p["CLKFBOUT_MULT_F"]) / p["DIVCLK_DIVIDE"]
    assert MMCM_LIMITS["vco_min"] <= vco <= MMCM_LIMITS["vco_max"]
    assert (Fraction(p["CLKFBOUT_MULT_F"]) * 8).denominator == 1
    assert (Fraction(p["CLKOUT0_DIVIDE_F"]) * 8).denominator == 1


@pytest.mark.parametrize("args, exc, msg", [
    ((100_000_000, 0), ValueError, r"out_hz must be >= 1, not 0"),
    ((100e6, 50_000_000), TypeError, r"in_hz must be an integer, not 100000000.0"),
    ((100_000_000, True), TypeError, r"out_hz must be an integer, not True"),
    ((100_000_000, 2_000_000_000), ValueError, r"no exact MMCM setting makes 2000000000 Hz"),
])
def test_mmcm_errors(args, exc, msg):
    with pytest.raises(exc, match=msg):
        mmcm_params(*args)


def test_ecp5_pll_unknown_frequency():
    with pytest.raises(ValueError, match=r"no ECP5 PLL setting for 60 MHz; available: 25, 50"):
        ECP5PLL(60)
