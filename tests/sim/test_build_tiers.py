"""How a design's size picks its build: hierarchy from ``LARGE_RTLIL_LINES``, ``-O1``
from ``SLOW_BUILD_RTLIL_LINES`` (below it ``-O3``), and the cache key follows the flags."""

import pytest
from hypothesis import given, strategies as st

from mxhw.sim.compiled import cache, rtlil, toolchain
from support.hyp import budget


def _text(lines):
    return "\n" * lines


@budget(30)
@given(lines=st.integers(0, 3 * rtlil.SLOW_BUILD_RTLIL_LINES))
def test_tiers(lines):
    text = _text(lines)
    assert rtlil.is_large(text) == (lines >= rtlil.LARGE_RTLIL_LINES)
    assert rtlil.low_opt(text) == (lines >= rtlil.SLOW_BUILD_RTLIL_LINES)


def test_thresholds_ordered():
    assert rtlil.LARGE_RTLIL_LINES < rtlil.SLOW_BUILD_RTLIL_LINES


def test_flags(monkeypatch):
    monkeypatch.delenv("MXHW_SIM_OPT", raising=False)
    assert "-O3" in toolchain.cxxflags() and "-O1" not in toolchain.cxxflags()
    assert "-O1" in toolchain.cxxflags(True) and "-O3" not in toolchain.cxxflags(True)
    monkeypatch.setenv("MXHW_SIM_OPT", "-O2")
    assert "-O2" in toolchain.cxxflags(True) and "-O2" in toolchain.cxxflags(False)
    monkeypatch.setenv("MXHW_SIM_OPT", "-O9")
    with pytest.raises(Exception, match="MXHW_SIM_OPT must be one of"):
        toolchain.cxxflags()


def test_key_follows_opt_level(monkeypatch):
    """A mid-size design (hierarchical, -O3) and the same text built at -O1 have different
    keys; a design past the -O1 threshold keys as with MXHW_SIM_OPT=-O1."""
    monkeypatch.delenv("MXHW_SIM_OPT", raising=False)
    mid = _text(rtlil.LARGE_RTLIL_LINES)
    big = _text(rtlil.SLOW_BUILD_RTLIL_LINES)
    k_mid, k_big = cache.key(mid), cache.key(big)
    monkeypatch.setenv("MXHW_SIM_OPT", "-O1")
    assert cache.key(mid) != k_mid and cache.key(big) == k_big
    monkeypatch.setenv("MXHW_SIM_OPT", "-O3")
    assert cache.key(mid) == k_mid
