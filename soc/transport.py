"""Transports move the link protocol's bytes: :class:`SerialTransport` (pyserial: a real
board's USB-UART, or the virtual board's pty or ``socket://`` URL) and :class:`SimTransport`
(the SoC gateware in simulation, fed the byte stream directly: the UART's bit timing is
skipped, everything from the byte stream inward is the real design; or, with
``link="uart"``, the board-level SoC on serial frames). :class:`~mxhw.soc.driver.Accelerator`
takes either (anything with ``write``/``read``; ``drain`` if it has one).
"""

from __future__ import annotations

import time

from ..lib.params import check_int
from .top import BoardSoC, SoC, SoCConfig

__all__ = ["SimTransport", "SerialTransport"]


class SimTransport:
    """The SoC gateware in simulation.

    With ``link="bytes"`` the SoC core is fed one byte per cycle (the UART is skipped; it
    has its own tests). On the compiled back end each ``read`` that needs bytes is one call
    into C (:meth:`mxhw.sim.compiled.Model.exchange`): every queued request byte goes in
    and response bytes are collected until those asked for are held and the link has been
    quiet for :attr:`LINGER` cycles, so the rest of a response (its payload after the
    header the driver asked for) arrives in the same call; the device runs those quiet
    cycles too (they count in :attr:`cycles`).

    With ``link="uart"`` the board-level SoC (:class:`~mxhw.soc.top.BoardSoC`: UART
    receiver and transmitter included) is driven on its serial lines: request bytes become
    8N1 frames at ``config.clk_hz / config.baud`` cycles per bit, and the ``tx`` line is
    decoded the same way (pysim only; choose a small ratio such as
    ``SoCConfig(clk_hz=4_000_000, baud=1_000_000)``, or it is slow).

    Parameters
    ----------
    config : SoCConfig or None
    backend : str
        ``"pysim"`` (Amaranth's simulator) or ``"compiled"`` (CXXRTL through
        :mod:`mxhw.sim.compiled`: built once per configuration and cached on disk).
    link : str
        ``"bytes"`` or ``"uart"``.
    """

    BACKENDS = ("pysim", "compiled")
    #: compiled back end: quiet link cycles after which a ``read`` stops collecting bytes
    LINGER = 4
    LINKS = ("bytes", "uart")

    def __init__(self, config=None, backend="pysim", link="bytes"):
        if backend not in self.BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(map(repr, self.BACKENDS))}, "
                             f"not {backend!r}")
        if link not in self.LINKS:
            raise ValueError(f"link must be one of {', '.join(map(repr, self.LINKS))}, "
                             f"not {link!r}")
        if link == "uart" and backend != "pysim":
            raise ValueError("link='uart' runs on the pysim back end only")
        self.config = config or SoCConfig()
        self.backend = backend
        self.link = link
        self._out = bytearray()
        self._in = bytearray()
        self.cycles = 0
        if link == "uart":
            from .uart import divisor_for
            self._div = divisor_for(self.config.clk_hz, self.config.baud)
            self._dut = BoardSoC(self.config)
        else:
            # watchdog and quiet gap scaled to a byte per cycle
            self._dut = SoC(self.config, timeout_cycles=20_000, quiet_cycles=64)
        if backend == "pysim":
            from amaranth.sim import Simulator
            self._sim = Simulator(self._dut)
            self._sim.add_clock(1e-8)
            self._sim.add_testbench(self._pump_uart if link == "uart" else self._pump,
                                    background=True)
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

    async def _pump_uart(self, ctx):
        dut, div = self._dut, self._div
        line = []                 # levels to drive on rx, one per cycle (reversed)
        rx_at = None              # cycle of the current tx frame's start edge
        frame = []
        prev = 1
        while True:
            if not line and self._out:
                b = self._out.pop(0)
                bits = [0] + [(b >> i) & 1 for i in range(8)] + [1]
                line = [v for v in reversed(bits) for _ in range(div)]
            ctx.set(dut.rx, line.pop() if line else 1)
            *_, tx = await ctx.tick().sample(dut.tx)
            self.cycles += 1
            if rx_at is None:
                if prev == 1 and tx == 0:
                    rx_at, frame = self.cycles, []
            else:
                t = self.cycles - rx_at
                if t % div == div // 2 and t // div >= 1:
                    frame.append(tx)
                    if len(frame) == 9:          # 8 data bits and the stop bit
                        if frame[8] != 1:
                            raise RuntimeError("SimTransport: framing error on tx")
                        self._in.append(sum(v << i for i, v in enumerate(frame[:8])))
                        rx_at = None
            prev = tx

    def _step_compiled(self, max_cycles, n):
        """Push every queued request byte and collect response bytes until ``n`` are held
        and the link has been quiet for :attr:`LINGER` cycles, or ``max_cycles`` ran: one
        :meth:`~mxhw.sim.compiled.Model.exchange` call (the cycle loop in C, at most one
        byte each way per cycle), so a whole response comes in with its header."""
        dut = self._dut
        got, cycles, sent = self._model.exchange(
            dut.rx, dut.tx, self._out, want=n - len(self._in), max_cycles=max(1, max_cycles),
            linger=self.LINGER)
        del self._out[:sent]
        self._in += got
        self.cycles += cycles

    def write(self, data: bytes):
        self._out += data

    def idle(self, cycles: int):
        """Let the device run ``cycles`` clock cycles while the host sends nothing (a host
        that knows an operation takes at least that long waits before polling)."""
        if cycles <= 0:
            return
        if self.backend == "pysim":
            end = self.cycles + cycles
            while self.cycles < end:
                self._sim.advance()
        else:
            self._model.step(cycles)
            self.cycles += cycles

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

    def drain(self, quiet: float = 0.0):
        """Discard every response byte no call waits for: with ``quiet > 0`` first let the
        device run up to ``quiet`` seconds (at most its watchdog and quiet gap, after which
        a half-received packet has been answered), so late answers are discarded too."""
        if quiet > 0:
            self.idle(min(int(quiet * self.config.clk_hz), self._dut_settle))
        self._in.clear()

    @property
    def _dut_settle(self):
        """Cycles after which the SoC has answered anything it received: its watchdog,
        its quiet gap and a maximal response (bytes link: a byte per cycle)."""
        if self.link == "uart":
            return self.config.clk_hz // 10 + 2 * 10 * self._div * (self.config.max_payload + 8)
        return 20_000 + 64 + 2 * (self.config.max_payload + 8) + 64

    def close(self):
        if self.backend == "compiled":
            self._model.close()


class SerialTransport:
    """A board's serial port, through pyserial (``pip install mxhw[serial]``).

    Parameters
    ----------
    port : str
        A device path (``/dev/ttyUSB0``, ``COM3``, a pseudo-terminal such as the virtual
        board's ``/dev/pts/N``) or a pyserial URL (``socket://127.0.0.1:PORT``, the virtual
        board on TCP; ``loop://``; ``rfc2217://...``): anything
        :func:`serial.serial_for_url` opens.
    baud : int
        Baud rate (the board's ``SoCConfig.baud``; ignored by sockets and pseudo-terminals).

    A port that cannot be opened raises ``OSError`` (pyserial's ``SerialException``) with
    pyserial's message. Usable as a context manager (closes the port).
    """

    def __init__(self, port: str, baud: int = 1_000_000):
        if not isinstance(port, str) or not port:
            raise TypeError(f"port must be a device path or a pyserial URL, not {port!r}")
        check_int("baud", baud, 1)
        try:
            import serial
        except ImportError:
            raise ImportError("SerialTransport needs pyserial: pip install pyserial") from None
        self.port = port
        self._ser = serial.serial_for_url(port, baudrate=baud, timeout=0.1)

    def write(self, data: bytes):
        self._ser.write(data)
        self._ser.flush()

    def read(self, n: int, timeout: float = 1.0) -> bytes:
        """Up to ``n`` bytes, waiting at most ``timeout`` seconds (fewer on a timeout)."""
        end = time.monotonic() + timeout
        buf = bytearray()
        while len(buf) < n:
            left = end - time.monotonic()
            if left <= 0:
                break
            self._ser.timeout = min(left, 0.5)
            buf += self._ser.read(n - len(buf))
        return bytes(buf)

    def drain(self, quiet: float = 0.0):
        """Discard the bytes already received; with ``quiet > 0`` keep discarding until
        the line has been silent for ``quiet`` seconds (a late answer is dropped too)."""
        self._ser.reset_input_buffer()
        if quiet > 0:
            self._ser.timeout = quiet
            while self._ser.read(4096):
                pass

    def close(self):
        self._ser.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
