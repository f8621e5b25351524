"""Shared drivers and strategies of the simulation back-end tests (tests/sim)."""

import random

import pytest
from hypothesis import strategies as st

from mxhw import sim
from mxhw.sim.examples import StreamPipeline

__all__ = ["BACKENDS", "VECTORS", "PATHS", "PATH_PAIRS", "to_signed", "word_lists",
           "with_waits", "pipeline_exchange", "both_backends",
           "grid_inputs", "grid_reference", "set_members"]

#: the back ends, the compiled one marked (it needs a C++ compiler)
BACKENDS = ["pysim", pytest.param("compiled", marks=pytest.mark.compiled)]

#: (backend, batch) of mxhw.sim.stream_exchange: the per-cycle path on both back ends, and
#: the compiled back end's C loop (for tests that compare them in one run)
PATH_PAIRS = [("pysim", None), ("compiled", False), ("compiled", None)]

#: PATH_PAIRS as parameters, the compiled ones marked
PATHS = [pytest.param(b, batch, marks=[pytest.mark.compiled] if b == "compiled" else [])
         for b, batch in PATH_PAIRS]

#: 16-bit payloads: corner values, then random ones
VECTORS = [0, 1, 2, 0xFFFF, 0x8000, 0x1234, 0xBEEF, 7, 0x7FFF, 42] + \
          [random.Random(1).randrange(1 << 16) for _ in range(40)]


def to_signed(v, width):
    """``v`` as a ``width``-bit two's complement number."""
    v &= (1 << width) - 1
    return v - (1 << width) if v >> (width - 1) else v


def set_members(ctx, dut, **values):
    """``ctx.set`` each named member of ``dut`` (``set_members(ctx, dut, a=1, b=2)``)."""
    for name, value in values.items():
        ctx.set(getattr(dut, name), value)


def word_lists(bits=16, min_size=1, max_size=30):
    """Lists of ``bits``-bit payloads."""
    return st.lists(st.integers(0, (1 << bits) - 1), min_size=min_size, max_size=max_size)


@st.composite
def with_waits(draw, payloads, max_wait=4):
    """``(payloads, gaps, stalls)``: drawn payloads, and idle cycles before each sent beat
    (producer gaps) and each received beat (consumer stalls), as stream_exchange takes them;
    they shrink towards no waits."""
    data = draw(payloads)
    waits = st.lists(st.integers(0, max_wait), min_size=len(data), max_size=len(data))
    return data, draw(waits), draw(waits)


def pipeline_exchange(backend, batch, data, count=None, stages=3, **kwargs):
    """``(dut, (received, cycles))``: one ``stream_exchange`` through a
    ``StreamPipeline(16, stages)``, receiving ``count`` (default ``len(data)``) words."""
    dut = StreamPipeline(width=16, stages=stages)
    out = {}

    async def tb(ctx):
        out["r"] = await sim.stream_exchange(
            ctx, dut.i, data, dut.o, len(data) if count is None else count, batch=batch,
            **kwargs)

    sim.run(dut, tb, backend=backend)
    return dut, out["r"]


def both_backends(trace):
    """``trace(backend)`` on pysim and on the compiled back end; asserts they agree, returns
    the compiled back end's."""
    a, b = trace("pysim"), trace("compiled")
    assert a == b
    return b


def grid_reference(n, width, acc_width, inputs):
    """The accumulators of ``MACGrid(n, width, acc_width)`` after ``inputs`` (one
    ``(a, b, en)`` per cycle)."""
    ra = [[0] * n for _ in range(n)]
    rb = [[0] * n for _ in range(n)]
    acc = [[0] * n for _ in range(n)]
    for a, b, en in inputs:
        if en:
            acc = [[(acc[r][c] + ra[r][c] * rb[r][c]) % (1 << acc_width) for c in range(n)]
                   for r in range(n)]
        ra = [[a[r] if c == 0 else ra[r][c - 1] for c in range(n)] for r in range(n)]
        rb = [[b[c] if r == 0 else rb[r - 1][c] for c in range(n)] for r in range(n)]
    return acc


def grid_inputs(n, width, cycles, seed):
    """``cycles`` random ``(a, b, en)`` inputs of an ``n`` x ``n`` ``MACGrid``."""
    rng = random.Random(seed)
    return [([rng.randrange(1 << width) for _ in range(n)],
             [rng.randrange(1 << width) for _ in range(n)], rng.random() < 0.8)
            for _ in range(cycles)]
