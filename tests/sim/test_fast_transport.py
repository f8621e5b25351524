"""``soc.fast_transport.FastSimTransport``: the host driver on the compiled SoC model with
the link's bytes moved in bulk through C gives golden's results, and the same as the
per-read ``SimTransport`` on the same model."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

from mxhw import golden
from mxhw.soc.driver import Accelerator
from mxhw.soc.fast_transport import FastSimTransport
from mxhw.soc.top import SoCConfig
from support.hyp import budget

CFG = SoCConfig(scratch_words=256)


@pytest.fixture(scope="module")
def acc():
    with Accelerator(FastSimTransport(CFG)) as a:
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


def test_fast_transport_rejects_bad_config():
    with pytest.raises(TypeError, match="config must be a SoCConfig or None, not 'big'"):
        FastSimTransport(config="big")
