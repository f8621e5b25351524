"""The host link's recovery from fully symbolic garbage (harness_link_wd.py): a short
stream proves; a link whose watchdog never fires is caught."""

from __future__ import annotations

import pytest

from mxhw.formal.harness_link_wd import LinkRecovery, recovery_bound
from support.formal import caught, prove

pytestmark = [pytest.mark.toolchain, pytest.mark.slow]


def test_bound_formula():
    # watchdog 16, the longest response (7 + 16 bytes) at one stall cycle each, margin 24
    assert recovery_bound(16, 16, 16, 1) == 16 + 46 + 24


def test_recovery_proved(tmp_path):
    h = LinkRecovery(garbage=2, stall=0)
    r = prove(tmp_path, "wd", h, depth=h.depth(), timeout=600)
    assert r.status == "proved", r.line()


def test_no_watchdog_caught(tmp_path):
    from mxhw.soc.link import HostLink
    # a watchdog too long to fire within the bound: a truncated header is never dropped
    h = LinkRecovery(garbage=2, stall=0,
                     dut=HostLink(max_payload=16, timeout_cycles=1 << 12, quiet_cycles=16))
    caught(prove(tmp_path, "mut", h, depth=h.depth(), timeout=600))
