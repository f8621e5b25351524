"""The row-shared block-to-accumulator datapath of the output-stationary array
(``SystolicArray(shared_acc=...)``, :class:`MXBlockSumPE`, :class:`RowAccumulator`) against
golden.arith.gemm bit for bit: the shared and the per-PE designs on random formats (MXSF
and mixed pairs included), shapes, accumulations, pipelines, gaps and back-pressure;
``cols == k`` on small-block formats (block ends of a row in back-to-back cycles); the row
unit alone; exact latency and throughput; errors."""

import dataclasses
import functools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, strategies as st
from hypothesis.extra import numpy as hnp

from support.hyp import budget
from mxhw import golden
from mxhw.golden.arith import FP32, block_dots, element_ints, fixed, gemm
from mxhw.formats import operand_element
from mxhw.golden.quantize import MXArray, quantize
from mxhw.pe.multiplier import ElementMultiplier
from mxhw.sim import run
from mxhw.systolic import MXMacPE, SystolicArray
from mxhw.systolic.driver import array_beats, tile_order
from mxhw.systolic import MXBlockSumPE, array_block_format
from mxhw.systolic.grid import PE_PIPELINE_MAX
from mxhw.systolic.rowacc import RowAccumulator, row_extra_stages

from support.systolic import (FORMATS, assert_raises, acc_strategy, check_gemm, gap_source, mx_operands,
                              random_operand, waits)

ACC = fixed(32, 16)


# ---- the array: shared and per-PE, against golden ---------------------------------------

@budget(10, suppress_health_check=list(HealthCheck))
@given(data=st.data(), fa=st.sampled_from(FORMATS + ["mxsf"]),
       fb=st.sampled_from(FORMATS + ["mxsf"]), rows=st.integers(1, 4), cols=st.integers(1, 4),
       M=st.integers(1, 6), N=st.integers(1, 6), nblk=st.integers(1, 3),
       acc=acc_strategy(), nan=st.booleans(), zero=st.booleans(),
       gaps=st.tuples(waits(), waits()), pipeline=st.integers(0, PE_PIPELINE_MAX))
def test_shared_and_per_pe_match_golden(data, fa, fb, rows, cols, M, N, nblk, acc, nan, zero,
                                        gaps, pipeline):
    """Both designs (``shared_acc=True`` and ``False``) equal golden bit for bit (drawn
    codes, MXSF modes and reserved codes, NaN scales, zero blocks, gaps and stalls)."""
    a, b = data.draw(mx_operands(fa, fb, M, N, nblk, nan=nan, zero=zero, reserved=True))
    for shared in (True, False):
        check_gemm(a, b, rows, cols, acc, gaps, 0.5, 0.5, pipeline=pipeline,
                   shared_acc=shared)


def small_block(name, k):
    """``name``'s block format with blocks of ``k`` elements (a test format)."""
    return dataclasses.replace(golden.formats.get(name), name=f"{name}_k{k}", block=k)


@budget(20, suppress_health_check=list(HealthCheck))
@given(fa=st.sampled_from(["mxfp4", "mxint8", "mxfp8_e4m3", "mxfp6_e3m2"]),
       fb=st.sampled_from(["mxfp4", "mxint8", "mxfp8_e5m2", "mxfp6_e2m3"]),
       k=st.sampled_from([1, 2, 3, 4]), rows=st.integers(1, 3), data=st.data(),
       acc=acc_strategy(), nan=st.booleans(), gaps=st.tuples(waits(), waits()),
       pipeline=st.integers(0, PE_PIPELINE_MAX))
def test_small_blocks_cols_up_to_k(fa, fb, k, rows, data, acc, nan, gaps, pipeline):
    """The collision-free argument at a small scale: blocks of ``k = 1..4`` elements and
    ``cols`` up to ``k`` (mostly ``cols == k``), so a row's block ends follow each other
    in consecutive cycles and the next block's begin right after. The shared design (the
    default there) equals golden bit for bit."""
    cols = data.draw(st.sampled_from([k, k, data.draw(st.integers(1, k))]))
    M, N = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 5))
    a, b = data.draw(mx_operands(small_block(fa, k), small_block(fb, k), M, N,
                                 data.draw(st.integers(1, 6)), nan=nan))
    assert SystolicArray(rows, cols, a.fmt, b.fmt, acc=acc).shared_acc
    check_gemm(a, b, rows, cols, acc, gaps, 0.5, 0.5, pipeline=pipeline)


def test_cols_above_k_per_pe():
    """``cols > k``: a row's block ends could collide, so the array falls back to the
    per-PE design (still exact); ``shared_acc=True`` is refused."""
    rng = np.random.default_rng(7)
    f = small_block("mxint8", 2)
    a = random_operand(rng, f, (3, 8), 1)
    b = random_operand(rng, f, (8, 4), 0)
    assert not SystolicArray(2, 3, f, f, acc=ACC).shared_acc
    assert SystolicArray(2, 2, f, f, acc=ACC).shared_acc
    check_gemm(a, b, 2, 3, ACC, seed=7, p_stall=0.3)
    with pytest.raises(ValueError) as e:
        SystolicArray(2, 3, f, f, acc=ACC, shared_acc=True)
    assert str(e.value) == ("shared_acc=True needs cols <= k (at most one block end per "
                            "row and cycle), not cols=3 with k=2")


# ---- timing: the throughput of the per-PE design; latency 1 longer, 3 from pipeline 2 --

def run_full_rate(dut, beats, n_rows):
    """Offer ``beats`` to an array back to back (valid whenever one is left), ``o`` always
    ready, until ``n_rows`` result rows came; returns the cycles each beat was taken in,
    the cycles of each tile's first row (every ``rows``-th) and the rows' data."""
    takes, firsts, got = [], [], []

    async def tb(ctx):
        taken, cycle = 0, 0
        ctx.set(dut.o.ready, 1)
        while len(got) < n_rows:
            assert cycle < 4 * len(beats) + 200, "timeout"
            if taken < len(beats):
                ctx.set(dut.i.payload, beats[taken])
            ctx.set(dut.i.valid, taken < len(beats))
            _, _, i_ready, o_valid, o_data = await ctx.tick().sample(
                dut.i.ready, dut.o.valid, dut.o.payload.data)
            if taken < len(beats) and i_ready:
                takes.append(cycle)
                taken += 1
            if o_valid:
                if len(got) % dut.rows == 0:
                    firsts.append(cycle)
                got.append(list(o_data))
            cycle += 1

    run(dut, tb)
    return takes, firsts, got


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("pipeline", [0, 2, PE_PIPELINE_MAX])
def test_throughput_and_latency(shared, pipeline):
    """Operands always valid, results always taken: one transfer per cycle, tiles back to
    back (ready never low), each tile's first result row valid exactly ``latency`` cycles
    after its last transfer, and the rows correct."""
    rng = np.random.default_rng(8)
    R, C, M, N, K = 2, 3, 4, 6, 64
    a = random_operand(rng, "mxfp4", (M, K), 1)
    b = random_operand(rng, "mxint8", (K, N), 0)
    dut = SystolicArray(R, C, a.fmt, b.fmt, acc=ACC, pipeline=pipeline, shared_acc=shared)
    assert dut.shared_acc == shared
    extra = row_extra_stages(pipeline) if shared else 0
    assert extra == ((3 if pipeline >= 2 else 1) if shared else 0)
    # FP4 x INT8 is a LUT product: at pipeline 4 the shared PE has 2 registers in it
    extra += 2 * (shared and pipeline >= 4)
    assert dut.pe_latency == 1 + pipeline + extra
    assert dut.latency == R + C + 1 + pipeline + extra + 1     # + 1: the output stage
    tiles = tile_order(M, N, R, C)
    beats = [x for m0, n0 in tiles for x in array_beats(a, b, R, C, m0, n0)]
    takes, firsts, got = run_full_rate(dut, beats, len(tiles) * R)
    assert takes == list(range(len(beats)))
    lasts = takes[K - 1::K]
    assert [f - t for f, t in zip(firsts, lasts)] == [dut.latency] * len(tiles)
    _, raw = gemm(a, b, ACC, return_raw=True)
    want = [[int(raw[m0 + i, n0 + j]) for j in range(C)] for m0, n0 in tiles
            for i in range(R)]
    assert got == want


@pytest.mark.slow
@pytest.mark.parametrize("K", [32, 64])
def test_short_tiles_wait_for_the_buffer(K):
    """Row-shared: one tile store, so a tile's last transfer is taken no earlier than
    ``latency + rows - 1`` cycles after the previous tile's (its rows have left the
    buffer by then), and no later: a 12x12 array (latency 33 with the default pipeline)
    waits 12 cycles per one-block tile and none with K = 64; the rows stay correct."""
    rng = np.random.default_rng(12)
    R = C = 12
    a = random_operand(rng, "mxfp4", (R, K), 1)
    b = random_operand(rng, "mxfp4", (K, 3 * C), 0)
    dut = SystolicArray(R, C, a.fmt, b.fmt, acc=ACC)
    assert dut.shared_acc and dut.latency == 33
    tiles = tile_order(R, 3 * C, R, C)
    beats = [x for m0, n0 in tiles for x in array_beats(a, b, R, C, m0, n0)]
    takes, _, got = run_full_rate(dut, beats, len(tiles) * R)
    lasts = takes[K - 1::K]
    gap = dut.latency + R - 1
    assert np.diff(lasts).tolist() == [max(K, gap)] * (len(tiles) - 1)
    _, raw = gemm(a, b, ACC, return_raw=True)
    assert got == [[int(raw[m0 + i, n0 + j]) for j in range(C)] for m0, n0 in tiles
                   for i in range(R)]


def test_partial_pe_pipeline():
    """``pe=functools.partial(MXMacPE, pipeline=p)``: the shared design takes the PE's
    ``pipeline``, not the array's, and says so in its latency."""
    rng = np.random.default_rng(9)
    a = random_operand(rng, "mxfp8_e4m3", (3, 64), 1)
    b = random_operand(rng, "mxfp4", (64, 2), 0)
    pe = functools.partial(MXMacPE, pipeline=1)
    for shared in (True, False):
        dut = SystolicArray(3, 2, a.fmt, b.fmt, acc=ACC, pe=pe, pipeline=4, shared_acc=shared)
        assert dut.pe_latency == 2 + shared and dut.latency == 3 + 2 + 2 + shared + 1
        check_gemm(a, b, 3, 2, ACC, seed=9, p_stall=0.3, pe=pe, pipeline=4,
                   shared_acc=shared)


# ---- the block-sum PE alone ------------------------------------------------------------

@budget(15, suppress_health_check=list(HealthCheck))
@given(fa=st.sampled_from(FORMATS + ["mxsf"]), fb=st.sampled_from(FORMATS + ["mxsf"]),
       nblk=st.integers(1, 4), per_tile=st.integers(1, 2),
       pipeline=st.integers(0, PE_PIPELINE_MAX), data=st.data(), nan=st.booleans(),
       gaps=waits(400))
def test_block_sum_pe_matches_golden(fa, fb, nblk, per_tile, pipeline, data, nan, gaps):
    """One :class:`MXBlockSumPE` fed a (1 x K) by (K x 1) pair element by element (random
    idle cycles with junk codes): ``block_valid`` exactly ``latency`` cycles after each
    block's last element and at no other time; then ``block_sum`` is golden's exact
    block sum (NaN/Inf element codes counting 0), ``block_nonfinite`` golden's NaN/Inf
    element flag, ``block_last`` the tile's last block, the scale ports the block's
    codes; in every other cycle ``block_sum``, ``block_nonfinite`` and ``block_last``
    are 0 (the row unit's ``idle_zero`` contract)."""
    rng = gap_source(gaps)
    nblk *= per_tile
    k = array_block_format(fa).block_size
    K = k * nblk
    a, b = data.draw(mx_operands(fa, fb, 1, 1, nblk, nan=nan, inf=True, reserved=True))
    ia, la, bad_a = element_ints(a)
    ib, lb, bad_b = element_ints(b)
    dut = MXBlockSumPE(array_block_format(a.fmt), array_block_format(b.fmt), pipeline=pipeline)
    assert la + lb == dut.lsb_exp
    bad = bad_a[0] | bad_b[:, 0]
    prod = np.where(bad, 0, ia[0].astype(object) * ib[:, 0].astype(object))
    want_sum = [int(prod[k * j:k * (j + 1)].sum()) for j in range(nblk)]
    want_nf = [bool(bad[k * j:k * (j + 1)].any()) for j in range(nblk)]
    # the golden twin's sums where it has them (blocks without NaN/Inf)
    d = block_dots(a, b)
    assert all(int(d.S[0, 0, j]) == want_sum[j] for j in range(nblk) if not d.is_special[0, 0, j])
    seq = []                      # per cycle: None or the element index
    for kk in range(K):
        while rng.random() < 0.5:
            seq.append(None)
        seq.append(kk)
    ends = {}                     # cycle of block_valid -> block
    outs = []

    async def tb(ctx):
        for n, kk in enumerate(seq + [None] * (dut.latency + 1)):
            if kk is None:
                ctx.set(dut.valid, 0)
                for port in (dut.a, dut.b):
                    ctx.set(port, int(rng.integers(1 << len(port))))      # ignored
                ctx.set(dut.block_end, int(rng.integers(2)))
                ctx.set(dut.last, int(rng.integers(2)))
            else:
                j = kk // k
                ctx.set(dut.a, int(a.elements[0, kk]))
                ctx.set(dut.b, int(b.elements[kk, 0]))
                ctx.set(dut.a_scale, int(a.scales[0, j]))
                ctx.set(dut.b_scale, int(b.scales[j, 0]))
                if a.modes is not None:
                    ctx.set(dut.a_mode, int(a.modes[0, j]))
                if b.modes is not None:
                    ctx.set(dut.b_mode, int(b.modes[j, 0]))
                ctx.set(dut.valid, 1)
                end = kk % k == k - 1
                ctx.set(dut.block_end, int(end))
                ctx.set(dut.last, int(end and j % per_tile == per_tile - 1))
                if end:
                    ends[n + dut.latency] = j
            outs.append([ctx.get(x) for x in (
                dut.block_valid, dut.block_sum, dut.block_nonfinite, dut.block_last,
                dut.block_a_scale, dut.block_b_scale)])
            await ctx.tick()

    run(dut, tb)
    assert [n for n, o in enumerate(outs) if o[0]] == sorted(ends)
    for n, o in enumerate(outs):
        if n in ends:
            j = ends[n]
            assert o[1:] == [want_sum[j], want_nf[j], j % per_tile == per_tile - 1,
                             int(a.scales[0, j]), int(b.scales[j, 0])], (n, j)
        else:
            assert o[1:4] == [0, 0, 0], n


# ---- the row unit alone -----------------------------------------------------------------

def run_row(a, b, ntiles, acc, pipeline, gaps, p_gap, ring=True, idle_zero=False,
            presum=False):
    """Drive a RowAccumulator with the exact block sums of ``a`` (1 x K) times ``b``
    (K x cols) from golden's :func:`block_dots`, ``ntiles`` tiles of equal length, block
    ends in column order with random idle cycles (probability ``p_gap`` before each, so
    some come back to back); returns ``[(result[j], special[j]) for j]`` per tile, read
    ``latency`` cycles after the tile's last block end. Without the result ring
    (``ring=False``): ``(fin, fin_special)`` of column ``j``, which must be valid
    (``fin_valid``) exactly ``latency - 1`` cycles after column ``j``'s last block end of
    the tile and at no other time, ``fin_valid_next`` a cycle ahead of ``fin_valid``.
    The idle columns' fields hold random junk, or 0 with ``idle_zero`` (the unit's
    parameter: what :class:`MXBlockSumPE` drives). With ``presum`` the unit takes the
    two scale codes' integer sum and whether either is its format's NaN code (made here
    from the codes) instead of the codes."""
    fa, fb = array_block_format(a.fmt), array_block_format(b.fmt)
    C = b.shape[1]
    dut = RowAccumulator(fa, fb, acc, C, pipeline=pipeline, result_ring=ring,
                         idle_zero=idle_zero, presum=presum)

    def set_scales(ctx, ca, cb):
        if presum:
            ctx.set(dut.scale_sum, ca + cb)
            ctx.set(dut.scale_nan, int(ca == fa.scale.nan_code or cb == fb.scale.nan_code))
        else:
            ctx.set(dut.a_scale, ca)
            ctx.set(dut.b_scale, cb)
    assert dut.latency == 1 + max(pipeline, 1) + (pipeline >= 2)
    d = block_dots(a, b)
    _, la, bad_a = element_ints(a)
    _, lb, bad_b = element_ints(b)
    k = fa.block_size
    nb = a.shape[1] // k
    nf = bad_a.reshape(1, nb, k).any(-1)[0][:, None] | bad_b.reshape(nb, k, C).any(1)
    per_tile = nb // ntiles
    rng = gap_source(gaps)
    seq = []                      # per cycle: None or (block, column)
    for blk in range(nb):
        for j in range(C):
            while rng.random() < p_gap:
                seq.append(None)
            seq.append((blk, j))
    got = []

    async def tb(ctx):
        res, ends, fins = [], [], {}
        for n, x in enumerate(seq + [None] * dut.latency):
            for j in range(C):
                ctx.set(dut.block_valid[j], 0)
                # junk on the columns not selected: the multiplexer must ignore it
                # (with idle_zero the contract is 0 there)
                ctx.set(dut.block_sum[j], 0 if idle_zero else int(rng.integers(-99, 99)))
                ctx.set(dut.block_nonfinite[j], 0 if idle_zero else int(rng.integers(0, 2)))
                ctx.set(dut.block_last[j], 0 if idle_zero else int(rng.integers(0, 2)))
            # junk scale codes outside block ends (the unit must not read them)
            set_scales(ctx, int(rng.integers(0, 1 << fa.scale.bits)),
                       int(rng.integers(0, 1 << fb.scale.bits)))
            if x is not None:
                blk, j = x
                last = blk % per_tile == per_tile - 1
                ctx.set(dut.block_valid[j], 1)
                ctx.set(dut.block_sum[j], int(d.S[0, j, blk]))
                # the PE's fields (NaN/Inf element codes), the scale codes beside them
                ctx.set(dut.block_nonfinite[j], int(nf[blk, j]))
                set_scales(ctx, int(a.scales[0, blk]), int(b.scales[blk, j]))
                ctx.set(dut.block_last[j], int(last))
                if last and j == C - 1:
                    ends.append(n)
                if last:
                    fins[n + dut.latency - 1] = (blk // per_tile, j)
            if not ring:
                # in cycle n: fin_valid_next, fin_valid, fin, fin_special
                res.append([ctx.get(dut.fin_valid_next), ctx.get(dut.fin_valid),
                            ctx.get(dut.fin), ctx.get(dut.fin_special)])
            await ctx.tick()
            if ring:
                res.append([(ctx.get(dut.result[j]), ctx.get(dut.special[j]))
                            for j in range(C)])
        if ring:
            got.extend(res[n + dut.latency - 1] for n in ends)
            return
        assert [n for n, r in enumerate(res) if r[1]] == sorted(fins)
        assert all(res[n][0] == res[n + 1][1] for n in range(len(res) - 1))
        tiles = [[None] * C for _ in ends]
        lo, hi = -(1 << (acc.width - 1)), (1 << (acc.width - 1)) - 1
        for n, (t, j) in fins.items():
            # the sum before the clamp, when the unit leaves that to the user
            r = min(max(res[n][2], lo), hi) if dut.fin_unclamped else res[n][2]
            tiles[t][j] = (r, res[n][3])
        got.extend(tiles)

    run(dut, tb)
    return got


@budget(15, suppress_health_check=list(HealthCheck))
@given(fa=st.sampled_from(FORMATS), fb=st.sampled_from(FORMATS), cols=st.integers(1, 5),
       ntiles=st.integers(1, 3), per_tile=st.integers(1, 3), acc=acc_strategy(),
       pipeline=st.integers(0, PE_PIPELINE_MAX), data=st.data(), nan=st.booleans(),
       gaps=waits(200), ring=st.booleans(), idle_zero=st.booleans(),
       presum=st.booleans())
def test_row_unit_matches_golden(fa, fb, cols, ntiles, per_tile, acc, pipeline, data, nan,
                                 gaps, ring, idle_zero, presum):
    """The row unit alone, fed golden's exact block sums in column order (back to back or
    with gaps, tiles back to back, junk on the unselected columns, or zeros with
    ``idle_zero``), gives golden's results for every column and tile, in its result
    ring or handed on one by one (``result_ring=False``, as the array uses it), given
    the scale codes or their sum (``presum``, as the array gives it from d = 2 up)."""
    a, b = data.draw(mx_operands(fa, fb, 1, cols, ntiles * per_tile, nan=nan))
    # golden's block sums sit on the hardware's grid (the multiplier's LSB)
    assert (element_ints(a)[1] + element_ints(b)[1]
            == MXBlockSumPE(a.fmt, b.fmt).lsb_exp)
    got = run_row(a, b, ntiles, acc, pipeline, gaps, 0.5, ring, idle_zero, presum)
    assert len(got) == ntiles
    for t in range(ntiles):
        ks = slice(t * per_tile * 32, (t + 1) * per_tile * 32)
        bs = slice(t * per_tile, (t + 1) * per_tile)
        at = MXArray(a.fmt, (1, per_tile * 32), 1, a.elements[:, ks], a.scales[:, bs], None)
        bt = MXArray(b.fmt, (per_tile * 32, cols), 0, b.elements[ks], b.scales[bs], None)
        val, raw = gemm(at, bt, acc, return_raw=True)
        for j in range(cols):
            r, s = got[t][j]
            if np.isnan(val[0, j]):
                assert s, (t, j)
            else:
                assert not s and r == raw[0, j], (t, j, r, raw[0, j])


@budget(12, suppress_health_check=list(HealthCheck))
@given(cols=st.integers(2, 5), per_tile=st.integers(2, 4), width=st.integers(8, 14),
       pipeline=st.integers(0, PE_PIPELINE_MAX), data=st.data(), gaps=waits(200),
       presum=st.booleans())
def test_row_unit_saturates_mid_tile(cols, per_tile, width, pipeline, data, gaps, presum):
    """A narrow saturating accumulator that saturates inside a tile and comes back: the
    first block's sums lie far beyond its range, the later blocks' pull the other way.
    The ring clamps a sum only when it moves on (not in the adder's loop), so a running
    sum out of range must still be clamped before it is added to again; golden's
    results, and some of them strictly inside the range (the case did happen)."""
    K = 32 * per_tile
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    sign = np.array(data.draw(st.lists(st.sampled_from([1, -1]), min_size=cols,
                                       max_size=cols)))
    x = data.draw(hnp.arrays(np.float64, (1, K), elements=st.floats(0.5, 1.0)))
    x[0, :32] *= 2.0 ** (width + 4)                    # block 0: far out of range
    x[0, 32:] *= -(2.0 ** (width - 5)) / (per_tile - 1)  # the rest: back by under a range
    a = quantize(x, "mxint8", axis=1)
    b = quantize(data.draw(hnp.arrays(np.float64, (K, cols), elements=st.floats(0.5, 1.0)))
                 * sign, "mxint8", axis=0)
    acc = fixed(width, 0, "saturate", "floor")
    _, raw = gemm(a, b, acc, return_raw=True)
    assert any(lo < int(r) < hi for r in raw[0])        # came back inside the range
    got = run_row(a, b, 1, acc, pipeline, gaps, 0.5, presum=presum)
    assert [(int(r), bool(s)) for r, s in got[0]] == [(int(v), False) for v in raw[0]]


# ---- parameters and errors --------------------------------------------------------------

def test_init_shared_acc():
    """Automatic choice: shared where it applies, per-PE elsewhere; False forces per-PE."""
    def arr(**kw):
        args = dict(rows=2, cols=2, fmt_a="mxfp4", fmt_b="mxfp4", acc=ACC)
        args.update(kw)
        return SystolicArray(**args)

    assert arr().shared_acc and arr(shared_acc=True).shared_acc
    assert arr(cols=32).shared_acc
    assert not arr(shared_acc=False).shared_acc
    assert not arr(cols=33).shared_acc
    assert not arr(acc=FP32).shared_acc
    assert not arr(pe="bitserial").shared_acc
    assert not arr(pe=MXMacPE).shared_acc
    assert not arr(dataflow="weight_stationary").shared_acc
    assert arr().pe_type == arr(shared_acc=False).pe_type == "bitparallel"
    assert arr().latency == arr(shared_acc=False).latency + 3     # pipeline 4


@pytest.mark.parametrize("kw, exc, msg", [
    ({"shared_acc": "yes"}, TypeError, "shared_acc must be None, True or False, not 'yes'"),
    ({"shared_acc": 1}, TypeError, "shared_acc must be None, True or False, not 1"),
    ({"shared_acc": True, "acc": FP32}, ValueError,
     "shared_acc=True needs fixed-point accumulation, not 'fp32'"),
    ({"shared_acc": True, "pe": "bitserial"}, ValueError,
     "shared_acc=True needs the bit-parallel PE (pe=None or 'bitparallel'), not a "
     "bit-serial PE or a PE factory"),
    ({"shared_acc": True, "pe": MXMacPE}, ValueError,
     "shared_acc=True needs the bit-parallel PE (pe=None or 'bitparallel'), not a "
     "bit-serial PE or a PE factory"),
    ({"shared_acc": True, "dataflow": "weight_stationary"}, ValueError,
     "shared_acc=True needs the output-stationary dataflow, not 'weight_stationary'"),
    ({"shared_acc": True, "cols": 33}, ValueError,
     "shared_acc=True needs cols <= k (at most one block end per row and cycle), not "
     "cols=33 with k=32"),
])
def test_init_wrong_shared_acc(kw, exc, msg):
    assert_raises(SystolicArray, dict(rows=2, cols=2, fmt_a="mxfp4", fmt_b="mxfp4", acc=ACC),
                  kw, exc, msg)


def test_row_unit_init():
    f = array_block_format("mxfp4")
    ra = RowAccumulator(f, array_block_format("mxint8"), ACC, 3, pipeline=4)
    assert (ra.cols, ra.pipeline, ra.latency) == (3, 4, 6)
    assert len(ra.result) == 3 and len(ra.block_sum) == 3
    assert RowAccumulator(f, f, ACC, 1).latency == 2
    assert ra.result_ring and not hasattr(ra, "fin") and not ra.idle_zero
    assert RowAccumulator(f, f, ACC, 2, idle_zero=True).idle_zero
    rp = RowAccumulator(f, f, ACC, 2, presum=True)
    assert rp.presum and not ra.presum and not hasattr(rp, "a_scale")
    assert len(rp.scale_sum) == 9 and len(rp.scale_nan) == 1     # E8M0 + E8M0: 0..510
    rf = RowAccumulator(f, f, ACC, 3, result_ring=False)
    assert not rf.result_ring and not hasattr(rf, "result")
    # fixed(32, 16) saturates: with 2+ columns the unit hands on the unclamped sum
    assert rf.fin_unclamped and len(rf.fin) == ACC.width + 2
    r1 = RowAccumulator(f, f, ACC, 1, result_ring=False)
    assert not r1.fin_unclamped and len(r1.fin) == ACC.width
    pe = MXBlockSumPE(f, array_block_format("mxint8"), pipeline=2)
    assert pe.pipeline == 2 and len(pe.block_sum) == len(ra.block_sum[0])
    assert [MXBlockSumPE(f, f, pipeline=p).latency for p in range(5)] == [0, 1, 2, 2, 2]
    assert pe.lsb_exp == ElementMultiplier(operand_element(f),
                                           operand_element(array_block_format("mxint8"))).lsb_exp


@pytest.mark.parametrize("kw, exc, msg", [
    ({"acc": FP32}, ValueError,
     "acc: the row accumulator implements fixed-point accumulation only, not 'fp32'"),
    ({"acc": "fixed"}, TypeError, "acc must be a golden.arith.Accumulation, not 'fixed'"),
    ({"cols": 0}, ValueError, "cols must be >= 1, not 0"),
    ({"cols": 1.5}, TypeError, "cols must be an integer, not 1.5"),
    ({"cols": True}, TypeError, "cols must be an integer, not True"),
    ({"pipeline": 5}, ValueError, "pipeline must be in [0, 4], not 5"),
    ({"pipeline": "1"}, TypeError, "pipeline must be an integer, not '1'"),
    ({"result_ring": 1}, TypeError, "result_ring must be True or False, not 1"),
    ({"idle_zero": None}, TypeError, "idle_zero must be True or False, not None"),
    ({"presum": 0}, TypeError, "presum must be True or False, not 0"),
])
def test_row_unit_init_wrong(kw, exc, msg):
    f = array_block_format("mxfp4")
    assert_raises(RowAccumulator, dict(fmt_a=f, fmt_b=f, acc=ACC, cols=2, pipeline=0), kw,
                  exc, msg)


@pytest.mark.parametrize("pipeline, exc, msg", [
    (-1, ValueError, "pipeline must be in [0, 4], not -1"),
    (None, TypeError, "pipeline must be an integer, not None"),
])
def test_block_sum_pe_init_wrong(pipeline, exc, msg):
    f = array_block_format("mxfp4")
    with pytest.raises(exc) as e:
        MXBlockSumPE(f, f, pipeline=pipeline)
    assert str(e.value) == msg
