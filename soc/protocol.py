"""Host side of the link protocol (``soc/PROTOCOL.md``): packet building and parsing.

This is also the golden model the gateware link is tested against.
"""

from __future__ import annotations

import numbers
import struct
from binascii import crc_hqx
from dataclasses import dataclass

try:
    from numpy import bool_ as np_bool
except ImportError:  # pragma: no cover
    np_bool = bool

__all__ = ["SYNC_REQ", "SYNC_RESP", "Cmd", "Status", "crc16", "request", "response",
           "header_status", "Response", "parse_response", "ProtocolError", "MAX_PAYLOAD",
           "PROTOCOL_VERSION", "REQ_HEADER", "RESP_HEADER", "MAX_LENGTH", "link_info", "decode_link_info",
           "check_words"]

SYNC_REQ = 0xA5
SYNC_RESP = 0x5A
#: the default ``max_payload`` (a device reports its own: :func:`decode_link_info`)
MAX_PAYLOAD = 1024
#: the version of this packet format (a PING's answer carries it): 2 added the sequence
#: byte, the PING answer and the receive buffer
PROTOCOL_VERSION = 2
#: bytes before a request's payload (sync, cmd, seq, addr, len) and a response's (sync,
#: status, seq, len); a CRC of 2 bytes follows each payload
REQ_HEADER = 9
RESP_HEADER = 5
#: the largest payload any device sends (its ``max_payload`` is at most this)
MAX_LENGTH = 65532


class Cmd:
    PING = 0x00
    READ = 0x01
    WRITE = 0x02


class Status:
    OK = 0x00
    BAD_CRC = 0x01
    BAD_CMD = 0x02
    BAD_LEN = 0x03
    BAD_ADDR = 0x04
    TIMEOUT = 0x05
    NAMES = {0: "OK", 1: "BAD_CRC", 2: "BAD_CMD", 3: "BAD_LEN", 4: "BAD_ADDR", 5: "TIMEOUT"}


class ProtocolError(Exception):
    """A response that is malformed, or that reports an error status."""


def crc16(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, MSB first, no final xor; ``crc``
    continues a running CRC. Computed by the standard library's table-driven C
    (``binascii.crc_hqx``, the same polynomial and bit order), which a simulated SoC's host
    link pays per packet; a bitwise form checks it in ``tests/soc/test_crc16.py``."""
    return crc_hqx(data, crc)


def _check_field(name, value, bits):
    """``value`` must be an int (not a bool) in ``[0, 2**bits)``: TypeError / ValueError."""
    if not isinstance(value, numbers.Integral) or isinstance(value, (bool, np_bool)):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    value = int(value)
    if not 0 <= value < 1 << bits:
        raise ValueError(f"{name} must be in [0, 2**{bits}), not {value}")
    return value


def check_words(words):
    """``words`` as a list of ints, each in ``[0, 2**32)`` (not a bool or float):
    TypeError / ValueError naming the first bad one."""
    words = list(words)
    if all(type(w) is int for w in words) and (not words or 0 <= min(words)
                                                and max(words) < 1 << 32):
        return words          # plain ints in range (the common case, checked in bulk)
    return [_check_field(f"word {i}", w, 32) for i, w in enumerate(words)]


def request(cmd: int, addr: int = 0, length: int = 0, payload: bytes = b"",
            seq: int = 0) -> bytes:
    """A request packet. ``length`` defaults to ``len(payload)`` for WRITE; ``seq`` (a
    byte) comes back in its response.

    Fields that cannot be encoded are refused (nothing wraps): ``cmd`` outside a byte,
    ``addr`` outside ``[0, 2**32)``, ``length`` outside ``[0, 2**16)``, a READ or WRITE
    whose last byte ``addr + length - 1`` lies past ``2**32 - 1``, a payload that is not
    bytes: ``TypeError`` for a wrong type (bool, float), ``ValueError`` for a value out
    of range. Unknown commands, unaligned addresses and bad lengths are encodable (the
    device answers them with an error status: :func:`header_status`).
    """
    cmd = _check_field("cmd", cmd, 8)
    seq = _check_field("seq", seq, 8)
    addr = _check_field("addr", addr, 32)
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise TypeError(f"payload must be bytes, not {type(payload).__name__}")
    payload = bytes(payload)
    if cmd == Cmd.WRITE and length == 0:
        length = len(payload)
    length = _check_field("length", length, 16)
    if cmd in (Cmd.READ, Cmd.WRITE) and addr + length > 1 << 32:
        raise ValueError(f"addr 0x{addr:08x} + length {length} runs past the end of the "
                         f"32-bit address space")
    body = struct.pack("<BBIH", cmd, seq, addr, length) + payload
    return bytes([SYNC_REQ]) + body + struct.pack("<H", crc16(body))


def response(status: int, seq: int = 0, payload: bytes = b"") -> bytes:
    """A response packet, as the device sends it (the golden form of its answers)."""
    status = _check_field("status", status, 8)
    seq = _check_field("seq", seq, 8)
    body = struct.pack("<BBH", status, seq, _check_field("length", len(payload), 16)) \
        + bytes(payload)
    return bytes([SYNC_RESP]) + body + struct.pack("<H", crc16(body))


def link_info(max_payload: int, rx_depth: int) -> int:
    """The word a device answers a PING with: ``max_payload`` in bits 0-15,
    :data:`PROTOCOL_VERSION` in bits 16-23, ``log2(rx_depth)`` (its receive buffer's
    bytes) in bits 24-31."""
    return (_check_field("max_payload", max_payload, 16) | PROTOCOL_VERSION << 16
            | (_check_field("rx_depth", rx_depth, 32).bit_length() - 1) << 24)


def decode_link_info(word: int) -> dict:
    """:func:`link_info`'s fields: ``max_payload``, ``version``, ``rx_depth``."""
    return {"max_payload": word & 0xFFFF, "version": word >> 16 & 0xFF,
            "rx_depth": 1 << (word >> 24 & 0xFF)}


def header_status(cmd: int, addr: int, length: int, max_payload: int = MAX_PAYLOAD) -> int:
    """The status a request header earns by itself (a good CRC assumed): the first of
    BAD_CMD (unknown command), BAD_LEN (not a multiple of 4, above ``max_payload``, or a
    PING with a payload) and BAD_ADDR (not word aligned), else OK."""
    if cmd not in (Cmd.PING, Cmd.READ, Cmd.WRITE):
        return Status.BAD_CMD
    if length % 4 or length > max_payload or (cmd == Cmd.PING and length):
        return Status.BAD_LEN
    if addr % 4:
        return Status.BAD_ADDR
    return Status.OK


@dataclass(frozen=True)
class Response:
    status: int
    payload: bytes
    seq: int = 0

    @property
    def ok(self):
        return self.status == Status.OK

    def words(self):
        return list(struct.unpack(f"<{len(self.payload) // 4}I", self.payload))


def parse_response(data: bytes) -> tuple[Response, bytes]:
    """Parse one response from the start of ``data``; returns it and the remaining bytes.

    Raises ProtocolError on a malformed packet or CRC mismatch, and ValueError if
    ``data`` is too short to hold the whole packet (read more and try again).
    """
    h = RESP_HEADER
    if len(data) < h + 2:
        raise ValueError("incomplete response")
    if data[0] != SYNC_RESP:
        raise ProtocolError(f"response starts with 0x{data[0]:02x}, not 0x{SYNC_RESP:02x}")
    status, seq, length = struct.unpack("<BBH", data[1:h])
    if len(data) < h + 2 + length:
        raise ValueError("incomplete response")
    body = data[1:h + length]
    (crc,) = struct.unpack("<H", data[h + length:h + 2 + length])
    if crc != crc16(body):
        raise ProtocolError(f"response CRC 0x{crc:04x} does not match 0x{crc16(body):04x}")
    return Response(status, bytes(data[h:h + length]), seq), data[h + 2 + length:]
