"""ParallelMAC (bit-parallel integer MAC datapath) against a NumPy dot product."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

from mxhw import sim
from mxhw.golden import bitserial as g
from mxhw.pe import ParallelMAC
from support.hyp import budget
from support.pe import ops_beats, run_stream, waits


def run_mac(dut, ops, idle=0, stall=0, p_idle=0.3, p_stall=0.4):
    """Send operations (lists of (acts, weights) beats); return the datapath's results."""
    return run_stream(dut, ops_beats(ops, ("a", "w")), len(ops), idle, stall, p_idle, p_stall)


def numpy_dot(dut, op):
    """The operation's dot product (NumPy, int64: exact here), wrapped to acc_width."""
    a = np.array([x for b in op for x in b[0]], dtype=np.int64)
    w = np.array([x for b in op for x in b[1]], dtype=np.int64)
    return g.wrap(int(np.dot(a, w)), dut.acc_width)


@st.composite
def operations(draw, lanes, act_width, w_width, extremes=False):
    def ints(n):
        lo, hi = -(1 << (n - 1)), (1 << (n - 1)) - 1
        return st.sampled_from([lo, hi, 0, -1]) if extremes else st.integers(lo, hi)
    return [[([draw(ints(act_width)) for _ in range(lanes)],
              [draw(ints(w_width)) for _ in range(lanes)])
             for _ in range(draw(st.integers(1, 4)))]
            for _ in range(draw(st.integers(1, 5)))]


@pytest.mark.parametrize("lanes", [1, 3, 8])
@budget(15)
@given(data=st.data(), idle=waits(), stall=waits())
def test_mac_matches_numpy_dot(lanes, data, idle, stall):
    dut = ParallelMAC(lanes=lanes)
    ops = data.draw(operations(lanes, 8, 8))
    assert run_mac(dut, ops, idle, stall) == [numpy_dot(dut, op) for op in ops]


@budget(10)
@given(data=st.data(), idle=waits(), stall=waits())
def test_mac_extremes_other_widths(data, idle, stall):
    # -2**(n-1) operands, unequal widths, an odd lane count (unbalanced tree)
    dut = ParallelMAC(lanes=5, act_width=6, w_width=4)
    ops = data.draw(operations(5, 6, 4, extremes=True))
    assert run_mac(dut, ops, idle, stall) == [numpy_dot(dut, op) for op in ops]


def test_mac_agrees_with_pe_dot_golden():
    """The golden twin named in the docstring: pe_dot at w_width bits."""
    rng = np.random.default_rng(1)
    dut = ParallelMAC(lanes=4)
    ops = [[(list(rng.integers(-128, 128, 4)), list(rng.integers(-128, 128, 4)))
            for _ in range(3)] for _ in range(3)]
    want = [g.pe_dot([x for b in op for x in b[0]], [x for b in op for x in b[1]], 8,
                     dut.acc_width) for op in ops]
    assert run_mac(dut, ops) == want == [numpy_dot(dut, op) for op in ops]


def test_mac_acc_wraps():
    dut = ParallelMAC(lanes=1, acc_width=16)
    ops = [[([-128], [-128])] * 4]
    assert run_mac(dut, ops) == [g.wrap(4 * 16384, 16)] == [numpy_dot(dut, ops[0])]


def test_mac_throughput_and_latency():
    """Without gaps or stalls a beat is taken every cycle, and o.valid rises 2 edges after
    the last beat's transfer edge (the documented latency)."""
    dut = ParallelMAC(lanes=2)
    B = 6
    beats = [{"a": [j, -j], "w": [3, 1], "last": int(j == B - 1)} for j in range(B)]
    seen = {"taken": []}

    async def tb(ctx):
        ctx.set(dut.o.ready, 1)
        cycle = sent = 0
        while "out" not in seen:
            ctx.set(dut.i.valid, sent < B)
            if sent < B:
                ctx.set(dut.i.payload, beats[sent])
            _, _, ready, valid, payload = await ctx.tick().sample(dut.i.ready, dut.o.valid,
                                                                  dut.o.payload)
            if sent < B and ready:
                seen["taken"].append(cycle)
                sent += 1
            if valid:
                seen["out"] = (cycle, payload)
            cycle += 1
            assert cycle < 100, "no result"
    sim.run(dut, tb)
    assert seen["taken"] == list(range(B))
    assert seen["out"][1] == sum(2 * j for j in range(B))
    assert seen["out"][0] - seen["taken"][-1] == 3     # first edge o.valid is seen high


def test_mac_init():
    dut = ParallelMAC()
    assert (dut.lanes, dut.act_width, dut.w_width, dut.acc_width) == (1, 8, 8, 24)
    assert ParallelMAC(lanes=15).acc_width == 8 + 8 + 4 + 8
    assert ParallelMAC(lanes=38, acc_width=32).acc_width == 32


@pytest.mark.parametrize("kwargs,exc,msg", [
    ({"lanes": 0}, ValueError, "lanes must be in [1, 1024], not 0"),
    ({"lanes": 2.0}, TypeError, "lanes must be an integer, not 2.0"),
    ({"act_width": 1}, ValueError, "act_width must be in [2, 32], not 1"),
    ({"w_width": "8"}, TypeError, "w_width must be an integer, not '8'"),
    ({"w_width": 33}, ValueError, "w_width must be in [2, 32], not 33"),
    ({"acc_width": True}, TypeError, "acc_width must be an integer, not True"),
    ({"lanes": 4, "acc_width": 17}, ValueError,
     "acc_width must be >= act_width + w_width + clog2(lanes) = 18 (one exact beat), "
     "not 17"),
])
def test_mac_init_wrong(kwargs, exc, msg):
    with pytest.raises(exc) as e:
        ParallelMAC(**kwargs)
    assert str(e.value) == msg
