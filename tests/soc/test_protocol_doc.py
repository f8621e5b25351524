"""soc/PROTOCOL.md's link tables against the code: the request and response layouts (field
order and sizes) against packets built by mxhw.soc.protocol, the status codes, the
protocol version and the PING answer's fields."""

import re
import struct
from pathlib import Path

from hypothesis import given, strategies as st

from mxhw.soc import protocol as P

DOC = (Path(__file__).parents[2] / "soc" / "PROTOCOL.md").read_text()


def table(heading):
    """Rows ``(field, bytes)`` of the table under ``## heading``."""
    section = DOC.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1:-1] for line in section.splitlines() if line.startswith("| ")]
    return [(r[0].strip(), r[1].strip()) for r in rows[1:]]


def test_request_table():
    assert table("Request") == [("sync", "1"), ("cmd", "1"), ("seq", "1"), ("addr", "4"),
                                ("len", "2"), ("payload", "len (WRITE only)"), ("crc", "2")]
    # the header: the documented fixed-size fields before the payload
    assert sum(int(b) for f, b in table("Request")[:5]) == P.REQ_HEADER


def test_response_table():
    assert table("Response") == [("sync", "1"), ("status", "1"), ("seq", "1"), ("len", "2"),
                                 ("payload", "len"), ("crc", "2")]
    assert sum(int(b) for f, b in table("Response")[:4]) == P.RESP_HEADER


@given(cmd=st.integers(0, 255), seq=st.integers(0, 255), addr=st.integers(0, 2**20),
       payload=st.binary(max_size=16))
def test_request_bytes_are_the_table(cmd, seq, addr, payload):
    """A packet from protocol.request, taken apart by the table's layout."""
    pkt = P.request(cmd, addr, len(payload), payload, seq=seq)
    assert pkt[0] == 0xA5
    assert struct.unpack("<BBIH", pkt[1:P.REQ_HEADER]) == (cmd, seq, addr, len(payload))
    assert pkt[P.REQ_HEADER:-2] == payload
    assert struct.unpack("<H", pkt[-2:])[0] == P.crc16(pkt[1:-2])


@given(status=st.integers(0, 255), seq=st.integers(0, 255), payload=st.binary(max_size=16))
def test_response_bytes_are_the_table(status, seq, payload):
    pkt = P.response(status, seq, payload)
    assert pkt[0] == 0x5A
    assert struct.unpack("<BBH", pkt[1:P.RESP_HEADER]) == (status, seq, len(payload))
    assert struct.unpack("<H", pkt[-2:])[0] == P.crc16(pkt[1:-2])
    assert P.parse_response(pkt) == (P.Response(status, payload, seq), b"")


def test_status_codes_and_version():
    codes = dict((int(c, 16), n) for c, n in re.findall(r"`0x(0[0-9])` ([A-Z_]+)", DOC))
    assert codes == P.Status.NAMES
    assert f"Protocol version {P.PROTOCOL_VERSION} " in DOC


@given(maxp=st.integers(1, 16383).map(lambda w: 4 * w), log_depth=st.integers(4, 17))
def test_link_info_fields(maxp, log_depth):
    """The PING answer's fields as documented: max_payload bits 0-15, the version bits
    16-23, log2(rx_depth) bits 24-31."""
    assert "bits 0-15 `max_payload`" in DOC and "bits 16-23 the protocol version" in DOC
    assert "bits 24-31\nlog2(`rx_depth`)" in DOC or "bits 24-31 log2(`rx_depth`)" in DOC
    w = P.link_info(maxp, 1 << log_depth)
    assert w == maxp | P.PROTOCOL_VERSION << 16 | log_depth << 24
    assert P.decode_link_info(w) == {"max_payload": maxp, "version": P.PROTOCOL_VERSION,
                                     "rx_depth": 1 << log_depth}
