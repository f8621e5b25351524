"""BitSerialDequant against golden.bitserial.dequant."""

import pytest
from hypothesis import given, strategies as st

from mxhw.dequant import BitSerialDequant
from mxhw.golden import bitserial as g
from support.hyp import budget
from support.pe import first_to_result, ops_beats, run_stream, waits


def run_dq(dut, outputs, idle=0, stall=0):
    return run_stream(dut, ops_beats(outputs, ("sum", "scale")), len(outputs), idle, stall)


def expected(dut, outputs):
    return [g.dequant([s for s, _ in o], [c for _, c in o], dut.acc_width) for o in outputs]


@st.composite
def outputs(draw, sum_width, scale_width, extremes=False):
    lo, hi = -(1 << (sum_width - 1)), (1 << (sum_width - 1)) - 1
    smax = (1 << scale_width) - 1
    s_st = st.sampled_from([lo, hi, 0, -1]) if extremes else st.integers(lo, hi)
    c_st = st.sampled_from([0, 1, smax, 1 << (scale_width - 1)]) if extremes \
        else st.integers(0, smax)
    return draw(st.lists(st.lists(st.tuples(s_st, c_st), min_size=1, max_size=4),
                         min_size=1, max_size=4))


@pytest.mark.parametrize("sum_width,scale_width,acc_width", [(20, 8, 30), (9, 3, 12),
                                                             (16, 1, 17)])
@budget(15)
@given(data=st.data(), idle=waits(), stall=waits())
def test_dequant_matches_golden(sum_width, scale_width, acc_width, data, idle, stall):
    dut = BitSerialDequant(sum_width, scale_width, acc_width)
    outs = data.draw(outputs(sum_width, scale_width))
    assert run_dq(dut, outs, idle, stall) == expected(dut, outs)


@budget(10)
@given(data=st.data(), idle=waits(), stall=waits())
def test_dequant_extremes_and_wrap(data, idle, stall):
    # the narrowest accumulator: sums of several extreme products wrap as in golden
    dut = BitSerialDequant(10, 6, 16)
    outs = data.draw(outputs(10, 6, extremes=True))
    assert run_dq(dut, outs, idle, stall) == expected(dut, outs)


def test_dequant_serial_timing():
    """A group takes scale_width cycles: G groups back to back, output taken G * C + 1
    edges after the first transfer."""
    C, G = 8, 3
    dut = BitSerialDequant(12, C, 24)
    beats = [{"sum": -5, "scale": 200, "last": int(j == G - 1)} for j in range(G)]
    cycles, out = first_to_result(dut, beats)
    assert out == g.dequant([-5] * G, [200] * G, 24)
    assert cycles == G * C + 1


def test_dequant_init():
    d = BitSerialDequant(20, 8, 32)
    assert (d.sum_width, d.scale_width, d.acc_width) == (20, 8, 32)


@pytest.mark.parametrize("args,exc,msg", [
    (("20", 8, 32), TypeError, "sum_width must be an integer, not '20'"),
    ((1, 8, 32), ValueError, "sum_width must be in [2, 96], not 1"),
    ((20, 0, 32), ValueError, "scale_width must be in [1, 32], not 0"),
    ((20, 8.0, 32), TypeError, "scale_width must be an integer, not 8.0"),
    ((20, 8, None), TypeError, "acc_width must be an integer, not None"),
    ((20, 8, 27), ValueError, "acc_width must be >= sum_width + scale_width = 28, not 27"),
])
def test_dequant_init_wrong(args, exc, msg):
    with pytest.raises(exc) as e:
        BitSerialDequant(*args)
    assert str(e.value) == msg
