"""``Model.exchange``: a byte link moved in bulk through C. Expectations come from the
design's reference (payloads) and from the per-cycle ``stream_exchange`` on Amaranth's
simulator (cycles); bad parameters raise clear errors."""

import pytest
from hypothesis import given, strategies as st

from mxhw import sim
from mxhw.sim import compiled
from mxhw.sim.compiled import CompiledSimError
from mxhw.sim.examples import StreamPipeline
from support.hyp import budget


def _pysim_cycles(data):
    """Cycles of the per-cycle path on pysim: offer every byte, take as many (ready held)."""
    dut, out = StreamPipeline(width=8, stages=3), {}

    async def tb(ctx):
        out["got"], out["cycles"] = await sim.stream_exchange(ctx, dut.i, data, dut.o,
                                                              len(data), raw=True)

    sim.run(dut, tb, backend="pysim")
    return out["got"], out["cycles"]


@pytest.fixture(scope="module")
def model():
    dut = StreamPipeline(width=8, stages=3)
    with compiled.build(dut) as m:
        yield dut, m


@pytest.mark.compiled
@budget(10)
@given(data=st.binary(min_size=1, max_size=48), linger=st.integers(0, 12))
def test_exchange_matches_reference_and_pysim(model, data, linger):
    """Every byte goes in and its reference comes out, in the per-cycle path's cycles plus
    the ``linger`` quiet cycles the call waits for further bytes."""
    dut, m = model
    got, cycles, sent = m.exchange(dut.i, dut.o, data, want=len(data), linger=linger)
    assert sent == len(data)
    assert list(got) == [dut.reference(b) for b in data]
    ref_got, ref_cycles = _pysim_cycles(list(data))
    assert list(got) == ref_got
    assert cycles == ref_cycles + linger


@pytest.mark.compiled
@budget(10)
@given(data=st.binary(min_size=2, max_size=48), budget_=st.integers(1, 20))
def test_exchange_stops_at_max_cycles(model, data, budget_):
    """A cycle budget too short for the whole exchange: the call returns what moved, and
    the next call carries on from there with nothing lost or duplicated."""
    dut, m = model
    got, cycles, sent = m.exchange(dut.i, dut.o, data, want=len(data), max_cycles=budget_)
    assert cycles <= budget_ and sent <= cycles
    more, _, sent2 = m.exchange(dut.i, dut.o, data[sent:], want=len(data) - len(got))
    assert sent + sent2 == len(data)
    assert list(got + more) == [dut.reference(b) for b in data]


@pytest.mark.compiled
@pytest.mark.parametrize("name, value, allowed", [
    ("want", -1, "0"), ("max_cycles", -5, "0"), ("linger", 1 << 21, "1048576"),
    ("want", 1.5, "int"),
])
def test_exchange_bad_parameters(model, name, value, allowed):
    dut, m = model
    with pytest.raises((ValueError, TypeError), match=name) as e:
        m.exchange(dut.i, dut.o, b"\x01", **{name: value})
    assert allowed in str(e.value)


@pytest.mark.compiled
def test_exchange_needs_byte_streams():
    dut = StreamPipeline(width=16, stages=1)
    with compiled.build(dut) as m:
        with pytest.raises(CompiledSimError, match="8 bits wide, not 16 and 16"):
            m.exchange(dut.i, dut.o, b"\x01", want=1)
