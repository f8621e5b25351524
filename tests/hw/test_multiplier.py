"""ElementMultiplier against golden.arith.element_product: exhaustive code pairs for the
small formats, a Hypothesis sample of code pairs for every ordered pair of OCP element
formats, the pipelined variants, and constructor errors."""

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mxhw import golden
from mxhw.golden import arith
from mxhw.pe import ElementMultiplier, product_width
from support.hyp import budget
from mxhw.sim import run

OCP = ["fp8_e4m3", "fp8_e5m2", "fp6_e3m2", "fp6_e2m3", "fp4_e2m1", "int8"]


def expected(fa, fb, ca, cb):
    """(p, nonfinite) per pair from golden; p is 0 where an operand is NaN/Inf."""
    fa, fb = golden.formats.get(fa), golden.formats.get(fb)
    ca, cb = np.asarray(ca), np.asarray(cb)
    bad = fa.nonfinite_mask[ca] | fb.nonfinite_mask[cb]
    p, e = arith.element_product(fa, np.where(bad, 0, ca), fb, np.where(bad, 0, cb))
    assert e == fa.lsb_exp + fb.lsb_exp
    return [0 if x else int(v) for v, x in zip(p, bad)], [bool(x) for x in bad]


def simulate(dut, pairs):
    """Products of every (a, b) code pair; pipelined designs get one pair per cycle."""
    out = []

    async def tb(ctx):
        a, b = dut.a.as_value(), dut.b.as_value()
        if dut.latency == 0:
            for ca, cb in pairs:
                ctx.set(a, ca)
                ctx.set(b, cb)
                out.append((ctx.get(dut.p), ctx.get(dut.nonfinite)))
            return
        for i in range(len(pairs) + dut.latency):
            if i < len(pairs):
                ctx.set(a, pairs[i][0])
                ctx.set(b, pairs[i][1])
            *_, p, nf = await ctx.tick().sample(dut.p, dut.nonfinite)
            # sampled at the edge: the result of the pair set `latency` cycles before it
            if i >= dut.latency:
                out.append((p, nf))

    run(dut, tb, clock=None if dut.latency == 0 else 1e-8)
    return out


def check(fa, fb, pairs, pipeline=0):
    dut = ElementMultiplier(fa, fb, pipeline=pipeline)
    got = simulate(dut, pairs)
    exp_p, exp_nf = expected(fa, fb, [a for a, _ in pairs], [b for _, b in pairs])
    for (ca, cb), (p, nf), ep, enf in zip(pairs, got, exp_p, exp_nf):
        assert (p, bool(nf)) == (ep, enf), f"{fa}[{ca:#x}] x {fb}[{cb:#x}]"
    assert len(got) == len(pairs)


def all_pairs(fa, fb):
    na, nb = golden.formats.get(fa).n_codes, golden.formats.get(fb).n_codes
    return list(itertools.product(range(na), range(nb)))


@pytest.mark.parametrize("fa, fb", [
    ("fp4_e2m1", "fp4_e2m1"),
    ("fp6_e2m3", "fp6_e2m3"),
    ("fp6_e3m2", "fp6_e3m2"),
    ("fp6_e2m3", "fp6_e3m2"),
    ("fp4_e2m1", "int8"),
    ("int8", "fp4_e2m1"),
])
def test_exhaustive(fa, fb):
    check(fa, fb, all_pairs(fa, fb))


def test_exhaustive_table_format():
    # a value table (BitMoD-like with an unused code) times E4M3, every pair
    t = golden.formats.table_format(
        "test_table_mul", [0, 0.5, 1, 1.5, 2, 3, 4, 6, float("nan"), -0.5, -1, -1.5, -2, -3,
                           -4, 5])
    check(t, "fp8_e4m3", all_pairs(t, "fp8_e4m3"))


@pytest.mark.parametrize("fa, fb", list(itertools.product(OCP, OCP)))
@budget(3)
@given(data=st.data())
def test_ocp_pairs_sampled(fa, fb, data):
    na, nb = golden.formats.get(fa).n_codes, golden.formats.get(fb).n_codes
    pairs = data.draw(st.lists(st.tuples(st.integers(0, na - 1), st.integers(0, nb - 1)),
                               min_size=200, max_size=300))
    # always include the extremes and the special codes
    fmt_a, fmt_b = golden.formats.get(fa), golden.formats.get(fb)
    ext_a = [int(np.argmax(fmt_a.int_table)), int(np.argmin(fmt_a.int_table)), 0,
             *np.flatnonzero(fmt_a.nonfinite_mask)[:2].tolist()]
    ext_b = [int(np.argmax(fmt_b.int_table)), int(np.argmin(fmt_b.int_table)), 0,
             *np.flatnonzero(fmt_b.nonfinite_mask)[:2].tolist()]
    check(fa, fb, pairs + list(itertools.product(ext_a, ext_b)))


@pytest.mark.parametrize("pipeline", [1, 2])
@budget(5)
@given(data=st.data())
def test_pipelined(pipeline, data):
    pairs = data.draw(st.lists(st.tuples(st.integers(0, 255), st.integers(0, 15)),
                               min_size=1, max_size=100))
    check("fp8_e5m2", "fp4_e2m1", pairs, pipeline=pipeline)


def test_interface():
    dut = ElementMultiplier("int8", "fp4_e2m1", pipeline=1)
    assert dut.latency == 1
    assert dut.lsb_exp == -6 + -1
    # -128 * -6 (= 12 at lsb -1): 128 * 12 = 1536 needs 12 signed bits
    assert product_width("int8", "fp4_e2m1") == 12
    assert dut.p.shape().width == 12 and dut.p.shape().signed
    assert dut.a.shape().size == 8 and dut.b.shape().size == 4
    assert set(dict(iter(dut.b.shape()))) == {"mantissa", "exponent", "sign"}
    # E5M2 max 57344 = 7 * 2**13 at lsb 2**-16: 7 * 2**29, squared: 49 * 2**58
    assert product_width("fp8_e5m2", "fp8_e5m2") == (49 << 58).bit_length() + 1


def test_init_wrong_fmt():
    with pytest.raises(ValueError, match=r"^fmt_a must be an element format name, one of "
                                         r".*fp8_e4m3.*; not 'fp9'$"):
        ElementMultiplier("fp9", "fp4_e2m1")
    with pytest.raises(TypeError, match=r"^fmt_b must be an element format \(a name or an "
                                        r"ElementFormat\), not BlockFormat\('mxfp4_e2m1'\)$"):
        ElementMultiplier("fp4_e2m1", "mxfp4")
    with pytest.raises(TypeError, match=r"^fmt_a must be an element format \(a name or an "
                                        r"ElementFormat\), not 4$"):
        ElementMultiplier(4, "fp4_e2m1")


@pytest.mark.parametrize("pipeline, exc, msg", [
    (-1, ValueError, r"^pipeline must be in \[0, 2\], not -1$"),
    (3, ValueError, r"^pipeline must be in \[0, 2\], not 3$"),
    ("1", TypeError, r"^pipeline must be an integer, not '1'$"),
    (True, TypeError, r"^pipeline must be an integer, not True$"),
    (1.0, TypeError, r"^pipeline must be an integer, not 1\.0$"),
])
def test_init_wrong_pipeline(pipeline, exc, msg):
    with pytest.raises(exc, match=msg):
        ElementMultiplier("fp4_e2m1", "fp4_e2m1", pipeline=pipeline)
