"""Regression tests of issue #31's findings 1, 3, 4, 5, 6 and 7 (the host side), each on
the simulated SoC where the finding was measured (pysim), or on the call that was wrong."""

import dataclasses
import time

import numpy as np
import pytest
from support.robust import FaultyTransport, run_cli, run_threads

from mxhw import golden
from mxhw.soc import protocol as P
from mxhw.soc import regmap
from mxhw.soc.driver import Accelerator, NoResponse, SimTransport
from mxhw.soc.gemm import GemmUnit
from mxhw.soc.top import LIMITS, SoCConfig

SMALL = SoCConfig(scratch_words=256, rows=0)


@pytest.fixture(scope="module")
def acc():
    a = Accelerator.simulated(SMALL)
    a.write_scratch(0, [0x1111_0000 + i for i in range(16)])
    yield a
    a.close()


# ---- finding 1: the driver desynchronised after a timeout ----

def test_1_timeout_then_the_next_call_gets_its_own_data(acc):
    acc.timeout = 1e-7                     # 2 device cycles: no answer arrives in time
    try:
        with pytest.raises(NoResponse):
            acc.read_scratch(0, 1)
    finally:
        acc.timeout = 1.0
    assert acc.read_scratch(10, 1) == [0x1111_000A]
    assert acc.read_scratch(0, 2) == [0x1111_0000, 0x1111_0001]


class _InterruptOnce(SimTransport):
    """Ctrl-C after the request went out, before its answer was read."""
    armed = False

    def read(self, n, timeout=1.0):
        if self.armed:
            self.armed = False
            raise KeyboardInterrupt
        return super().read(n, timeout)


def test_1_interrupt_between_write_and_read_leaves_no_stale_answer():
    t = _InterruptOnce(SMALL)
    with Accelerator(t) as a:
        a.write_scratch(0, [5, 6, 7])
        t.armed = True
        with pytest.raises(KeyboardInterrupt):
            a.read_scratch(0, 1)
        assert a.read_scratch(2, 1) == [7]


def test_1_short_answer_raises():
    """A 1-word answer to a 2-word READ is refused, not returned as is."""
    class OneWord(FaultyTransport):
        def _execute(self, pkt):
            resp = super()._execute(pkt)
            if pkt[1] != P.Cmd.READ:
                return resp
            h = P.RESP_HEADER
            return P.response(P.Status.OK, pkt[2], resp[h:h + 4])
    with pytest.raises(P.ProtocolError, match="expects 8 bytes"):
        Accelerator(OneWord(), timeout=0.01, resync_time=0.01).read_words(0, 2)


# ---- finding 3: addresses wrapped, words gave struct.error ----

def test_3_no_wrap_no_struct_error(acc):
    with pytest.raises(ValueError, match="outside the device's 256-word scratchpad"):
        acc.write_scratch(2**30, [0xDEAD])
    assert acc.read_scratch(0, 1) == [0x1111_0000]
    for word, exc in [(2**32, ValueError), (-1, ValueError), (1.0, TypeError),
                      (True, TypeError)]:
        with pytest.raises(exc, match="word 0 must be"):
            acc.write_scratch(1, [word])
    assert acc.read_scratch(1, 1) == [0x1111_0001]


@pytest.mark.parametrize("args, exc, msg", [
    ((P.Cmd.WRITE, 2**32, 0, b"\0" * 4), ValueError, r"addr must be in \[0, 2\*\*32\)"),
    ((P.Cmd.READ, -4, 4), ValueError, r"addr must be in"),
    ((P.Cmd.READ, 4.0, 4), TypeError, "addr must be an integer"),
    ((P.Cmd.READ, True, 4), TypeError, "addr must be an integer"),
    ((P.Cmd.READ, 2**32 - 4, 8), ValueError, "runs past the end of the 32-bit address"),
    ((P.Cmd.READ, 0, 2**16), ValueError, r"length must be in \[0, 2\*\*16\)"),
    ((P.Cmd.WRITE, 2**32 - 4, 0, b"\0" * 8), ValueError, "runs past the end"),
    ((256,), ValueError, r"cmd must be in \[0, 2\*\*8\)"),
    ((P.Cmd.WRITE, 0, 0, [1, 2]), TypeError, "payload must be bytes"),
])
def test_3_request_refuses(args, exc, msg):
    with pytest.raises(exc, match=msg):
        P.request(*args)


def test_3_request_still_encodes_what_the_device_rejects():
    """Unknown commands, unaligned addresses and bad lengths stay encodable (the device
    answers them with an error status; the link's tests send them)."""
    assert len(P.request(7)) == 11 and len(P.request(P.Cmd.READ, 2, 6)) == 11
    assert P.request(P.Cmd.READ, 2**32 - 4, 4)[3:7] == b"\xfc\xff\xff\xff"


# ---- finding 4: register fields overflowed ----

def test_4_fields_refused():
    with pytest.raises(ValueError, match=r"acc_frac must be <= 127, not 130"):
        SoCConfig(acc_frac=130)
    with pytest.raises(ValueError, match=r"acc_width must be <= 255"):
        SoCConfig(acc_width=256)
    with pytest.raises(ValueError, match=r"does not fit its 8-bit register field"):
        regmap.encode("ACC", frac_bits=130)
    with pytest.raises(ValueError, match=r"GEOMETRY.rows = 256 does not fit"):
        regmap.encode("GEOMETRY", rows=256)
    assert regmap.decode("ACC", regmap.encode("ACC", frac_bits=-128))["frac_bits"] == -128
    with pytest.raises(ValueError, match="rows"):
        GemmUnit(256, 4, "mxfp4", "mxfp4", golden.fixed(32, 16))


def test_4_build_cli_refuses_acc_frac():
    code, _, err = run_cli("mxhw.build", "--board", "ulx3s", "--out", "/nonexistent/x",
                           "--config", "acc_frac=200")
    assert code != 0 and "acc_frac must be <= 127, not 200" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err


# ---- finding 5: sizes without bounds ----

def test_5_every_field_is_bounded():
    """Every integer field has an upper bound; one past it is refused at once (before
    anything is elaborated or allocated)."""
    ints = [f.name for f in dataclasses.fields(SoCConfig) if f.type in (int, "int")]
    assert set(ints) - {"acc_frac"} == set(LIMITS), "an integer SoCConfig field without a bound"
    for name, hi in LIMITS.items():
        bad = 2 * hi if name in ("scratch_words", "a_tiles", "max_k") else hi + 1
        kwargs = {name: bad}
        if name == "depth":
            kwargs["dataflow"] = "weight_stationary"
        t0 = time.monotonic()
        with pytest.raises(ValueError, match=rf"{name} must be <= {hi}"):
            SoCConfig(**kwargs)
        assert time.monotonic() - t0 < 0.5


def test_5_huge_configs_refused():
    for kwargs, msg in [(dict(scratch_words=2**30), "scratch_words must be <= 65536"),
                        (dict(rows=1000), "rows must be <= 32"),
                        (dict(cols=33), "cols must be <= 32"),
                        (dict(max_payload=65536), "max_payload must be <= 65532"),
                        (dict(max_payload=1026), "max_payload must be a multiple of 4"),
                        (dict(clk_hz=2**32), "clk_hz must be <= 1000000000"),
                        (dict(baud=100_000_000), "baud must be <= 12000000")]:
        with pytest.raises(ValueError, match=msg):
            SoCConfig(**kwargs)
    SoCConfig(scratch_words=65536, rows=32, cols=32, max_k=4096)   # the bounds themselves


def test_5_build_cli_refuses_huge_scratchpad():
    code, _, err = run_cli("mxhw.build", "--board", "ulx3s", "--out", "/nonexistent/x",
                           "--config", "scratch_words=1073741824")
    assert code != 0 and "scratch_words must be <= 65536" in err, err
    assert "Traceback" not in err


# ---- finding 6: threads, close ----

def test_6_threads_on_the_simulated_soc():
    with Accelerator.simulated(SMALL) as a:
        a.write_scratch(0, list(range(100, 132)))
        got = {}

        def worker(k):
            got[k] = [a.read_scratch(8 * k + i, 1)[0] for i in range(8)]

        errors = run_threads(worker, 4)
    assert not errors, errors
    assert got == {k: list(range(100 + 8 * k, 108 + 8 * k)) for k in range(4)}
    assert a.closed
    with pytest.raises(RuntimeError, match="closed"):
        a.ping()


# ---- finding 7: empty operands (the driver and the bench) ----

@pytest.mark.parametrize("shape_a, shape_b, name", [
    ((0, 32), (32, 4), "a"), ((4, 32), (32, 0), "b"), ((4, 0), (0, 4), "a")])
def test_7_matmul_empty(shape_a, shape_b, name):
    a = Accelerator(FaultyTransport())
    a.gemm_config = lambda: {"fmt_a": "mxfp4_e2m1", "fmt_b": "mxfp4_e2m1"}  # no device
    with pytest.raises(ValueError, match=rf"non-empty operands .*: {name} has shape"):
        a.matmul(np.zeros(shape_a), np.zeros(shape_b))


@pytest.mark.parametrize("size, msg", [(("0", "0", "0"), "M must be >= 1, not 0"),
                                       (("4", "4", "33"), "K must be a multiple")])
def test_7_bench_array_bad_size(size, msg):
    code, _, err = run_cli("mxhw.bench", "array", "--size", *size)
    assert code == 2 and msg in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err
