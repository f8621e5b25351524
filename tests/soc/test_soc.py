"""The SoC core through the host driver, over the simulated transport."""

import pytest
from hypothesis import given, strategies as st

from mxhw.soc import protocol as P
from mxhw.soc.driver import Accelerator, DeviceError, NoResponse, SimTransport
from mxhw.soc.top import ID_VALUE, SCRATCHPAD_BASE, VERSION, SoCConfig

from support.hyp import budget

CFG = SoCConfig(scratch_words=256)


@pytest.fixture(scope="module",
                params=["pysim", pytest.param("compiled", marks=pytest.mark.compiled)])
def acc(request):
    return Accelerator.simulated(CFG, backend=request.param)


def test_info(acc):
    info = acc.info()
    assert info["id"] == ID_VALUE and info["id_ok"]
    assert info["version"] == VERSION
    assert info["scratch_words"] == CFG.scratch_words
    assert info["clk_hz"] == CFG.clk_hz


def test_cycle_counter_advances(acc):
    a = acc.read_reg("CYCLES")
    b = acc.read_reg("CYCLES")
    assert b > a


@budget(10)
@given(off=st.integers(0, CFG.scratch_words - 1),
       words=st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=300))
def test_scratchpad_roundtrip(acc, off, words):
    words = words[:CFG.scratch_words - off]
    acc.write_scratch(off, words)
    assert acc.read_scratch(off, len(words)) == words


def test_scratch_register_and_unmapped(acc):
    acc.write_reg("SCRATCH", 0xCAFEF00D)
    assert acc.read_reg("SCRATCH") == 0xCAFEF00D
    acc.write_words(0x40, [123])  # unmapped: ignored
    assert acc.read_words(0x40, 2) == [0, 0]
    # beyond the scratchpad: unmapped too
    assert acc.read_words(SCRATCHPAD_BASE + 4 * CFG.scratch_words, 1) == [0]


def test_bad_request_raises_and_counts(acc):
    before = acc.read_reg("LINK_ERRORS")
    with pytest.raises(DeviceError, match="BAD_ADDR"):
        acc._xfer(P.request(P.Cmd.READ, 2, 4))
    assert acc.read_reg("LINK_ERRORS") == before + 1


def test_unknown_register(acc):
    with pytest.raises(KeyError, match="unknown register 'NOPE'; registers: ID, VERSION"):
        acc.read_reg("NOPE")


class Silent:
    def write(self, data):
        pass

    def read(self, n, timeout=1.0):
        return b""


def test_no_response():
    with pytest.raises(NoResponse, match=r"did not answer within 0\.01 s"):
        Accelerator(Silent(), timeout=0.01).ping()


def test_wrong_backend():
    with pytest.raises(ValueError, match=r"backend must be one of 'pysim', 'compiled', "
                                         r"not 'verilator'"):
        SimTransport(backend="verilator")
