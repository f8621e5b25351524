"""The virtual board (``python -m mxhw.sim.board``) and the real ``SerialTransport``.

The board runs in a subprocess on the compiled back end (the board-level SoC, UART
included); the host side is the unmodified ``Accelerator(SerialTransport(...))`` over a
TCP socket (a pyserial ``socket://`` URL) and over a pseudo-terminal (a device path).
Expected values come from ``golden`` and from values the test writes itself."""

import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mxhw import golden
from mxhw.soc.vboard import UartLine
from mxhw.soc.driver import Accelerator, SerialTransport
from mxhw.soc.top import ID_VALUE, SoCConfig
from support.hyp import budget
from support.vboard import Board, cpu_seconds, readme_operands

serial = pytest.importorskip("serial")


# ---- the 8N1 line codec (no simulator) ----

def test_uart_line_encodes_one_frame_by_hand():
    # 0x35 = 0b00110101, LSB first: start 0, bits 1 0 1 0 1 1 0 0, stop 1; 4 cycles a bit
    levels = [0, 1, 0, 1, 0, 1, 1, 0, 0, 1]
    assert UartLine(4).encode(b"\x35").tolist() == [v for v in levels for _ in range(4)]


@budget(30)
@given(data=st.binary(max_size=40), div=st.integers(4, 12), gap=st.integers(0, 30),
       cuts=st.lists(st.integers(0, 2000), max_size=6))
def test_uart_line_decodes_what_it_encodes_in_any_chunking(data, div, gap, cuts):
    line = UartLine(div)
    levels = []
    for b in data:                       # idle gaps between frames, as a real transmitter
        levels += line.encode(bytes([b])).tolist() + [1] * gap
    levels += [1] * 5
    got = bytearray()
    prev = 0
    for c in sorted(min(c, len(levels)) for c in cuts) + [len(levels)]:
        got += line.decode(levels[prev:c])
        prev = c
    assert bytes(got) == data and not line.busy and line.frame_errors == 0


def test_uart_line_counts_a_framing_error():
    line = UartLine(4)
    bad = line.encode(b"\xff").tolist()
    bad[-4:] = [0] * 4                    # stop bit low
    assert line.decode(bad + [1] * 8) == b"" and line.frame_errors == 1


def test_uart_line_refuses_a_short_bit():
    with pytest.raises(ValueError, match="at least 4 cycles per bit"):
        UartLine(3)


# ---- SerialTransport without a board (pyserial's loop:// URL) ----

def test_serial_transport_opens_a_url_and_reads_what_was_written():
    with SerialTransport("loop://") as t:
        t.write(b"\x5a\x01\x02")
        assert t.read(3, timeout=1.0) == b"\x5a\x01\x02"


def test_serial_transport_read_times_out_with_fewer_bytes():
    with SerialTransport("loop://") as t:
        t.write(b"ab")
        t0 = time.monotonic()
        assert t.read(5, timeout=0.3) == b"ab"
        assert 0.25 < time.monotonic() - t0 < 2.0


@pytest.mark.parametrize("port, baud, exc, msg", [
    ("/dev/does-not-exist-mxhw", 115200, OSError, "does-not-exist-mxhw"),
    ("", 115200, TypeError, "device path or a pyserial URL"),
    (None, 115200, TypeError, "device path or a pyserial URL"),
    ("loop://", 0, ValueError, "baud"),
    ("loop://", 1.5, TypeError, "baud"),
])
def test_serial_transport_refuses_bad_ports(port, baud, exc, msg):
    with pytest.raises(exc, match=msg):
        SerialTransport(port, baud)


# ---- the command line: errors before any model is built ----

@pytest.mark.parametrize("args, msg", [
    (["--config", "rows=x"], "--config rows needs an integer, not 'x'"),
    (["--config", "nope=1"], "--config takes KEY=VALUE"),
    (["--config", "rows"], "--config takes KEY=VALUE"),
    (["--tcp", "70000"], "--tcp PORT must be in 0..65535"),
    (["--chunk", "0"], "--chunk must be positive"),
    (["--config", "baud=3000000"], "too fast for a 4 MHz clock"),
])
def test_cli_errors_are_one_line(args, msg):
    r = subprocess.run([sys.executable, "-m", "mxhw.sim.board", *args], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode != 0
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith("mxhw.sim.board: ") and msg in r.stderr


def test_cli_port_in_use_is_one_line():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "mxhw.sim.board", "--tcp", str(port)],
                           capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and r.stderr.count("\n") == 1
    assert f"cannot listen on 127.0.0.1:{port}" in r.stderr


# ---- the board in a subprocess, the real SerialTransport against it ----

@pytest.fixture(scope="module", params=["tcp", "pty"])
def board(request):
    args = ["--tcp", "0"] if request.param == "tcp" else ["--pty"]
    b = Board(*args)
    print(f"\nvirtual board ({request.param}) up in {b.start_seconds:.1f} s at {b.where}")
    yield b
    assert b.stop(signal.SIGTERM) == 0, b.stderr
    assert "stopped after" in b.stderr and "Traceback" not in b.stderr


@pytest.fixture
def acc(board):
    a = Accelerator(SerialTransport(board.where), timeout=10.0)
    yield a
    a.transport.close()


@pytest.mark.compiled
@pytest.mark.slow
def test_endpoint_is_a_url_or_a_pty(board):
    if board.where.startswith("socket://"):
        assert board.where.startswith("socket://127.0.0.1:")
    else:
        assert board.where.startswith("/dev/")


@pytest.mark.compiled
@pytest.mark.slow
def test_info_over_the_serial_line(acc):
    info = acc.info()
    assert info["id_ok"] and info["id"] == ID_VALUE
    assert info["clk_hz"] == 4_000_000                      # the board's default clock
    assert info["scratch_words"] == SoCConfig().scratch_words


@pytest.mark.compiled
@pytest.mark.slow
@budget(5)
@given(data=st.data())
def test_scratch_write_then_read(board, data):
    n_words = SoCConfig().scratch_words
    n = data.draw(st.integers(1, 70), label="n")     # > one 64-word packet, at times
    off = data.draw(st.integers(0, n_words - n), label="offset")
    words = data.draw(st.lists(st.integers(0, 2**32 - 1), min_size=n, max_size=n))
    with SerialTransport(board.where) as t:
        a = Accelerator(t, timeout=10.0)
        a.write_scratch(off, words)
        assert a.read_scratch(off, n) == words
        a.write_reg("SCRATCH", words[0])
        assert a.read_reg("SCRATCH") == words[0]


@pytest.mark.compiled
@pytest.mark.slow
def test_readme_matmul_over_the_serial_line(acc):
    a, b = readme_operands()
    t0 = time.monotonic()
    c = acc.matmul(a, b)
    secs = time.monotonic() - t0
    print(f"\nREADME matmul 8x64 @ 64x8 MXFP4 over {acc.transport.port}: {secs:.2f} s")
    ref = golden.gemm(golden.quantize(a, "mxfp4", axis=1),
                      golden.quantize(b, "mxfp4", axis=0), golden.fixed(32, 16))
    assert np.array_equal(c, ref)


@pytest.mark.compiled
@pytest.mark.slow
def test_a_second_client_after_the_first_one_left(board):
    for _ in range(2):
        with SerialTransport(board.where) as t:
            assert Accelerator(t, timeout=10.0).info()["id_ok"]


@pytest.mark.compiled
@pytest.mark.slow
def test_idles_cheaply(board):
    """With no bytes flowing the server sleeps in select: well under 20% of a core."""
    time.sleep(0.5)
    c0, t0 = cpu_seconds(board.proc.pid), time.monotonic()
    time.sleep(2.0)
    used = cpu_seconds(board.proc.pid) - c0
    assert used < 0.2 * (time.monotonic() - t0), f"{used:.2f} CPU s while idle"


@pytest.mark.compiled
@pytest.mark.slow
def test_sigint_stops_it_cleanly():
    b = Board("--tcp", "0")
    with SerialTransport(b.where) as t:
        Accelerator(t, timeout=10.0).ping()
        assert b.stop(signal.SIGINT) == 0, b.stderr
    assert "Traceback" not in b.stderr and "stopped after" in b.stderr
