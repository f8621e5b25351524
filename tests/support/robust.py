"""Shared drivers of the host-link robustness tests: a fake device behind a transport that
drops, delays, duplicates, truncates and corrupts its answers, and the SoC CLI runner.

The fake device is a model written here from ``soc/PROTOCOL.md`` (not from the driver): it
executes every well-formed request on its own word memory and answers it (echoing its
sequence number; a PING with the link information of a 1024-byte ``max_payload``); a fault
then decides what reaches the host. A delayed answer arrives after the read waiting for it
has given up: the driver must drop it by its sequence number.
"""

from __future__ import annotations

import struct
import subprocess
import sys
import threading
import time

from hypothesis import strategies as st

from mxhw.soc import protocol as P

__all__ = ["FAULTS", "FaultyTransport", "faults", "initial_word", "run_cli", "connected"]

#: what can happen to one answer
FAULTS = ("ok", "drop", "delay", "duplicate", "truncate", "corrupt", "noise", "interrupt")


def initial_word(addr):
    """The fake device's initial word at byte address ``addr``: distinct per address, so
    another call's data is told apart."""
    return (addr * 2654435761 + 0x9E3779B9) & 0xFFFFFFFF


def faults(max_size=12):
    """Hypothesis: a list of ``(fault, argument)``, one per request in order (then "ok").
    Not "interrupt": a KeyboardInterrupt stops Hypothesis itself (its own tests)."""
    one = st.tuples(st.sampled_from(FAULTS[:-1]), st.integers(0, 1 << 16))
    return st.lists(one, max_size=max_size)


class FaultyTransport:
    """A transport (``write``/``read``/``close``) in front of a fake device.

    Parameters
    ----------
    faults : list of (str, int)
        One per request, in order; requests past the list are answered correctly.
    slow : float
        Seconds each ``read`` sleeps (lets other threads run in between).
    """

    def __init__(self, faults=(), slow=0.0):
        self.mem = {}
        self.faults = list(faults)
        self.slow = slow
        self.buf = bytearray()       # bytes the host can read now
        self.late = bytearray()      # delayed answers: arrive when a read comes up short
        self.requests = []           # (cmd, addr, length) of every request executed
        self.closed = False
        self._interrupt = False

    def word(self, addr):
        return self.mem.get(addr, initial_word(addr))

    # ---- the device ----
    def _execute(self, pkt):
        assert pkt[0] == P.SYNC_REQ, pkt
        cmd, seq, addr, length = struct.unpack("<BBIH", pkt[1:P.REQ_HEADER])
        body = pkt[1:-2]
        assert struct.unpack("<H", pkt[-2:])[0] == P.crc16(body), "driver sent a bad CRC"
        self.requests.append((cmd, addr, length))
        payload = b""
        if cmd == P.Cmd.PING:
            payload = struct.pack("<I", P.link_info(P.MAX_PAYLOAD, 2048))
        elif cmd == P.Cmd.READ:
            payload = struct.pack(f"<{length // 4}I",
                                  *(self.word(addr + 4 * i) for i in range(length // 4)))
        elif cmd == P.Cmd.WRITE:
            h = P.REQ_HEADER
            words = struct.unpack(f"<{length // 4}I", pkt[h:h + length])
            for i, w in enumerate(words):
                self.mem[addr + 4 * i] = w
        return P.response(P.Status.OK, seq, payload)

    # ---- the transport ----
    def write(self, data: bytes):
        assert not self.closed, "write after close"
        resp = self._execute(bytes(data))
        kind, arg = self.faults.pop(0) if self.faults else ("ok", 0)
        if kind == "ok":
            self.buf += resp
        elif kind == "delay":
            self.late += resp
        elif kind == "duplicate":
            self.buf += resp + resp
        elif kind == "truncate":
            self.buf += resp[:arg % len(resp)]
        elif kind == "corrupt":
            i = arg % len(resp)
            self.buf += resp[:i] + bytes([resp[i] ^ (1 + (arg >> 8) % 255)]) + resp[i + 1:]
        elif kind == "noise":                 # bytes that are no response, then the answer
            self.buf += bytes((arg + i) % 0x5A for i in range(1 + arg % 5)) + resp
        elif kind == "interrupt":             # Ctrl-C while the host waits for the answer
            self.buf += resp
            self._interrupt = True
        else:
            assert kind == "drop", kind

    def read(self, n: int, timeout: float = 1.0) -> bytes:
        assert not self.closed, "read after close"
        if self.slow:
            time.sleep(self.slow)
        if self._interrupt:
            self._interrupt = False
            raise KeyboardInterrupt
        if len(self.buf) >= n:
            data, self.buf = bytes(self.buf[:n]), self.buf[n:]
            return data
        data, self.buf = bytes(self.buf), self.late  # timed out; late bytes arrive now
        self.late = bytearray()
        return data

    def close(self):
        self.closed = True


def connected(faults=(), transport=None, **kwargs):
    """``(transport, Accelerator)`` on a :class:`FaultyTransport` (or ``transport``) whose
    link information the driver has already asked for (its PING, answered unharmed):
    ``faults`` then apply to the calls the test makes, from the first."""
    from mxhw.soc.driver import Accelerator
    t = FaultyTransport() if transport is None else transport
    acc = Accelerator(t, **kwargs)
    acc.ping()
    t.requests.clear()
    t.faults = list(faults)
    return t, acc


def run_cli(*args, timeout=120):
    """``python -m <args>`` in a subprocess: (returncode, stdout, stderr)."""
    r = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True,
                       timeout=timeout)
    return r.returncode, r.stdout, r.stderr


def run_threads(worker, n):
    """Run ``worker(k)`` for k in 0..n-1 on n threads at once; return the exceptions they
    raised (empty when every worker finished)."""
    errors = []

    def guarded(k):
        try:
            worker(k)
        except BaseException as e:     # noqa: BLE001 (returned to the test)
            errors.append(e)

    threads = [threading.Thread(target=guarded, args=(k,)) for k in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return errors
