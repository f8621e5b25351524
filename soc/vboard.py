"""A virtual board: the board-level SoC on the compiled back end, its serial line served on
a pseudo-terminal or a TCP port, so an unmodified host program talks to it as to a board.

    python -m mxhw.sim.board [--config KEY=VALUE ...] [--pty | --tcp PORT]

(``mxhw.sim.board`` is the command's name; the board lives here, in ``mxhw.soc``, since it
simulates the SoC: ``mxhw.sim`` imports nothing of ``mxhw.soc``.)

The simulated design is :class:`~mxhw.soc.top.BoardSoC` (UART receiver and transmitter
included) built with :mod:`mxhw.sim.compiled`; request bytes from the client become 8N1
frames on its ``rx`` pin and its ``tx`` pin is decoded back into bytes, at
``clk_hz / baud`` clock cycles per bit (default ``clk_hz=4000000, baud=1000000``: 4 cycles
per bit; the default clock of the real SoC would simulate 25 cycles per bit for nothing).

Simulated time runs while the line is busy (request bits still to send, a response being
sent, or fewer than ``quiet`` cycles since either) and stops otherwise: the server then
sleeps in ``select`` (no busy loop). Device time therefore does not advance while the line
is idle (the link's inter-byte watchdog counts simulated cycles only).

On a pty (``--pty``) the device path is printed (``/dev/pts/N``): open it with
``SerialTransport("/dev/pts/N")``. On TCP (``--tcp PORT``, 0 picks a free port) the server
listens on 127.0.0.1, prints ``socket://127.0.0.1:PORT`` and serves one client at a time:
``SerialTransport("socket://127.0.0.1:PORT")``. SIGINT and SIGTERM stop it cleanly.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import socket
import sys
import time

import numpy as np

__all__ = ["VirtualBoard", "UartLine", "main", "DEFAULT_CLK_HZ", "DEFAULT_BAUD"]

DEFAULT_CLK_HZ = 4_000_000
DEFAULT_BAUD = 1_000_000
PROG = "mxhw.sim.board"


class UartLine:
    """8N1 framing in both directions at ``div`` clock cycles per bit (pure Python/numpy,
    no simulator): :meth:`encode` gives the ``rx`` levels of bytes, :meth:`decode` takes
    ``tx`` samples (one per cycle, in any chunking) and returns the completed bytes."""

    def __init__(self, div):
        if div < 4:
            raise ValueError(f"div must be at least 4 cycles per bit, not {div}")
        self.div = div
        self._tail = np.ones(0, dtype=np.uint8)   # samples of an unfinished frame
        self.frame_errors = 0

    def encode(self, data: bytes) -> np.ndarray:
        """Levels, one per cycle: start bit, 8 data bits LSB first, stop bit, per byte."""
        if not data:
            return np.ones(0, dtype=np.uint8)
        b = np.frombuffer(bytes(data), dtype=np.uint8)
        bits = np.ones((len(b), 10), dtype=np.uint8)
        bits[:, 0] = 0
        bits[:, 1:9] = (b[:, None] >> np.arange(8, dtype=np.uint8)) & 1
        return np.repeat(bits.ravel(), self.div)

    @property
    def busy(self):
        """A frame has started and not finished."""
        return len(self._tail) > 0

    def decode(self, samples) -> bytes:
        s = np.concatenate([self._tail, np.asarray(samples, dtype=np.uint8)])
        d, out, i = self.div, bytearray(), 0
        span = 9 * d + d // 2                  # start edge to the middle of the stop bit
        while True:
            zeros = np.flatnonzero(s[i:] == 0)
            if not len(zeros):
                self._tail = s[:0]
                break
            p = i + int(zeros[0])
            if p + span >= len(s):
                self._tail = s[p:]
                break
            bits = s[p + d // 2 + d * np.arange(1, 10)]
            if bits[8] != 1:
                self.frame_errors += 1
            else:
                out.append(int(np.dot(bits[:8].astype(np.int64), 1 << np.arange(8))))
            i = p + span + 1
        return bytes(out)


class VirtualBoard:
    """The compiled :class:`~mxhw.soc.top.BoardSoC` with a byte interface on its pins.

    ``feed(data)`` queues request bytes; ``run(cycles)`` simulates at least ``cycles``
    cycles (all queued request bits first) and returns the response bytes sent meanwhile.
    ``active`` tells whether the line is busy (more cycles may produce bytes).
    """

    def __init__(self, config=None, quiet=None):
        from ..sim import compiled
        from .top import BoardSoC, SoCConfig
        from .uart import divisor_for
        self.config = config or SoCConfig(clk_hz=DEFAULT_CLK_HZ, baud=DEFAULT_BAUD)
        self.div = divisor_for(self.config.clk_hz, self.config.baud)
        self.line = UartLine(self.div)
        #: cycles of silence on both lines after which the board goes idle: longer than
        #: the gap between a request's last bit and its response's first
        self.quiet = quiet or max(1024, 64 * self.div)
        self._dut = BoardSoC(self.config)
        t0 = time.monotonic()
        self._model = compiled.build(self._dut)
        self.build_seconds = time.monotonic() - t0
        self._model.reset()
        self._pending = np.ones(0, dtype=np.uint8)
        self._since = self.quiet        # cycles since the last line activity
        self.cycles = 0

    def feed(self, data: bytes):
        self._pending = np.concatenate([self._pending, self.line.encode(data)])
        self._since = 0

    @property
    def active(self):
        return len(self._pending) > 0 or self.line.busy or self._since < self.quiet

    def run(self, cycles=512) -> bytes:
        n = max(cycles, len(self._pending))
        rx = np.ones(n, dtype=np.uint8)
        k = len(self._pending)
        rx[:k] = self._pending
        self._pending = self._pending[:0]
        (tx,) = self._model.run([(self._dut.rx, rx)], [self._dut.tx], n)
        tx = np.asarray(tx, dtype=np.uint8)
        self.cycles += n
        lows = np.flatnonzero(tx == 0)
        last = max(k - 1, int(lows[-1]) if len(lows) else -1)
        self._since = n - 1 - last if last >= 0 else self._since + n
        return self.line.decode(tx)

    def exchange(self, data: bytes, n: int, max_cycles: int = 10_000_000) -> bytes:
        """Send ``data`` and run until ``n`` response bytes arrived, or until the line goes
        quiet or ``max_cycles`` passed (then fewer bytes are returned)."""
        self.feed(data)
        out, end = bytearray(), self.cycles + max_cycles
        while len(out) < n and self.active and self.cycles < end:
            out += self.run()
        return bytes(out)

    def close(self):
        self._model.close()


# ---- serving ----

class _Stop(Exception):
    pass


def _serve_loop(board, conn_fd, recv, send, wait_fds, stop, chunk):
    """Move bytes between a client and the board until the client goes (returns) or a
    stop is requested (raises _Stop)."""
    while True:
        if stop["flag"]:
            raise _Stop
        timeout = 0 if board.active else 0.2
        try:
            ready, _, _ = select.select(wait_fds, [], [], timeout)
        except InterruptedError:
            continue
        if stop["flag"]:
            raise _Stop
        if conn_fd in ready:
            data = recv()
            if data is None:          # the client went away
                return
            if data:
                board.feed(data)
        if board.active:
            out = board.run(chunk)
            if out:
                send(out)


def _listen(port):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        srv.bind(("127.0.0.1", port))
        srv.listen(1)
    except OSError as e:
        srv.close()
        raise SystemExit(f"{PROG}: cannot listen on 127.0.0.1:{port}: {e.strerror}") from None
    return srv


def _serve_tcp(board, srv, stop, chunk, announce):
    announce(f"socket://127.0.0.1:{srv.getsockname()[1]}")
    try:
        while not stop["flag"]:
            try:
                r, _, _ = select.select([srv], [], [], 0.2)
            except InterruptedError:
                continue
            if not r:
                continue
            conn, _ = srv.accept()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.setblocking(False)

            def recv():
                try:
                    data = conn.recv(65536)
                except BlockingIOError:
                    return b""
                except OSError:
                    return None
                return data or None

            def send(data):
                try:
                    conn.setblocking(True)
                    conn.sendall(data)
                except OSError:
                    pass
                finally:
                    conn.setblocking(False)

            try:
                _serve_loop(board, conn.fileno(), recv, send, [conn.fileno()], stop, chunk)
            finally:
                conn.close()
    except _Stop:
        pass
    finally:
        srv.close()


def _open_pty():
    import tty
    try:
        master, slave = os.openpty()
    except OSError as e:
        raise SystemExit(f"{PROG}: cannot open a pseudo-terminal: {e.strerror}") from None
    tty.setraw(slave)          # no echo, no line discipline: a plain byte pipe
    os.set_blocking(master, False)
    return master, slave


def _serve_pty(board, pty, stop, chunk, announce):
    master, slave = pty
    announce(os.ttyname(slave))

    def recv():
        try:
            return os.read(master, 65536)
        except BlockingIOError:
            return b""
        except OSError:          # EIO: no process holds the slave (we do, so rare)
            return b""

    def send(data):
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(master, view):]
            except BlockingIOError:
                select.select([], [master], [], 0.2)

    try:
        while True:
            _serve_loop(board, master, recv, send, [master], stop, chunk)
    except _Stop:
        pass
    finally:
        os.close(master)
        os.close(slave)


def _close_endpoint(endpoint):
    if isinstance(endpoint, socket.socket):
        endpoint.close()
    else:
        for fd in endpoint:
            os.close(fd)


def _parse_config(items):
    """The virtual board's :class:`~mxhw.soc.top.SoCConfig` with the ``--config`` overrides
    (:func:`~mxhw.soc.top.config_overrides`); a bad item exits with a one-line message."""
    from .top import SoCConfig, config_overrides
    try:
        return config_overrides(items, SoCConfig(clk_hz=DEFAULT_CLK_HZ, baud=DEFAULT_BAUD))
    except ValueError as e:
        raise SystemExit(f"{PROG}: {e}") from None


def main(argv=None):
    ap = argparse.ArgumentParser(prog=f"python -m {PROG}", description=__doc__.split("\n")[0])
    ap.add_argument("--config", action="append", default=[], metavar="KEY=VALUE",
                    help=f"override a SoC configuration field (repeatable); the defaults are "
                         f"SoCConfig's except clk_hz={DEFAULT_CLK_HZ} and baud={DEFAULT_BAUD}")
    where = ap.add_mutually_exclusive_group()
    where.add_argument("--pty", action="store_true",
                       help="serve on a pseudo-terminal (the default); prints its path")
    where.add_argument("--tcp", type=int, metavar="PORT",
                       help="serve on 127.0.0.1:PORT (0: a free port); prints the pyserial URL")
    ap.add_argument("--chunk", type=int, default=512, metavar="CYCLES",
                    help="cycles simulated per step while the line is busy (default 512)")
    ap.add_argument("--quiet", type=int, default=None, metavar="CYCLES",
                    help="cycles of line silence after which simulation pauses (default "
                         "max(1024, 64 cycles per bit))")
    args = ap.parse_args(argv)
    if args.quiet is not None and args.quiet < 1:
        raise SystemExit(f"{PROG}: --quiet must be positive, not {args.quiet}")
    if args.tcp is not None and not 0 <= args.tcp <= 65535:
        raise SystemExit(f"{PROG}: --tcp PORT must be in 0..65535, not {args.tcp}")
    if args.chunk < 1:
        raise SystemExit(f"{PROG}: --chunk must be positive, not {args.chunk}")
    config = _parse_config(args.config)
    # the port or pty first: a port in use fails before the model is built
    endpoint = _listen(args.tcp) if args.tcp is not None else _open_pty()

    stop = {"flag": False}

    def abort(signum, frame):          # while the model builds: stop at once
        raise _Stop

    def on_signal(signum, frame):      # while serving: finish the step, then stop
        stop["flag"] = True
    signal.signal(signal.SIGINT, abort)
    signal.signal(signal.SIGTERM, abort)

    try:
        board = VirtualBoard(config, quiet=args.quiet)
    except _Stop:
        _close_endpoint(endpoint)
        print(f"{PROG}: stopped while building the model", file=sys.stderr, flush=True)
        return 1
    except (ValueError, TypeError) as e:   # a configuration the SoC or its UART refuses
        _close_endpoint(endpoint)
        raise SystemExit(f"{PROG}: {e}") from None
    except Exception as e:         # a bad configuration, or the C++ build failing
        _close_endpoint(endpoint)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SystemExit(f"{PROG}: cannot build the model: {first}") from None
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    print(f"{PROG}: model built in {board.build_seconds:.1f} s; clk_hz={config.clk_hz} "
          f"baud={config.baud} ({board.div} cycles per bit)", file=sys.stderr, flush=True)

    def announce(where):
        print(where, flush=True)

    try:
        if args.tcp is not None:
            _serve_tcp(board, endpoint, stop, args.chunk, announce)
        else:
            _serve_pty(board, endpoint, stop, args.chunk, announce)
    finally:
        board.close()
    print(f"{PROG}: stopped after {board.cycles} cycles", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
