"""Requantizer against golden.quantize (batched simulations, random back-pressure) and
constructor errors."""

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from mxhw import golden
from mxhw.dequant import Requantizer
from mxhw.golden import formats
from mxhw.sim import run, seeded_rng, stream_recv, stream_send

FMTS = ["mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e3m2", "mxfp6_e2m3", "mxfp4_e2m1", "mxint8",
        "mxint4"]


def simulate(dut, blocks, seed):
    rng = seeded_rng(seed)
    got = []
    W = dut.in_width
    layout = dut.i.payload.shape()

    def pack(b):
        v = 0
        for j, x in enumerate(b):
            v |= (int(x) & ((1 << W) - 1)) << (W * j)
        return layout.from_bits(v)

    async def producer(ctx):
        await stream_send(ctx, dut.i, [pack(b) for b in blocks], rng=rng, p_idle=0.3)

    async def consumer(ctx):
        for p in await stream_recv(ctx, dut.o, len(blocks), rng=rng, p_stall=0.4):
            bits = dut.fmt.element.bits
            els = p.elements.as_value().value
            got.append((p.scale, [(els >> (bits * j)) & ((1 << bits) - 1)
                                  for j in range(dut.k)]))

    run(dut, producer, consumer)
    return got


def check(dut, blocks, seed):
    got = simulate(dut, blocks, seed)
    fmt = dataclasses.replace(dut.fmt, block=dut.k)
    x = np.ldexp(np.array(blocks, dtype=np.float64), -dut.in_frac)
    q = golden.quantize(x, fmt)
    for b, (scale, els) in enumerate(got):
        assert scale == int(q.scales[b, 0]), (b, blocks[b])
        assert els == [int(c) for c in q.elements[b]], (b, blocks[b])


def value_strategy(W):
    lo, hi = -(1 << (W - 1)), (1 << (W - 1)) - 1
    return st.one_of(st.integers(lo, hi), st.sampled_from([0, lo, hi, 1, -1]),
                     st.integers(max(lo, -64), min(hi, 64)))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(FMTS), st.integers(2, 30), st.integers(-8, 40), st.integers(1, 2),
       st.data())
def test_requant_vs_golden(fmt, in_width, in_frac, pipeline, data):
    k = 4
    dut = Requantizer(fmt, k=k, in_width=in_width, in_frac=in_frac, pipeline=pipeline)
    blk = st.lists(value_strategy(in_width), min_size=k, max_size=k)
    # scaled blocks: one large value and small ones (subnormals, underflow, ties)
    shifted = st.builds(lambda b, s: [x >> s for x in b[:-1]] + [b[-1]], blk,
                        st.integers(0, in_width))
    blocks = data.draw(st.lists(st.one_of(blk, shifted), min_size=1, max_size=24))
    check(dut, blocks, data.draw(st.integers(0, 2**32)))


@pytest.mark.parametrize("fmt", FMTS)
def test_requant_k32_all_codes(fmt):
    """k = 32: blocks whose maximum is 2**emax-ish, so that every element code's value and
    every midpoint between neighbours (RNE ties) appears."""
    elem = formats.get(fmt).element
    frac = 1 - elem.lsb_exp  # midpoints are on the grid
    vals = np.unique(np.abs(elem.finite_values))
    mids = (vals[:-1] + vals[1:]) / 2
    cand = np.concatenate([vals, mids, -vals, -mids, vals * 1.0625])
    ints = np.round(np.ldexp(cand, frac)).astype(np.int64)
    top = int(np.ldexp(2.0 ** elem.emax, frac))
    rng = np.random.default_rng(3)
    ints = rng.permutation(ints)
    blocks = []
    for i in range(0, len(ints), 31):
        chunk = list(ints[i:i + 31]) + [0] * (31 - len(ints[i:i + 31]))
        blocks.append([top] + chunk)
    blocks.append([0] * 32)
    blocks.append([(1 << 39) - 1] + [-(1 << 39)] + [1] * 30)
    dut = Requantizer(fmt, k=32, in_width=40, in_frac=frac, pipeline=2)
    check(dut, blocks, 5)


def test_init():
    r = Requantizer("mxfp8_e4m3")
    assert r.k == 32 and r.in_width == 24 and r.in_frac == 16 and r.latency == 2


@pytest.mark.parametrize("kwargs,exc,msg", [
    ({"fmt": "fp8_e4m3"}, TypeError,
     "fmt must be a block format (a name or a BlockFormat), not ElementFormat('fp8_e4m3')"),
    ({"fmt": "nope"}, ValueError, None),
    ({"k": 0}, ValueError, "k must be a positive integer, not 0"),
    ({"in_kind": "float"}, ValueError, "in_kind must be one of ('fixed',), not 'float'"),
    ({"in_width": 1}, ValueError, "in_width must be an integer in 2..53, not 1"),
    ({"in_width": 54}, ValueError, "in_width must be an integer in 2..53, not 54"),
    ({"in_frac": 1.5}, TypeError, "in_frac must be an integer, not 1.5"),
    ({"in_width": 53, "in_frac": -100}, ValueError,
     "in_frac -100 with in_width 53 gives scale exponents in [-127, 144], outside E8M0's "
     "[-127, 127] (or in_frac above 1000)"),
    ({"pipeline": 3}, ValueError, "pipeline must be 1 or 2, not 3"),
])
def test_init_wrong(kwargs, exc, msg):
    kw = {"fmt": "mxfp8_e4m3", **kwargs}
    with pytest.raises(exc) as info:
        Requantizer(**kw)
    if msg is None:
        assert str(info.value).startswith("fmt must be a block format name, one of ")
        assert str(info.value).endswith("; not 'nope'")
    else:
        assert str(info.value) == msg
