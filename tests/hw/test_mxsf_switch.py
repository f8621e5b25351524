"""MXSFDecoder: every code in both modes against golden's mxsf candidates (value tables),
with random back-pressure; constructor errors."""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from mxhw.dequant import MXSFDecoder
from mxhw.golden import formats
from mxhw.sim import run, seeded_rng, stream_recv, stream_send


def decode_blocks(dut, blocks, seed):
    rng = seeded_rng(seed)
    layout = dut.i.payload.shape()
    got = []

    def pack(codes, mode, scale):
        v = 0
        for j, c in enumerate(codes):
            v |= int(c) << (8 * j)
        return layout.from_bits(v | (mode << (8 * dut.k)) | (scale << (8 * dut.k + 1)))

    async def producer(ctx):
        await stream_send(ctx, dut.i, [pack(*b) for b in blocks], rng=rng, p_idle=0.3)

    async def consumer(ctx):
        got.extend(await stream_recv(ctx, dut.o, len(blocks), rng=rng, p_stall=0.4))

    run(dut, producer, consumer)
    return got


def value(u, sig_bits):
    if u.is_nan:
        return math.nan
    return (-1.0) ** u.sign * math.ldexp(u.significand, u.exponent - (sig_bits - 1))


def check(dut, blocks, seed):
    fmt = formats.get("mxsf")
    sig_bits = dut.o.payload.elements[0].significand.shape().width
    for (codes, mode, scale), p in zip(blocks, decode_blocks(dut, blocks, seed)):
        assert p.scale == scale
        table = fmt.candidates[mode].table
        for j, c in enumerate(codes):
            u = p.elements[j]
            want, have = table[c], value(u, sig_bits)
            if math.isnan(want):
                assert math.isnan(have), (mode, c)
            else:
                assert have == want and math.copysign(1, have) == math.copysign(1, want), \
                    (mode, c, have, want)
                assert u.is_zero == (want == 0), (mode, c)


def test_exhaustive_both_modes():
    dut = MXSFDecoder(k=32)
    blocks = [(list(range(b * 32, b * 32 + 32)), mode, (b * 37 + mode) % 256)
              for mode in (0, 1) for b in range(8)]
    check(dut, blocks, 1)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 8), st.data())
def test_random_blocks(k, data):
    dut = MXSFDecoder(k=k)
    blk = st.tuples(st.lists(st.integers(0, 255), min_size=k, max_size=k),
                    st.integers(0, 1), st.integers(0, 255))
    check(dut, data.draw(st.lists(blk, min_size=1, max_size=20)),
          data.draw(st.integers(0, 2**32)))


def test_init():
    d = MXSFDecoder()
    assert d.k == 32 and d.latency == 1


@pytest.mark.parametrize("k", [0, -1, 2.0, True])
def test_init_wrong_k(k):
    with pytest.raises(ValueError) as info:
        MXSFDecoder(k=k)
    assert str(info.value) == f"k must be a positive integer, not {k!r}"
