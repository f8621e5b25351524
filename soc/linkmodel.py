"""Golden model of the host link's byte stream (:class:`~mxhw.soc.link.HostLink`): which
answers a stream of request bytes gets, and which words it writes.

The stream is modelled as bursts separated by *long gaps*: bytes within a burst come back
to back (or at least closer than the link's ``quiet_cycles``), a long gap is longer than
the link's watchdog (``timeout_cycles``) plus the time it takes to work off what it holds.
The link buffers what arrives while it works (``rx_depth`` bytes, not modelled: keep each
burst within it), so within a burst no byte is lost. The rules (``soc/PROTOCOL.md``):

- waiting for a request, a ``0xA5`` starts a header (cmd, seq, addr, len); any other
  byte starts a silent discard of the rest of the burst (``SKIP`` here; the gateware's
  IDLE with its out-of-step flag set);
- after the header's 8 bytes, a bad header (:func:`~mxhw.soc.protocol.header_status`)
  discards the rest of the burst and is answered at the gap (DRAIN); a good WRITE takes
  ``len`` payload bytes; then 2 CRC bytes;
- a bad CRC discards the rest of the burst too and is answered BAD_CRC at the gap; a good
  packet is executed and answered at once;
- a packet still incomplete at a gap is answered TIMEOUT;
- every answer carries byte 1 of the header register (the seq of a whole header; of a
  partial one, whatever its shift register holds); error answers count in ``errors``
  (saturating at 0xFFFF).
"""

from __future__ import annotations

import struct

from . import protocol as P

__all__ = ["LinkModel"]


class LinkModel:
    """The link's parser and executor, byte by byte.

    Parameters
    ----------
    max_payload, rx_depth : int
        The link's (``rx_depth`` only for the PING answer).
    read, write : callable
        The bus: ``read(word_addr) -> int`` and ``write(word_addr, value)``.
    """

    def __init__(self, max_payload, rx_depth, read, write):
        self.max_payload, self.rx_depth = max_payload, rx_depth
        self.read, self.write = read, write
        self.state = "IDLE"
        self.hdr = 0            # the header shift register (64 bits, cmd in the low byte)
        self.errors = 0
        self._body = bytearray()
        self._left = 0
        self._status = P.Status.OK

    @property
    def seq(self):
        return self.hdr >> 8 & 0xFF

    def _answer(self, status, payload=b""):
        if status != P.Status.OK:
            self.errors = min(self.errors + 1, 0xFFFF)
        self.state = "IDLE"
        return P.response(status, self.seq, payload)

    def feed(self, data) -> bytes:
        """Bytes of one burst (may continue an earlier burst only across no gap): the
        answers the link sends while it takes them."""
        out = b""
        for b in bytes(data):
            out += self._byte(b)
        return out

    def gap(self) -> bytes:
        """A long gap: the answer the link then sends (TIMEOUT, a drained error), if any."""
        if self.state in ("HDR", "PAYLOAD", "CRC"):
            return self._answer(P.Status.TIMEOUT)
        if self.state == "DRAIN":
            return self._answer(self._status)
        self.state = "IDLE"
        return b""

    def _byte(self, b):
        st = self.state
        if st == "IDLE":
            self.state = "HDR" if b == P.SYNC_REQ else "SKIP"
            self._body = bytearray()
        elif st == "HDR":
            self.hdr = self.hdr >> 8 | b << 56
            self._body.append(b)
            if len(self._body) == 8:
                return self._header()
        elif st == "PAYLOAD":
            self._body.append(b)
            self._left -= 1
            if not self._left:
                self.state, self._left = "CRC", 2
        elif st == "CRC":
            self._body.append(b)
            self._left -= 1
            if not self._left:
                return self._check()
        return b""

    def _header(self):
        cmd, _, addr, length = struct.unpack("<BBIH", bytes(self._body))
        status = P.header_status(cmd, addr, length, self.max_payload)
        if status != P.Status.OK:
            self.state, self._status = "DRAIN", status
        elif cmd == P.Cmd.WRITE and length:
            self.state, self._left = "PAYLOAD", length
        else:
            self.state, self._left = "CRC", 2
        return b""

    def _check(self):
        body, crc = bytes(self._body[:-2]), self._body[-2] | self._body[-1] << 8
        if P.crc16(body) != crc:
            self.state, self._status = "DRAIN", P.Status.BAD_CRC
            return b""
        cmd, _, addr, length = struct.unpack("<BBIH", body[:8])
        payload = b""
        if cmd == P.Cmd.PING:
            payload = struct.pack("<I", P.link_info(self.max_payload, self.rx_depth))
        elif cmd == P.Cmd.READ:
            payload = struct.pack(f"<{length // 4}I",
                                  *(self.read((addr >> 2) + i) for i in range(length // 4)))
        else:
            for i, (w,) in enumerate(struct.iter_unpack("<I", body[8:])):
                self.write((addr >> 2) + i, w)
        return self._answer(P.Status.OK, payload)
