"""Shared drivers and strategies of the systolic-array tests (``tests/hw/test_systolic*.py``).

Strategies draw the operands themselves (element codes, scale codes, block modes, NaN
scales, zero blocks) and the stream's stall patterns, so that a failure shrinks to a small
case; the drivers run a :class:`~mxhw.systolic.SystolicArray` (either dataflow) or one
:class:`~mxhw.systolic.MXMacPE` and compare every result with :func:`mxhw.golden.arith.gemm`
bit for bit. The NumPy generators (:func:`random_operand`, :func:`mxsf_operand`) serve the
fixed-example tests.
"""

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mxhw import golden
from mxhw.golden import nvfp4_gemm
from mxhw.golden.arith import fixed, gemm
from mxhw.golden.quantize import MXArray, quantize
from mxhw.sim import run, seeded_rng, stream_recv, stream_send
from mxhw.systolic import MXMacPE, SystolicArray, array_block_format
from mxhw.systolic.driver import array_beats, tile_order, ws_beats

__all__ = ["FORMATS", "ACC", "MXSF", "acc_strategy", "random_operand", "mxsf_operand",
           "with_inf", "mx_operand", "mx_operands", "Waits", "waits", "check_array",
           "check_gemm", "check_ws", "check_fp32", "compare", "check_pe_tiles", "run_pe",
           "pe_results", "gap_source", "assert_raises", "Harness"]

FORMATS = ["mxfp4", "mxfp6_e2m3", "mxfp6_e3m2", "mxfp8_e4m3", "mxfp8_e5m2", "mxint8"]
ACC = fixed(32, 16)
MXSF = golden.formats.get("mxsf")


def acc_strategy():
    """A ``fixed`` accumulation: width, fraction bits, overflow and rounding drawn."""
    return st.builds(fixed, st.integers(8, 40), st.integers(-4, 24),
                     st.sampled_from(["saturate", "wrap"]), st.sampled_from(["floor", "rne"]))


# ---- NumPy operand generators (fixed examples) -----------------------------------------

def random_operand(rng, fmt, shape, axis, spread=4, nan_p=0.0, zero_block_p=0.0):
    """Random MX operand: quantised Gaussian data with per-block magnitudes spread over
    2**-spread..2**spread, plus optional NaN scales and all-zero blocks."""
    x = rng.standard_normal(shape) * np.exp2(rng.integers(-spread, spread + 1, shape))
    mx = quantize(x, fmt, axis=axis)
    scales = mx.scales.copy()
    elements = mx.elements.copy()
    f = golden.formats.get(fmt)
    if nan_p:
        scales[rng.random(scales.shape) < nan_p] = f.scale.nan_code
    if zero_block_p:
        k = f.block_size
        zb = rng.random(scales.shape) < zero_block_p
        zc = int(np.flatnonzero(f.element.table == 0)[0])
        elements[np.repeat(zb, k, axis=axis)] = zc
    return MXArray(mx.fmt, mx.shape, mx.axis, elements, scales, mx.modes)


def mxsf_operand(rng, shape, axis, s_p=0.5, raw_p=0.0, reserved_p=0.0, nan_p=0.0,
                 zero_block_p=0.0, spread=4):
    """A random MXSF operand (M x K along axis 1, or K x N along axis 0).

    Per block, with probability ``s_p`` data that golden quantises to mode S (a few
    outliers on the fp6_e3m2 grid over many tiny values), else Gaussian data (mode W);
    block magnitudes spread over ``2**-spread .. 2**spread``. Then, per block: with
    probability ``raw_p`` a random mode with random codes (mode S: 6-bit codes, each
    reserved, top bits set, with probability ``reserved_p``), ``nan_p`` a NaN scale,
    ``zero_block_p`` all codes zero."""
    k = MXSF.block_size
    bshape = (shape[0], shape[1] // k) if axis == 1 else (shape[0] // k, shape[1])

    def per_elem(x):                    # one value per block -> per element
        return np.repeat(x, k, axis=axis)

    e = per_elem(rng.integers(-spread, spread + 1, bshape))
    gauss = rng.standard_normal(shape)
    tiny = rng.standard_normal(shape) * np.exp2(-8.0)
    outl = rng.choice([-1.75, -1.5, -1.25, -1.0, 1.0, 1.25, 1.5, 1.75], shape)
    s_like = np.where(rng.random(shape) < 0.1, outl, tiny)
    x = np.where(per_elem(rng.random(bshape) < s_p), s_like, gauss) * np.exp2(e)
    mx = quantize(x, MXSF, axis=axis)
    el, sc, mo = mx.elements.copy(), mx.scales.copy(), mx.modes.copy()
    raw = rng.random(bshape) < raw_p
    mo[raw] = rng.integers(0, 2, raw.sum())
    raw_e, mode_e = per_elem(raw), per_elem(mo)
    codes = np.where(mode_e == 1, rng.integers(0, 64, shape), rng.integers(0, 256, shape))
    reserved = (mode_e == 1) & (rng.random(shape) < reserved_p)
    codes = np.where(reserved, codes | (rng.integers(1, 4, shape) << 6), codes)
    el = np.where(raw_e, codes, el)
    sc[raw] = rng.integers(100, 150, raw.sum())
    sc[rng.random(bshape) < nan_p] = MXSF.scale.nan_code
    el[per_elem(rng.random(bshape) < zero_block_p)] = 0      # code 0: zero in both modes
    return MXArray(MXSF, tuple(shape), axis, el, sc, mo)


def with_inf(rng, x, p):
    """Put Inf codes (of formats that have them) into random elements of ``x``."""
    t = x.fmt.element.table
    infs = np.flatnonzero(np.isinf(t))
    if not len(infs) or not p:
        return x
    el = x.elements.copy()
    hit = rng.random(el.shape) < p
    el[hit] = rng.choice(infs, hit.sum())
    return MXArray(x.fmt, x.shape, x.axis, el, x.scales, x.modes)


# ---- strategies: operands drawn code by code ----------------------------------------------

def _rare(p_true=0.2):
    """A boolean that is True about ``p_true`` of the time (and shrinks to False)."""
    n = max(1, round(1 / p_true) - 1)
    return st.sampled_from([False] * n + [True])


def _codes(values):
    return [int(c) for c in np.flatnonzero(np.isfinite(values))]


@st.composite
def mx_operand(draw, fmt, shape, axis, nan=False, zero=False, inf=False, spread=4,
               raw_modes=True, reserved=False):
    """An MX operand of ``fmt`` (a golden name or a block format), ``shape`` with blocks
    along ``axis``:
    every element code drawn from the format's finite codes (``inf``: also its Inf
    codes, rarely), every block's scale code within ``spread`` of the bias (clipped to
    the finite codes); ``nan``: some NaN scale codes; ``zero``: some all-zero blocks.
    MXSF: each block's mode drawn, codes by mode (mode S: 6-bit codes; ``reserved``: a
    few with a top bit set, which golden decodes as NaN)."""
    f = golden.formats.get(fmt) if isinstance(fmt, str) else fmt
    k = f.block_size
    bshape = (shape[0], shape[1] // k) if axis == 1 else (shape[0] // k, shape[1])
    s = f.scale
    top = (1 << s.bits) - 1 - (1 if s.nan_code is not None else 0)
    lo, hi = max(0, s.bias - spread), min(top, s.bias + spread)
    scales = draw(hnp.arrays(np.int64, bshape, elements=st.integers(lo, hi)))
    if nan and s.nan_code is not None:
        hit = draw(hnp.arrays(np.bool_, bshape, elements=_rare()))
        scales[hit] = s.nan_code
    modes = None
    if f.mode_bits:
        w, sm = f.candidates
        modes = draw(hnp.arrays(np.int64, bshape, elements=st.integers(0, 1)))
        cw = draw(hnp.arrays(np.int64, shape, elements=st.sampled_from(_codes(w.table))))
        cs = draw(hnp.arrays(np.int64, shape, elements=st.sampled_from(_codes(sm.table))))
        if reserved:
            top_bits = draw(hnp.arrays(np.int64, shape, elements=st.sampled_from(
                [0] * 19 + [1, 2, 3])))
            cs = cs | (top_bits << 6)
        elements = np.where(np.repeat(modes, k, axis=axis) == 1, cs, cw)
    else:
        t = f.element.table
        el_st = st.sampled_from(_codes(t))
        infs = [int(c) for c in np.flatnonzero(np.isinf(t))]
        if inf and infs:                       # about one element in 50 an Inf code
            el_st = _rare(0.02).flatmap(
                lambda r, fin=el_st: st.sampled_from(infs) if r else fin)
        elements = draw(hnp.arrays(np.int64, shape, elements=el_st))
    if zero:
        zc = 0 if f.mode_bits else int(np.flatnonzero(f.element.table == 0)[0])
        zb = draw(hnp.arrays(np.bool_, bshape, elements=_rare(0.3)))
        elements[np.repeat(zb, k, axis=axis)] = zc
    return MXArray(f, tuple(shape), axis, elements, scales, modes)


def mx_operands(fa, fb, M, N, nblk, **kw):
    """``(a, b)``: an M x K operand of ``fa`` (blocks along K) and a K x N one of ``fb``
    (names or block formats), ``K = k * nblk`` (:func:`mx_operand`; ``b_kw`` overrides
    ``kw`` for B)."""
    b_only = kw.pop("b_kw", {})
    b_kw = {**kw, **b_only}
    K = (golden.formats.get(fa) if isinstance(fa, str) else fa).block_size * nblk
    return st.tuples(mx_operand(fa, (M, K), 1, **kw), mx_operand(fb, (K, N), 0, **b_kw))


class Waits:
    """A drawn stall pattern in the place of an ``rng`` (``mxhw.sim.stream_send`` /
    ``stream_recv`` call ``rng.random() < p``): each call takes the next flag (True:
    wait a cycle); once the flags run out, no more waits."""

    def __init__(self, flags):
        self._flags = list(flags)
        self._n = 0

    def random(self):
        f = self._flags[self._n] if self._n < len(self._flags) else False
        self._n += 1
        return 0.0 if f else 1.0

    def integers(self, low, high=None):
        """A junk value in ``[low, high)`` (``[0, low)`` alone; for inputs the design must
        ignore): varied, but fixed by the pattern's position."""
        low, high = (0, low) if high is None else (low, high)
        self._n += 1
        return low + (self._n * 2654435761) % (high - low)

    def fresh(self):
        """The same pattern from its start."""
        return Waits(self._flags)

    def __repr__(self):
        return f"Waits({''.join('x' if f else '.' for f in self._flags)})"


def waits(max_size=60):
    """A stall pattern (:class:`Waits`): up to ``max_size`` flags, True rarely."""
    return st.lists(_rare(0.3), max_size=max_size).map(Waits)


# ---- drivers --------------------------------------------------------------------------------

def _rngs(seed):
    """``(producer rng, consumer rng)`` from a seed, or two :class:`Waits` as they are."""
    if isinstance(seed, tuple):
        return tuple(w.fresh() for w in seed)
    return seeded_rng(seed), seeded_rng(seed + 1)


def compare(got, a, b, acc):
    """Every result ``got[m, n] = (data, special)`` equals golden (``fixed``: the
    accumulator integer; ``fp32``: the float32 bits, a NaN where golden gives NaN)."""
    if acc.mode == "fp32":
        val = gemm(a, b, acc)
        raw = val.view(np.uint32).astype(np.int64)
        got = {key: (d & 0xFFFF_FFFF, s) for key, (d, s) in got.items()}
    elif a.fmt.codec == "nvfp4":                # block scales in the array, T by the host
        val, raw = nvfp4_gemm.gemm(a, b, acc, return_raw=True)
    else:
        val, raw = gemm(a, b, acc, return_raw=True)
    for (mm, nn), v in np.ndenumerate(val):
        d, s = got[mm, nn]
        if np.isnan(v):
            assert s, (mm, nn)
            if acc.mode == "fp32":
                assert np.isnan(np.uint32(d).view(np.float32)), (mm, nn, hex(d))
        else:
            assert not s and d == raw[mm, nn], (mm, nn, d, raw[mm, nn])


def check_gemm(a, b, rows, cols, acc, seed=0, p_stall=0.0, p_idle=0.0, hold=0, dut=None,
               **kw):
    """``a @ b`` through an output-stationary ``rows`` x ``cols`` array equals golden;
    input gaps (``p_idle``) and output back-pressure (``p_stall``) from ``seed`` (an int,
    or two :class:`Waits`), and with ``hold`` the output's ready held low that many
    cycles before each tile's second row (its first, with one row), while the producer
    goes on. ``dut``: the component to drive (with the array's ``i`` and ``o``, e.g. an
    :class:`~mxhw.systolic.os.OutputStationaryCore`), else a :class:`SystolicArray`."""
    M, N = a.shape[0], b.shape[1]
    if dut is None:
        dut = SystolicArray(rows, cols, a.fmt, b.fmt, acc=acc, **kw)
    tiles = tile_order(M, N, rows, cols)
    rng_i, rng_o = _rngs(seed)
    got = {}

    async def producer(ctx):
        for m0, n0 in tiles:
            await stream_send(ctx, dut.i, array_beats(a, b, rows, cols, m0, n0), rng_i,
                              p_idle)

    async def consumer(ctx):
        for m0, n0 in tiles:
            rows_out = []
            for i in range(rows):
                if hold and i == min(1, rows - 1):
                    for _ in range(hold):
                        await ctx.tick()
                rows_out += await stream_recv(ctx, dut.o, 1, rng_o, p_stall)
            for i, r in enumerate(rows_out):
                for j in range(cols):
                    got[m0 + i, n0 + j] = (r.data[j], r.special[j])

    run(dut, producer, consumer)
    compare(got, a, b, acc)


def check_fp32(a, b, rows, cols, pipeline, seed=0, p_stall=0.0, p_idle=0.0):
    """:func:`check_gemm` with ``fp32`` accumulation."""
    check_gemm(a, b, rows, cols, golden.arith.FP32, seed, p_stall, p_idle, pipeline=pipeline)


def check_ws(a, b, rows, cols, acc, seed=0, p_stall=0.0, p_idle=0.0, dut=None, **kw):
    """``a @ b`` through a weight-stationary array (schedule
    :func:`~mxhw.systolic.driver.ws_beats`) equals golden bit for bit. ``dut``: the
    component to drive (e.g. a :class:`~mxhw.systolic.ws.WeightStationaryCore`, with a
    ``depth``), else a :class:`SystolicArray`."""
    M, N = a.shape[0], b.shape[1]
    if dut is None:
        dut = SystolicArray(rows, cols, a.fmt, b.fmt, acc=acc,
                            dataflow="weight_stationary", **kw)
    D = dut.depth
    rng_i, rng_o = _rngs(seed)
    got = {}

    async def producer(ctx):
        await stream_send(ctx, dut.i, ws_beats(a, b, rows, cols, D), rng_i, p_idle)

    async def consumer(ctx):
        for m0, n0 in tile_order(M, N, D, cols):
            for i, r in enumerate(await stream_recv(ctx, dut.o, D, rng_o, p_stall)):
                for j in range(cols):
                    got[m0 + i, n0 + j] = (r.data[j], r.special[j])

    run(dut, producer, consumer)
    compare(got, a, b, acc)


def check_array(dataflow, a, b, rows, cols, acc, seed=0, p_stall=0.0, p_idle=0.0, **kw):
    """:func:`check_gemm` (output-stationary) or :func:`check_ws` by ``dataflow``."""
    check = check_ws if dataflow == "weight_stationary" else check_gemm
    check(a, b, rows, cols, acc, seed, p_stall, p_idle, **kw)


# ---- one PE ----------------------------------------------------------------------------------

def check_pe_tiles(a, b, nblks, acc, got):
    """One PE's results ``got`` ((result, special) per tile) equal golden GEMMs of the 1x1
    tiles of ``nblks`` blocks each that ``a`` (1 x K) and ``b`` (K x 1) are cut into."""
    b0 = 0
    for t, nb in enumerate(nblks):
        bs, ks = slice(b0, b0 + nb), slice(32 * b0, 32 * (b0 + nb))
        b0 += nb
        at = MXArray(a.fmt, (1, 32 * nb), 1, a.elements[:, ks], a.scales[:, bs],
                     None if a.modes is None else a.modes[:, bs])
        bt = MXArray(b.fmt, (32 * nb, 1), 0, b.elements[ks], b.scales[bs],
                     None if b.modes is None else b.modes[bs])
        val, raw = gemm(at, bt, acc, return_raw=True)
        r, s = got[t]
        if np.isnan(val[0, 0]):
            assert s, t
        else:
            assert not s and r == raw[0, 0], (t, r, raw[0, 0])


def pe_results(dut, seq, drive):
    """Run one PE ``dut`` over ``seq`` (per cycle: None for idle, or an item);
    ``drive(ctx, n, item)`` sets its inputs for cycle ``n`` and returns whether the item
    completes a tile. Returns [(result, special)] per tile, read ``dut.latency`` cycles
    after the tile's completing item."""
    got = []

    async def tb(ctx):
        lasts, res = [], []
        for n, x in enumerate(seq + [None] * dut.latency):
            if drive(ctx, n, x):
                lasts.append(n)
            await ctx.tick()
            res.append((ctx.get(dut.result), ctx.get(dut.special)))
        got.extend(res[n + dut.latency - 1] for n in lasts)

    run(dut, tb)
    return got


def gap_source(gaps):
    """An ``rng`` for idle cycles: a :class:`Waits` as it is, or a seed's generator."""
    return gaps.fresh() if isinstance(gaps, Waits) else np.random.default_rng(gaps)


def run_pe(a, b, nblks, acc, pipeline, gaps):
    """Feed tiles (``nblks[t]`` blocks each; ``a``: (1, K) and ``b``: (K, 1) MX operands
    over all tiles) through one MXMacPE, back to back with idle cycles (``gaps``: a seed,
    or a :class:`Waits`); returns [(result, special)] per tile (:func:`pe_results`)."""
    fa, fb = array_block_format(a.fmt), array_block_format(b.fmt)
    k = fa.block_size
    dut = MXMacPE(fa, fb, acc, pipeline=pipeline)
    assert dut.latency == 1 + pipeline
    rng = gap_source(gaps)
    seq, kk = [], 0           # per cycle: None (idle) or (kk, block_end, last)
    for nb in nblks:
        for i in range(nb * k):
            while rng.random() < 0.2:
                seq.append(None)
            seq.append((kk, i % k == k - 1, i == nb * k - 1))
            kk += 1

    def drive(ctx, n, x):
        if x is None:
            ctx.set(dut.valid, 0)
            ctx.set(dut.a, n % (1 << fa.element.bits))             # ignored
            return False
        kk, end, last = x
        ctx.set(dut.a, int(a.elements[0, kk]))
        ctx.set(dut.b, int(b.elements[kk, 0]))
        ctx.set(dut.a_scale, int(a.scales[0, kk // k]))
        ctx.set(dut.b_scale, int(b.scales[kk // k, 0]))
        if a.modes is not None:                      # MXSF: the block's mode
            ctx.set(dut.a_mode, int(a.modes[0, kk // k]))
        if b.modes is not None:
            ctx.set(dut.b_mode, int(b.modes[kk // k, 0]))
        ctx.set(dut.valid, 1)
        ctx.set(dut.block_end, int(end))
        ctx.set(dut.last, int(last))
        return last

    return pe_results(dut, seq, drive)


def assert_raises(factory, args, kw, exc, msg, prefix=False):
    """``factory(**{**args, **kw})`` raises ``exc`` with the message ``msg`` (or one that
    starts with it, ``prefix``)."""
    with pytest.raises(exc) as e:
        factory(**{**args, **kw})
    assert str(e.value).startswith(msg) if prefix else str(e.value) == msg, str(e.value)


class Harness(wiring.Component):
    """A component around a helper under test: ``ports`` (a signature's members) and
    ``build(m, self)``, which adds the helper's logic to the module ``m`` on the ports."""

    def __init__(self, ports, build):
        self._build = build
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        self._build(m, self)
        return m
