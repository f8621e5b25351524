"""``SimTransport(backend="compiled")``: the host driver on the compiled SoC model, the
link's bytes moved in bulk through C (``Model.exchange``, a whole response per read),
gives golden's results; a read collects the whole response, header and payload, in one
call into C."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

from mxhw import golden
from mxhw.soc.driver import Accelerator
from mxhw.soc.transport import SimTransport
from mxhw.soc.top import SoCConfig
from support.hyp import budget

CFG = SoCConfig(scratch_words=256)


@pytest.fixture(scope="module")
def acc():
    with Accelerator(SimTransport(CFG, backend="compiled")) as a:
        yield a


@pytest.mark.compiled
@budget(6)
@given(m=st.integers(1, 9), k=st.sampled_from([32, 64]), n=st.integers(1, 9),
       seed=st.integers(0, 2**16))
def test_matmul_matches_golden(acc, m, k, n, seed):
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal((m, k)), rng.standard_normal((k, n))
    ref = golden.gemm(golden.quantize(x, CFG.fmt_a, axis=1),
                      golden.quantize(w, CFG.fmt_b, axis=0), CFG.acc)
    assert np.array_equal(acc.matmul(x, w), ref, equal_nan=True)


@pytest.mark.compiled
def test_scratchpad_round_trip_and_cycles(acc):
    words = list(range(0, 4000, 37))[:64]
    c0 = acc.transport.cycles
    acc.write_scratch(0, words)
    assert acc.read_scratch(0, len(words)) == words
    assert acc.transport.cycles - c0 >= 4 * len(words)    # a byte per cycle at most


@pytest.mark.compiled
def test_read_collects_whole_response_in_one_call(acc):
    """A READ's header read brings its payload along: the payload read makes no call."""
    from mxhw.soc import protocol as P
    t = acc.transport
    calls = []
    step = t._step_compiled
    t._step_compiled = lambda *a: (calls.append(a), step(*a))
    try:
        t.write(P.request(P.Cmd.READ, 0x0, 8, seq=7))     # the ID and VERSION registers
        head = t.read(P.RESP_HEADER)
        rest = t.read(8 + 2)
    finally:
        del t._step_compiled
    resp, tail = P.parse_response(head + rest)
    assert resp.ok and resp.seq == 7 and len(resp.payload) == 8 and tail == b""
    assert len(calls) == 1


@pytest.mark.parametrize("backend", ["verilator", "", None])
def test_rejects_bad_backend(backend):
    with pytest.raises(ValueError, match="backend must be one of 'pysim', 'compiled'"):
        SimTransport(CFG, backend=backend)
