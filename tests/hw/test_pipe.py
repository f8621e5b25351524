"""mxhw.lib.pipe.credit_output: a free-running pipeline with a credit-counted output
buffer against a reference queue, cycle by cycle, under Hypothesis-drawn valid/ready
patterns; parameter errors."""

from collections import deque

import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from hypothesis import given
from hypothesis import strategies as st

from mxhw.lib.pipe import credit_depth, credit_output
from mxhw.sim import run
from support.hyp import budget

WIDTH = 8


def stage_fn(x):
    """What the test pipeline's last level computes."""
    return (3 * x + 1) % (1 << WIDTH)


class FreePipe(wiring.Component):
    """``pipeline - 1`` free-running registers, then ``stage_fn`` into the credit buffer."""

    def __init__(self, pipeline):
        self.pipeline = pipeline
        super().__init__({"i": In(stream.Signature(WIDTH)), "o": Out(stream.Signature(WIDTH))})

    def elaborate(self, platform):
        m = Module()
        take, w_payload, w_valid = credit_output(m, self.i, self.o, self.pipeline)
        data, valid = self.i.payload, take
        for s in range(self.pipeline - 1):
            d, v = Signal(WIDTH, name=f"d{s}", reset_less=True), Signal(name=f"v{s}")
            m.d.sync += [d.eq(data), v.eq(valid)]
            data, valid = d, v
        m.d.comb += [w_payload.eq(stage_fn(data)), w_valid.eq(valid)]
        return m


class Reference:
    """The contract, as a Python model: ``pipeline`` cycles from an accepted item to its
    result at ``o``, results queued in order until ``o`` takes them, ``i.ready`` high
    (registered) while fewer than ``pipeline + 1`` items are in flight or queued."""

    def __init__(self, pipeline):
        self.p = pipeline
        self.stages = [None] * max(pipeline - 1, 0)
        self.queue = deque()
        self.count, self.ready = 0, True

    def step(self, valid, payload, o_ready):
        """One clock cycle: ``(i.ready, o.valid, o.payload or None)`` seen before the edge."""
        if self.p == 0:
            return o_ready, valid, stage_fn(payload) if valid else None
        seen = (self.ready, bool(self.queue), self.queue[0] if self.queue else None)
        taken = valid and self.ready
        given = bool(self.queue) and o_ready
        x = payload if taken else None
        if self.stages:
            self.stages.insert(0, x)
            x = self.stages.pop()
        if given:
            self.queue.popleft()
        if x is not None:
            self.queue.append(stage_fn(x))
        assert len(self.queue) <= self.p + 1
        self.count += taken - given
        self.ready = self.count < self.p + 1
        return seen


@budget(25)
@given(pipeline=st.integers(0, 8), data=st.data())
def test_against_reference_queue(pipeline, data):
    cycles = data.draw(st.integers(1, 60))
    valid = data.draw(st.lists(st.booleans(), min_size=cycles, max_size=cycles))
    ready = data.draw(st.lists(st.booleans(), min_size=cycles, max_size=cycles))
    payload = data.draw(st.lists(st.integers(0, (1 << WIDTH) - 1), min_size=cycles,
                                 max_size=cycles))
    dut, ref = FreePipe(pipeline), Reference(pipeline)
    sent, got = [], []

    async def tb(ctx):
        for c in range(cycles):
            ctx.set(dut.i.valid, valid[c])
            ctx.set(dut.i.payload, payload[c])
            ctx.set(dut.o.ready, ready[c])
            want = ref.step(valid[c], payload[c], ready[c])
            i_ready, o_valid, o_payload = (ctx.get(dut.i.ready), ctx.get(dut.o.valid),
                                           ctx.get(dut.o.payload))
            assert (bool(i_ready), bool(o_valid)) == (bool(want[0]), bool(want[1])), c
            if o_valid:
                assert o_payload == want[2], c
                if ready[c]:
                    got.append(o_payload)
            if valid[c] and i_ready:
                sent.append(payload[c])
            await ctx.tick()

    if pipeline == 0:      # combinational: clock the testbench anyway
        top = Module()
        top.submodules.dut = dut
        tick = Signal()
        top.d.sync += tick.eq(~tick)
    else:
        top = dut
    run(top, tb)
    # nothing lost, repeated or reordered: what came out is a prefix of what went in
    assert got == [stage_fn(x) for x in sent[:len(got)]]


@pytest.mark.parametrize("pipeline", [1, 3, 7])
def test_full_throughput_and_stall(pipeline):
    """``o.ready`` high: one item a cycle, ``i.ready`` never drops; ``o.ready`` low: the
    buffer takes every item in flight, then ``i.ready`` drops after exactly
    ``credit_depth`` items."""
    dut = FreePipe(pipeline)
    n = 3 * pipeline + 5
    log = {}

    async def tb(ctx):
        ctx.set(dut.o.ready, 1)
        ctx.set(dut.i.valid, 1)
        for c in range(n):
            ctx.set(dut.i.payload, c)
            assert ctx.get(dut.i.ready)
            await ctx.tick()
        ctx.set(dut.o.ready, 0)
        accepted = 0
        for c in range(3 * pipeline + 5):
            if ctx.get(dut.i.ready):
                accepted += 1
            await ctx.tick()
        log["accepted"] = accepted
        ctx.set(dut.i.valid, 0)
        ctx.set(dut.o.ready, 1)
        out = 0
        for c in range(3 * pipeline + 5):
            out += ctx.get(dut.o.valid)
            await ctx.tick()
        log["out"] = out

    run(dut, tb)
    # when o.ready drops, `pipeline` results are in flight or at o; the buffer has room
    # for one more
    assert log["accepted"] == credit_depth(pipeline) - pipeline
    assert log["out"] == credit_depth(pipeline)


def test_bad_parameters():
    m = Module()
    dut = FreePipe(1)
    with pytest.raises(ValueError, match="pipeline"):
        credit_output(m, dut.i, dut.o, -1)
    with pytest.raises(TypeError, match="pipeline"):
        credit_output(m, dut.i, dut.o, 1.5)
    with pytest.raises(ValueError, match="pipeline"):
        credit_depth(0)
