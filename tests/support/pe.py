"""Shared test code of the PE, dequantisation and memory tests: stream drivers, hand-shake
patterns Hypothesis draws (so a failure shrinks to the smallest stall pattern), block
formats of any size, and the re-quantiser's drivers and input strategies."""

import dataclasses

import numpy as np
from amaranth.hdl import Module, Signal
from hypothesis import strategies as st

from mxhw import golden, sim
from mxhw.golden.formats import BlockFormat

__all__ = ["Waits", "waits", "run_stream", "ops_beats", "first_to_result", "mx_block",
           "sized", "requant_pack", "requant_input", "requant_run", "fixed_blocks", "f32",
           "F32_EDGES", "F32_NONFINITE", "f32_block", "f32_blocks"]

E8M0 = golden.formats.get("e8m0")


# ---- hand-shake patterns -----------------------------------------------------------------

class Waits:
    """A stand-in for ``random.Random`` that :func:`mxhw.sim.stream_send` /
    :func:`~mxhw.sim.stream_recv` draw their idle/stall cycles from: ``random()`` returns
    0.0 (wait a cycle) for each ``True`` of ``pattern``, then 1.0 (go), cyclically; so
    every beat waits a bounded number of cycles. ``Waits([])``: never wait."""

    def __init__(self, pattern):
        self.pattern = [*map(bool, pattern), False]
        self._i = 0

    def random(self):
        v = self.pattern[self._i % len(self.pattern)]
        self._i += 1
        return 0.0 if v else 1.0

    def __repr__(self):
        return f"Waits({self.pattern[:-1]!r})"


def waits(max_size=12):
    """Strategy: a :class:`Waits` pattern (shrinks to no waits at all)."""
    return st.lists(st.booleans(), max_size=max_size).map(Waits)


def _rng(x, seed_offset=0):
    """A :class:`Waits`, or an int seed (``mxhw.sim.seeded_rng(seed + seed_offset)``)."""
    return x if isinstance(x, Waits) else sim.seeded_rng(x + seed_offset)


def run_stream(dut, beats, count, idle=0, stall=0, p_idle=0.3, p_stall=0.4, **kw):
    """Send ``beats`` on ``dut.i`` and receive ``count`` payloads from ``dut.o``, idling
    and stalling as ``idle`` / ``stall`` say (a :class:`Waits`, or a seed: the stall seed
    is ``stall + 1``). ``kw`` go to :func:`mxhw.sim.run` (``backend``) and ``timeout`` to
    the receiver."""
    timeout = kw.pop("timeout", None)
    got = []
    top = dut
    if getattr(dut, "latency", None) == 0:     # combinational: clock the testbench anyway
        top = Module()
        top.submodules.dut = dut
        tick = Signal()
        top.d.sync += tick.eq(~tick)

    async def producer(ctx):
        await sim.stream_send(ctx, dut.i, beats, rng=_rng(idle), p_idle=p_idle)

    async def consumer(ctx):
        extra = {} if timeout is None else {"timeout": timeout}
        got.extend(await sim.stream_recv(ctx, dut.o, count, rng=_rng(stall, 1),
                                         p_stall=p_stall, **extra))
    sim.run(top, producer, consumer, **kw)
    return got


def ops_beats(ops, fields):
    """The beats of operations (lists of beats, each a tuple of ``fields`` values), the
    last beat of each with ``last`` set."""
    return [{**dict(zip(fields, beat)), "last": int(j == len(op) - 1)}
            for op in ops for j, beat in enumerate(op)]


def first_to_result(dut, beats, limit=200):
    """Feed ``beats`` without gaps (``o.ready`` high); ``(cycles, payload)``: the clock edges
    from the first beat's transfer to the edge the result is seen valid, and the result."""
    seen = {}

    async def tb(ctx):
        ctx.set(dut.o.ready, 1)
        ctx.set(dut.i.valid, 1)
        cycle = sent = 0
        while "out" not in seen:
            if sent < len(beats):
                ctx.set(dut.i.payload, beats[sent])
            else:
                ctx.set(dut.i.valid, 0)
            _, _, ready, valid, payload = await ctx.tick().sample(dut.i.ready, dut.o.valid,
                                                                  dut.o.payload)
            if sent < len(beats) and ready:
                seen.setdefault("first", cycle)
                sent += 1
            if valid:
                seen["out"] = (cycle, payload)
            cycle += 1
            assert cycle < limit, "no result"
    sim.run(dut, tb)
    return seen["out"][0] - seen["first"], seen["out"][1]


# ---- block formats -----------------------------------------------------------------------

def mx_block(element, k):
    """A block format of ``k`` elements of the element format ``element`` with E8M0
    scales (OCP MX but for the block size)."""
    return BlockFormat(name=f"test_{element}_{k}", candidates=(golden.formats.get(element),),
                       scale=E8M0, block=k)


def sized(fmt, k):
    """The golden block format ``fmt`` (a name or alias) with blocks of ``k`` elements."""
    f = golden.formats.get(fmt)
    return dataclasses.replace(f, name=f"{f.name}_k{k}", block=k)


# ---- the re-quantiser --------------------------------------------------------------------

def requant_pack(dut, block):
    """One input payload of a re-quantiser: fixed-point integers or float32 bit patterns."""
    W = dut.in_width
    v = 0
    for j, x in enumerate(block):
        v |= (int(x) & ((1 << W) - 1)) << (W * j)
    return dut.i.payload.shape().from_bits(v)


def requant_input(dut, blocks):
    """The values the input blocks stand for (golden's input)."""
    if dut.in_kind == "fp32":
        return np.array(blocks, dtype=np.uint32).reshape(-1, dut.k).view(np.float32)
    return np.ldexp(np.array(blocks, dtype=np.float64), -dut.in_frac)


def requant_run(dut, blocks, idle=0, stall=0):
    """The re-quantiser's output payloads for ``blocks`` under the hand-shake patterns."""
    return run_stream(dut, [requant_pack(dut, b) for b in blocks], len(blocks), idle, stall)


def check_requant(dut, blocks, idle=0, stall=0):
    """A re-quantiser's output blocks (:func:`requant_run`) equal golden.quantize of its
    input values (:func:`requant_input`) under ``dut.fmt``: scale and element codes."""
    got = requant_run(dut, blocks, idle, stall)
    q = golden.quantize(requant_input(dut, blocks), dut.fmt)
    bits = dut.fmt.element.bits
    for b, p in enumerate(got):
        els = p.elements.as_value().value
        assert p.scale == int(q.scales[b, 0]), (b, blocks[b])
        assert [(els >> (bits * j)) & ((1 << bits) - 1) for j in range(dut.k)] == \
            [int(c) for c in q.elements[b]], (b, blocks[b])


def fixed_blocks(k, W):
    """Blocks of ``k`` signed ``W``-bit integers: random, extremes, small values, and one
    large value with small ones (subnormals, underflow, ties; where MXSF mode S wins)."""
    lo, hi = -(1 << (W - 1)), (1 << (W - 1)) - 1
    v = st.one_of(st.integers(lo, hi), st.sampled_from([0, lo, hi, 1, -1]),
                  st.integers(max(lo, -64), min(hi, 64)))
    blk = st.lists(v, min_size=k, max_size=k)
    shifted = st.builds(lambda b, s: [x >> s for x in b[:-1]] + [b[-1]], blk,
                        st.integers(0, W))
    return st.one_of(blk, shifted)


def f32(sign, exp, man):
    return sign << 31 | exp << 23 | man


#: Finite float32 edge cases: zeros, smallest/largest subnormal, smallest normal, one,
#: largest normal (both signs).
F32_EDGES = [f32(s, e, m) for s in (0, 1) for e, m in
             [(0, 0), (0, 1), (0, 0x7FFFFF), (1, 0), (127, 0), (254, 0x7FFFFF)]]
#: Non-finite float32: +-Inf, quiet and signalling NaNs.
F32_NONFINITE = [f32(0, 255, 0), f32(1, 255, 0), f32(0, 255, 1 << 22), f32(1, 255, 0x7FFFFF),
                 f32(0, 255, 1)]


@st.composite
def f32_block(draw, k, nonfinite=True):
    """k float32 bit patterns with exponents in a window below a random top (so elements
    are neither all flushed to zero nor all alike), mantissas random or with only their
    top few bits set (exact RNE ties on the element grid), some edge cases; with
    ``nonfinite``, now and then a NaN or Inf."""
    top = draw(st.one_of(st.integers(0, 254), st.sampled_from([0, 1, 2, 3, 4, 253, 254])))
    span = draw(st.integers(0, 40))
    special = F32_EDGES + (F32_NONFINITE if nonfinite else [])
    els = []
    for _ in range(k):
        if draw(st.integers(0, 11)) == 0:
            els.append(draw(st.sampled_from(special)))
            continue
        nb = draw(st.integers(0, 23))
        man = draw(st.integers(0, (1 << nb) - 1)) << (23 - nb)
        els.append(f32(draw(st.integers(0, 1)), max(0, top - draw(st.integers(0, span))),
                       man))
    return els


def f32_blocks(k):
    """Structured blocks, raw random bit patterns, and float32 values from Hypothesis."""
    floats = st.floats(width=32, allow_nan=True, allow_infinity=True).map(
        lambda v: int(np.array(v, dtype=np.float32).view(np.uint32)))
    return st.one_of(f32_block(k), f32_block(k, nonfinite=False),
                     st.lists(st.integers(0, 2**32 - 1), min_size=k, max_size=k),
                     st.lists(floats, min_size=k, max_size=k))
