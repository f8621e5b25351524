"""The host-link contract proofs (mxhw.formal.harness_link): a single request is answered
byte for byte within the bound for every timing; a mutant link is caught; and the known
bug #31 finding 2 (back-to-back requests lose answers; a WRITE's payload executed as a
packet) shows as a failed proof until ``proofs.LINK_BUG_31_FIXED`` is flipped."""

from __future__ import annotations

import pytest
from amaranth.hdl import Module

from mxhw.formal.harness_link import (LinkContract, bad_write_stream, nested_write_stream,
                                      ping_stream, stream_depth)
from mxhw.formal.proofs import LINK_BUG_31_FIXED, all_proofs
from mxhw.soc.link import HostLink
from support.formal import prove

pytestmark = pytest.mark.toolchain


def _run(tmp_path, make, dut=None, **kw):
    h = LinkContract(*make(), dut=dut, **kw)
    r = prove(tmp_path, "link", h, depth=stream_depth(*make(), **kw))
    if r.status not in ("proved", "failed"):      # not an expected failure: a real one
        pytest.fail(r.line())
    return r


def test_bad_gap_refused():
    with pytest.raises(ValueError, match="gap must be below the watchdog"):
        LinkContract(*ping_stream(1), gap=16)


def test_link_proofs_listed_with_expectation():
    names = {p.name: p for p in all_proofs(["HostLink"], thorough=True)}
    assert names["link_ping"].expect == "proved"
    want = "proved" if LINK_BUG_31_FIXED else "failed"
    assert names["link_2ping_b2b"].expect == want
    assert names["link_nested_write"].expect == want


def test_one_ping_answered(tmp_path):
    r = _run(tmp_path, lambda: ping_stream(1), gap=0, stall=0)
    assert r.status == "proved", r.line()


@pytest.mark.parametrize("kind,extra", [("crc", 40), ("len", 40)])
def test_bad_write_answered_and_writes_nothing(tmp_path, kind, extra):
    r = _run(tmp_path, lambda: bad_write_stream(kind), gap=0, stall=0, extra=extra)
    assert r.status == "proved", r.line()


def test_bad_write_stream_really_bad():
    from mxhw.soc import protocol as P
    (pkt,), (resp,), writes = bad_write_stream("crc")
    assert P.crc16(pkt[1:-2]) != int.from_bytes(pkt[-2:], "little") and writes == []
    assert P.parse_response(resp)[0].status == P.Status.BAD_CRC
    (pkt,), _, _ = bad_write_stream("len")
    assert P.header_status(P.Cmd.WRITE, 0x100, 5, 16) == P.Status.BAD_LEN


class DropsWhileBusyTx(HostLink):
    """A dropped byte: ``rx`` bytes that arrive while ``tx`` is not ready are lost."""
    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = HostLink(self.max_payload, 16, 16)
        m.d.comb += [inner.rx.payload.eq(self.rx.payload),
                     inner.rx.valid.eq(self.rx.valid & self.tx.ready),
                     self.rx.ready.eq(1),
                     self.tx.payload.eq(inner.tx.payload), self.tx.valid.eq(inner.tx.valid),
                     inner.tx.ready.eq(self.tx.ready),
                     self.bus.addr.eq(inner.bus.addr), self.bus.w_data.eq(inner.bus.w_data),
                     self.bus.w_en.eq(inner.bus.w_en), self.bus.r_en.eq(inner.bus.r_en),
                     inner.bus.r_data.eq(self.bus.r_data), self.errors.eq(inner.errors)]
        return m


def test_link_mutation_caught(tmp_path):
    r = _run(tmp_path, lambda: ping_stream(1), dut=DropsWhileBusyTx(16, 16, 16), gap=0,
             stall=1)
    assert r.status == "failed", r.line()
    assert r.vcd is not None and r.vcd.exists(), r.line()


@pytest.mark.xfail(not LINK_BUG_31_FIXED, strict=True, raises=AssertionError,
                   reason="known bug #31 finding 2: back-to-back requests lose answers "
                          "(flip mxhw.formal.proofs.LINK_BUG_31_FIXED once fixed)")
def test_back_to_back_pings_all_answered(tmp_path):
    r = _run(tmp_path, lambda: ping_stream(2), gap=0, stall=0)
    assert r.status == "proved", r.line()


@pytest.mark.xfail(not LINK_BUG_31_FIXED, strict=True, raises=AssertionError,
                   reason="known bug #31 finding 2: a WRITE's payload bytes parsed as a "
                          "packet (flip mxhw.formal.proofs.LINK_BUG_31_FIXED once fixed)")
def test_write_payload_never_executed(tmp_path):
    r = _run(tmp_path, nested_write_stream, gap=0, stall=0, parts=("writes",))
    assert r.status == "proved", r.line()
