"""mxhw.sim.stream_exchange: the compiled back end's C cycle loop (Model.stream) behaves
exactly as the per-cycle Python path (same payloads, same cycle counts, same timeouts),
with random valid gaps and back-pressure; expectations come from the designs' references."""

import random

import numpy as np
import pytest
from hypothesis import given

from mxhw import sim
from mxhw.sim.examples import StreamMACGrid, StreamPipeline
from support.hyp import budget
from support.sim import PATH_PAIRS, PATHS, pipeline_exchange, with_waits, word_lists


@pytest.mark.compiled
@budget(8)
@given(case=with_waits(word_lists(max_size=40), max_wait=6))
def test_paths_agree_with_back_pressure(case):
    """Drawn payloads, producer gaps and consumer stalls: every path gives the reference
    results in the same number of cycles."""
    data, gaps, stalls = case
    results = [pipeline_exchange(b, batch, data, gaps=gaps, stalls=stalls)
               for b, batch in PATH_PAIRS]
    dut = results[0][0]
    expect = [dut.reference(x) for x in data]
    (_, (first, cycles)), *rest = results
    assert first == expect
    for _, (got, c) in rest:
        assert got == expect and c == cycles


@budget(8)
@given(case=with_waits(word_lists(max_size=40), max_wait=6))
def test_per_cycle_path_on_pysim(case):
    """The per-cycle path alone: reference results; at least one cycle per beat and per
    wait, at most those plus the pipeline's depth."""
    data, gaps, stalls = case
    dut, (got, cycles) = pipeline_exchange("pysim", None, data, gaps=gaps, stalls=stalls)
    assert got == [dut.reference(x) for x in data]
    assert max(len(data) + sum(gaps), len(data) + sum(stalls)) <= cycles
    assert cycles <= len(data) + sum(gaps) + sum(stalls) + 3


@budget(8)
@given(case=with_waits(word_lists(max_size=25), max_wait=4))
def test_send_recv_with_waits_match_exchange(case):
    """stream_send with ``gaps`` and stream_recv with ``stalls`` (two testbenches) move the
    same words on the same cycles as one stream_exchange with those waits."""
    data, gaps, stalls = case
    dut = StreamPipeline(width=16, stages=3)
    got, done = [], []

    async def producer(ctx):
        await sim.stream_send(ctx, dut.i, data, gaps=gaps)

    async def consumer(ctx):
        got.extend(await sim.stream_recv(ctx, dut.o, len(data), stalls=stalls))

    async def monitor(ctx):
        cycle = 0
        while len(done) < len(data):
            *_, valid, ready = await ctx.tick().sample(dut.o.valid, dut.o.ready)
            cycle += 1
            if valid and ready:
                done.append(cycle)

    sim.run(dut, producer, consumer, monitor, backend="pysim")
    _, (ex, cycles) = pipeline_exchange("pysim", None, data, gaps=gaps, stalls=stalls)
    assert got == ex == [dut.reference(x) for x in data]
    assert done[-1] == cycles


@pytest.mark.parametrize("backend,batch", PATHS)
def test_cycles_without_gaps(backend, batch):
    # a 3-stage pipeline at one word per cycle: the last word leaves 3 edges after it entered
    dut, (got, cycles) = pipeline_exchange(backend, batch, list(range(20)))
    assert got == [dut.reference(x) for x in range(20)]
    assert cycles == 20 + 3


@pytest.mark.parametrize("backend,batch", PATHS)
def test_matches_stream_send_recv(backend, batch):
    """Without gaps, one stream_exchange receives what stream_send + stream_recv (two
    testbenches) receive."""
    dut = StreamPipeline(width=16, stages=3)
    data = [random.Random(5).randrange(1 << 16) for _ in range(30)]
    got = []

    async def producer(ctx):
        await sim.stream_send(ctx, dut.i, data)

    async def consumer(ctx):
        got.extend(await sim.stream_recv(ctx, dut.o, len(data)))

    sim.run(dut, producer, consumer, backend="pysim")
    assert got == [dut.reference(x) for x in data]
    _, (ex, _) = pipeline_exchange(backend, batch, data)
    assert ex == got


@pytest.mark.parametrize("backend,batch", PATHS)
def test_producer_timeout(backend, batch):
    """Nobody takes the output: the pipeline fills and the producer's timeout fires after
    the same beats and cycles on every path."""
    dut = StreamPipeline(width=16, stages=3)
    seen = []

    async def tb(ctx):
        with pytest.raises(sim.SimTimeout, match="stream_put: ready never rose within 20 "
                                                 "cycles") as e:
            await sim.stream_exchange(ctx, dut.i, list(range(10)), timeout=20, batch=batch)
        seen.append((e.value.sent, e.value.cycles))

    sim.run(dut, tb, backend=backend)
    # one word per stage register, then `timeout` cycles offering the fourth
    assert seen == [(3, 3 + 20)]


@pytest.mark.parametrize("backend,batch", PATHS)
def test_consumer_timeout(backend, batch):
    dut = StreamPipeline(width=16, stages=3)
    seen = []

    async def tb(ctx):
        with pytest.raises(sim.SimTimeout, match="stream_get: valid never rose within 15 "
                                                 "cycles") as e:
            await sim.stream_exchange(ctx, o=dut.o, count=1, timeout=15, batch=batch)
        seen.append((e.value.cycles, e.value.received))

    sim.run(dut, tb, backend=backend)
    assert seen == [(15, [])]


@pytest.mark.compiled
def test_other_testbench_keeps_lock_step():
    """With a second live testbench the compiled back end does not batch: a cycle counter
    running beside the exchange sees every one of its cycles."""
    dut = StreamPipeline(width=16, stages=3)
    ticks, result = [0], {}

    async def counter(ctx):
        while "r" not in result:
            await ctx.tick()
            ticks[0] += 1

    async def tb(ctx):
        result["r"] = await sim.stream_exchange(ctx, dut.i, list(range(25)), dut.o, 25,
                                                rng=random.Random(2), p_idle=0.3, p_stall=0.3)

    sim.run(dut, tb, counter, backend="compiled")
    assert ticks[0] == result["r"][1]


def mac_tiles(rng, tiles, K, n=4):
    a = rng.integers(0, 256, (tiles, K, n))
    b = rng.integers(0, 256, (tiles, K, n))
    return a, b


@pytest.mark.compiled
@pytest.mark.parametrize("raw", [False, True])
def test_struct_payloads_views_and_raw(raw):
    """StreamMACGrid (struct in, array-of-fields out): ctx.set/ctx.get values (raw=False)
    and raw bits (NumPy rows) give the reference results on every path."""
    rng = np.random.default_rng(3)
    tiles, K, n = 3, 5, 4
    a, b = mac_tiles(rng, tiles, K, n)
    beats = [{"a": [int(x) for x in a[t, k]], "b": [int(x) for x in b[t, k]],
              "last": int(k == K - 1)} for t in range(tiles) for k in range(K)]
    outs = []
    for backend, batch in PATH_PAIRS:
        dut = StreamMACGrid(n=n, width=8)
        payloads = beats
        if raw:
            from amaranth.hdl import Const
            ints = [Const.cast(dut.in_layout.const(x)).value for x in beats]
            payloads = np.array([[(v >> (32 * w)) & 0xFFFFFFFF for w in range(3)]
                                 for v in ints], dtype=np.uint32)
        out = {}

        async def tb(ctx):
            out["r"] = await sim.stream_exchange(ctx, dut.i, payloads, dut.o, tiles * n,
                                                 rng=random.Random(9), p_idle=0.2,
                                                 p_stall=0.5, raw=raw, batch=batch)

        sim.run(dut, tb, backend=backend)
        rows, cycles = out["r"]
        aw = dut.acc_width
        if raw:
            rows = [[(r >> (aw * c)) & ((1 << aw) - 1) for c in range(n)] for r in rows]
        else:
            rows = [[int(v) for v in r] for r in rows]
        for t in range(tiles):
            assert rows[t * n:(t + 1) * n] == dut.reference(a[t], b[t]).tolist()
        outs.append((rows, cycles))
    assert outs[0] == outs[1] == outs[2]


@pytest.mark.compiled
def test_model_stream_validates_arrays():
    from mxhw.sim import compiled
    dut = StreamPipeline(width=16, stages=3)
    with compiled.build(dut) as m:
        with pytest.raises(ValueError, match=r"'i__payload' takes 1 32-bit words per beat, "
                                             r"the array has 2"):
            m.stream(dut.i, np.zeros((3, 2), dtype=np.uint32), raw=True)
        with pytest.raises(ValueError, match=r"need one gap/stall count per beat \(3\)"):
            m.stream(dut.i, [1, 2, 3], gaps=[0, 1])
