"""The block-end datapath shared by the output-stationary PE and the row unit
(:func:`mxhw.systolic.grid.block_to_grid` then :func:`~mxhw.systolic.grid.accumulate`) alone,
against golden.arith's accumulation step bit for bit: a block sum ``S`` with grid shift
``d = E + frac_bits`` becomes ``round_shift(S, -d, rounding)`` and is added to the
accumulator with saturation or wrap-around. Shifts far left and right of the grid, block
sums wider and narrower than the accumulator, every register-stage count."""

import numpy as np
from amaranth.hdl import Cat, Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from hypothesis import given, strategies as st

from support.hyp import budget
from mxhw.golden.arith import fixed, round_shift
from mxhw.sim import run
from mxhw.lib.signals import ge_const
from mxhw.systolic.grid import accumulate, block_to_grid, grid_shift_from_sum


class BlockEnd(wiring.Component):
    """``reg_out = accumulate(reg, block_to_grid(s, d))``, ``stages`` registers on the way
    (``reg`` delayed alike)."""

    def __init__(self, acc, sw, d_lo, d_hi, stages, split=0):
        self.acc, self.sw, self.stages, self.d_range = acc, sw, stages, (d_lo, d_hi)
        self.split = split
        super().__init__({
            "s": In(signed(sw)), "d": In(range(d_lo, d_hi + 1)),
            "reg": In(signed(acc.width)), "out": Out(signed(acc.width)),
        })

    def elaborate(self, platform):
        m = Module()
        d_lo, d_hi = self.d_range
        # d = t + off with t unsigned (the scale codes' sum) and off = d_lo
        t = Signal(range(d_hi - d_lo + 1))
        m.d.comb += t.eq(self.d - d_lo)
        shift = grid_shift_from_sum(m, self.acc, self.sw, t, d_lo, split=self.split)
        v, reg = block_to_grid(m, self.acc, self.s, shift, [self.reg], self.stages)
        m.d.comb += self.out.eq(accumulate(m, self.acc, reg, v))
        return m


def golden_step(acc, S, d, reg):
    W = acc.width
    x = reg + int(round_shift(np.array([S]), -d, acc.rounding)[0])
    lo, hi = -(1 << (W - 1)), (1 << (W - 1)) - 1
    if acc.overflow == "saturate":
        return min(max(x, lo), hi)
    return ((x - lo) % (1 << W)) + lo


@budget(300, deadline=None)
@given(W=st.integers(2, 20), sw=st.integers(2, 26), stages=st.integers(0, 3),
       overflow=st.sampled_from(["saturate", "wrap"]), rounding=st.sampled_from(["floor", "rne"]),
       split=st.sampled_from([0, 1, 2, 3]), data=st.data())
def test_block_end_matches_golden(W, sw, stages, overflow, rounding, split, data):
    """Shift from a scale-code sum (:func:`grid_shift_from_sum`), unsplit (the PEs') or
    with both shifts split at 1..3 bits (a pre-shift before the first register, the row
    unit's)."""
    acc = fixed(W, 0, overflow, rounding)
    # beyond both clamps of the shift (rounded up to multiples of 2**split)
    d_lo, d_hi = -sw - 3 - (1 << split), W + 4 + (1 << split)
    dut = BlockEnd(acc, sw, d_lo, d_hi, stages, split)
    s_val = st.one_of(st.integers(-(1 << (sw - 1)), (1 << (sw - 1)) - 1),
                      st.sampled_from([0, 1, -1, -(1 << (sw - 1)), (1 << (sw - 1)) - 1]))
    lo, hi = -(1 << (W - 1)), (1 << (W - 1)) - 1
    reg_val = st.one_of(st.integers(lo, hi), st.sampled_from([lo, lo + 1, hi, 0]))
    # sums that, shifted left by d, land just inside or outside signed(W + 1) or signed(W)
    def near(d):
        return st.builds(
            lambda e, sign, dx: max(min(sign * ((1 << max(W - d + e, 0)) + dx),
                                        (1 << (sw - 1)) - 1), -(1 << (sw - 1))),
            st.integers(-1, 0), st.sampled_from([-1, 1]), st.integers(-2, 2))
    vecs = data.draw(st.lists(st.one_of(
        st.tuples(s_val, st.integers(d_lo, d_hi), reg_val),
        st.integers(0, W + 2).flatmap(lambda d: st.tuples(near(d), st.just(d), reg_val))),
        min_size=1, max_size=48))
    got = []

    async def tb(ctx):
        for i in range(len(vecs) + stages):
            if i < len(vecs):
                s, d, reg = vecs[i]
                ctx.set(dut.s, s)
                ctx.set(dut.d, d)
                ctx.set(dut.reg, reg)
            if i >= stages:
                got.append(ctx.get(dut.out))
            await (ctx.tick() if stages else ctx.delay(1e-8))

    run(dut, tb, clock=1e-8 if stages else None)    # stages 0: no clock domain
    assert got == [golden_step(acc, *v) for v in vecs]


def test_ge_const_exhaustive():
    """The compare-as-logic of the row unit's range tests (``ge_const``) against Python's
    ``>=`` for every value of 1..6-bit operands and constants on both sides of the range."""
    for n in range(1, 7):
        consts = list(range(-2, (1 << n) + 3))
        x = Signal(n)
        out = Signal(len(consts))
        m = Module()
        m.d.comb += out.eq(Cat(ge_const(x, c) for c in consts))
        got = {}

        async def tb(ctx):
            for v in range(1 << n):
                ctx.set(x, v)
                await ctx.delay(1e-8)
                got[v] = ctx.get(out)

        run(m, tb, clock=None)
        for v in range(1 << n):
            assert [(got[v] >> i) & 1 for i in range(len(consts))] == \
                [int(v >= c) for c in consts], (n, v)
