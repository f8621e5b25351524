"""``soc.protocol.crc16`` (the host's CRC-16/CCITT-FALSE, table-driven C from the standard
library) against an independent bitwise form of the definition and the catalogue check
value."""

from hypothesis import given, strategies as st

from mxhw.soc import protocol as P
from support.hyp import budget


def _bitwise(data, crc=0xFFFF):
    """CRC-16/CCITT-FALSE by its definition: poly 0x1021, MSB first, no reflection, no
    final xor."""
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def test_check_value():
    # the CRC catalogue's check value of CRC-16/CCITT-FALSE (a.k.a. CRC-16/IBM-3740)
    assert P.crc16(b"123456789") == 0x29B1
    assert P.crc16(b"") == 0xFFFF


@budget(200)
@given(data=st.binary(max_size=300), crc=st.integers(0, 0xFFFF))
def test_matches_bitwise_definition(data, crc):
    assert P.crc16(data, crc) == _bitwise(data, crc)
    assert P.crc16(data) == _bitwise(data)


@budget(50)
@given(a=st.binary(max_size=64), b=st.binary(max_size=64))
def test_running_crc_continues(a, b):
    assert P.crc16(b, P.crc16(a)) == P.crc16(a + b)
