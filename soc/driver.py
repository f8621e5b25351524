"""Host driver: talks to a built (or simulated) SoC through the link protocol.

>>> from mxhw.soc.driver import Accelerator
>>> acc = Accelerator.simulated()           # the real SoC gateware, in Amaranth's simulator
>>> acc.info()["id_ok"]
True

Transports move bytes: :class:`SerialTransport` (pyserial, a real board's USB-UART) and
:class:`SimTransport` (the SoC gateware in simulation, fed the byte stream directly: the
UART's bit timing is skipped, everything from the byte stream inward is the real design).
"""

from __future__ import annotations

import struct
import time

from . import protocol as P
from .top import ID_VALUE, REGS, SCRATCHPAD_BASE, SoC, SoCConfig

__all__ = ["Accelerator", "SimTransport", "SerialTransport", "NoResponse", "DeviceError"]


class NoResponse(TimeoutError):
    """The device did not answer in time."""


class DeviceError(RuntimeError):
    """The device answered with an error status."""


class SimTransport:
    """The SoC gateware in simulation, fed one byte per cycle.

    Parameters
    ----------
    config : SoCConfig or None
    backend : str
        ``"pysim"`` (Amaranth's simulator) or ``"compiled"`` (CXXRTL through
        :mod:`mxhw.sim.compiled`: built once per configuration and cached on disk).
    """

    BACKENDS = ("pysim", "compiled")

    def __init__(self, config=None, backend="pysim"):
        if backend not in self.BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(map(repr, self.BACKENDS))}, "
                             f"not {backend!r}")
        self.config = config or SoCConfig()
        self.backend = backend
        # watchdog and quiet gap scaled to a byte per cycle
        self._dut = SoC(self.config, timeout_cycles=20_000, quiet_cycles=64)
        self._out = bytearray()
        self._in = bytearray()
        self.cycles = 0
        if backend == "pysim":
            from amaranth.sim import Simulator
            self._sim = Simulator(self._dut)
            self._sim.add_clock(1e-8)
            self._sim.add_testbench(self._pump, background=True)
        else:
            from ..sim import compiled
            self._model = compiled.build(self._dut)
            self._model.reset()
            self._model.set(self._dut.tx.ready, 1)

    async def _pump(self, ctx):
        dut = self._dut
        ctx.set(dut.tx.ready, 1)
        while True:
            offered = bool(self._out)  # bytes may be queued while we wait for the edge
            if offered:
                ctx.set(dut.rx.payload, self._out[0])
            ctx.set(dut.rx.valid, offered)
            *_, rxr, txv, txp = await ctx.tick().sample(dut.rx.ready, dut.tx.valid,
                                                         dut.tx.payload)
            self.cycles += 1
            if offered and rxr:
                del self._out[0]
            if txv:
                self._in.append(txp)

    def _step_compiled(self, max_cycles, n):
        m, dut = self._model, self._dut
        for _ in range(max_cycles):
            offered = bool(self._out)
            if offered:
                m.set(dut.rx.payload, self._out[0])
            m.set(dut.rx.valid, int(offered))
            m.settle()
            rxr, txv, txp = m.get(dut.rx.ready), m.get(dut.tx.valid), m.get(dut.tx.payload)
            m.step()
            self.cycles += 1
            if offered and rxr:
                del self._out[0]
            if txv:
                self._in.append(txp)
                if len(self._in) >= n:
                    return

    def write(self, data: bytes):
        self._out += data

    def read(self, n: int, timeout: float = 1.0) -> bytes:
        """``n`` bytes, simulating up to ``timeout`` seconds of device time (at the
        configured clock)."""
        if self.backend == "pysim":
            end = self.cycles + int(timeout * self.config.clk_hz)
            while len(self._in) < n and self.cycles < end:
                self._sim.advance()
        elif len(self._in) < n:
            self._step_compiled(int(timeout * self.config.clk_hz), n)
        data, self._in = bytes(self._in[:n]), self._in[n:]
        return data

    def close(self):
        if self.backend == "compiled":
            self._model.close()


class SerialTransport:
    """A board's serial port (needs ``pyserial``)."""

    def __init__(self, port: str, baud: int = 1_000_000):
        try:
            import serial
        except ImportError:
            raise ImportError("SerialTransport needs pyserial: pip install pyserial") from None
        self._ser = serial.Serial(port, baud, timeout=0.1)

    def write(self, data: bytes):
        self._ser.write(data)

    def read(self, n: int, timeout: float = 1.0) -> bytes:
        end = time.monotonic() + timeout
        buf = b""
        while len(buf) < n and time.monotonic() < end:
            buf += self._ser.read(n - len(buf))
        return buf

    def close(self):
        self._ser.close()


class Accelerator:
    """The host's handle on an mxhw SoC.

    Parameters
    ----------
    transport : SimTransport or SerialTransport (anything with write/read)
    timeout : float
        Seconds to wait for each response.
    """

    def __init__(self, transport, timeout: float = 1.0):
        self.transport = transport
        self.timeout = timeout

    @classmethod
    def simulated(cls, config=None, backend="pysim"):
        """An Accelerator on the SoC gateware in simulation."""
        return cls(SimTransport(config, backend=backend))

    # ---- protocol ----
    def _xfer(self, pkt: bytes) -> P.Response:
        self.transport.write(pkt)
        head = self.transport.read(4, self.timeout)
        if len(head) < 4:
            raise NoResponse(f"the device did not answer within {self.timeout} s "
                             f"(is the board programmed and on this port?)")
        length = head[2] | head[3] << 8
        rest = self.transport.read(length + 2, self.timeout)
        resp, _ = P.parse_response(head + rest)
        if not resp.ok:
            raise DeviceError(f"device answered {P.Status.NAMES.get(resp.status, resp.status)}")
        return resp

    def ping(self):
        self._xfer(P.request(P.Cmd.PING))

    def read_words(self, addr: int, n: int) -> list[int]:
        out = []
        step = P.MAX_PAYLOAD // 4
        for i in range(0, n, step):
            k = min(step, n - i)
            out += self._xfer(P.request(P.Cmd.READ, addr + 4 * i, 4 * k)).words()
        return out

    def write_words(self, addr: int, words):
        words = list(words)
        step = P.MAX_PAYLOAD // 4
        for i in range(0, len(words), step):
            chunk = words[i:i + step]
            self._xfer(P.request(P.Cmd.WRITE, addr + 4 * i,
                                 payload=struct.pack(f"<{len(chunk)}I", *chunk)))

    def read_reg(self, name: str) -> int:
        if name not in REGS:
            raise KeyError(f"unknown register {name!r}; registers: {', '.join(REGS)}")
        return self.read_words(REGS[name], 1)[0]

    def write_reg(self, name: str, value: int):
        if name not in REGS:
            raise KeyError(f"unknown register {name!r}; registers: {', '.join(REGS)}")
        self.write_words(REGS[name], [value])

    def write_scratch(self, offset_words: int, words):
        self.write_words(SCRATCHPAD_BASE + 4 * offset_words, words)

    def read_scratch(self, offset_words: int, n: int) -> list[int]:
        return self.read_words(SCRATCHPAD_BASE + 4 * offset_words, n)

    def info(self) -> dict:
        """ID, version, feature and clock registers, decoded."""
        ident = self.read_reg("ID")
        ver = self.read_reg("VERSION")
        feat = self.read_reg("FEATURES")
        return {"id_ok": ident == ID_VALUE, "id": ident,
                "version": (ver >> 16, (ver >> 8) & 0xFF, ver & 0xFF),
                "scratch_words": 1 << (feat & 0xFF), "clk_hz": self.read_reg("CLK_HZ")}
