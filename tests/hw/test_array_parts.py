"""The systolic array's parts, each on its own (issue #28): the accumulating PEs'
shared base (:class:`~mxhw.systolic.grid.AccumulatingPE`), the two dataflow cores
(:class:`~mxhw.systolic.os.OutputStationaryCore`,
:class:`~mxhw.systolic.ws.WeightStationaryCore`) driven without the
:class:`~mxhw.systolic.SystolicArray` front, and the
:class:`~mxhw.systolic.outbuf.OutputBuffer`. Operands, shapes, pipelines and stall
patterns are drawn by Hypothesis; expectations come from golden (the cores, the PEs) or
from the values the test wrote (the buffer: every row out, in order, unchanged)."""

import dataclasses
import functools

import pytest
from hypothesis import HealthCheck, given, strategies as st

from mxhw import golden
from mxhw.golden.arith import FP32, fixed
from mxhw.sim import run, stream_recv
from mxhw.systolic import BitSerialMXMacPE, MXMacPE
from mxhw.systolic.grid import PE_PIPELINE_MAX, AccumulatingPE, acc_width
from mxhw.systolic.os import OutputStationaryCore
from mxhw.systolic.outbuf import OutputBuffer
from mxhw.systolic.ws import WeightStationaryCore, ws_latency
from support.hyp import budget
from support.systolic import (ACC, FORMATS, acc_strategy, assert_raises,
                              check_gemm, check_pe_tiles, check_ws, mx_operands, run_pe,
                              waits)

SUPPRESS = {"suppress_health_check": list(HealthCheck)}


# ---- AccumulatingPE: the base of MXMacPE and BitSerialMXMacPE ------------------------------

@budget(10, **SUPPRESS)
@given(data=st.data(), fa=st.sampled_from(FORMATS), fb=st.sampled_from(FORMATS),
       nblks=st.lists(st.integers(1, 2), min_size=1, max_size=3), acc=acc_strategy(),
       pipeline=st.integers(0, PE_PIPELINE_MAX), gaps=waits(200), nan=st.booleans())
def test_accumulating_pe_contract(data, fa, fb, nblks, acc, pipeline, gaps, nan):
    """An AccumulatingPE (MXMacPE) built from format names: the base's members
    (``fmt_a``, ``fmt_b``, ``acc``, ``pipeline``, ``latency = 1 + pipeline``, the
    ``result``/``special`` ports) and back-to-back tiles equal to golden, each read
    exactly ``latency`` cycles after its last element."""
    pe = MXMacPE(fa, fb, acc, pipeline=pipeline)
    assert isinstance(pe, AccumulatingPE)
    assert (pe.fmt_a, pe.fmt_b) == (golden.formats.get(fa), golden.formats.get(fb))
    assert (pe.acc, pe.pipeline, pe.latency) == (acc, pipeline, 1 + pipeline)
    assert len(pe.result) == acc_width(acc) and len(pe.special) == 1
    a, b = data.draw(mx_operands(fa, fb, 1, 1, sum(nblks), nan=nan))
    check_pe_tiles(a, b, nblks, acc, run_pe(a, b, nblks, acc, pipeline, gaps))


ACC_PE_ARGS = {"fmt_a": "mxfp4", "fmt_b": "mxint8", "acc": ACC, "pipeline": 0}


@pytest.mark.parametrize("cls", [MXMacPE, BitSerialMXMacPE])
@pytest.mark.parametrize("kw, exc, msg", [
    ({"fmt_a": "mxfp5"}, ValueError, "fmt_a must be a block format name"),
    ({"fmt_b": 3}, TypeError, "fmt_b must be a block format (a name or a BlockFormat), not 3"),
    ({"fmt_a": "mxfp4_k16"}, ValueError, "fmt_a must be a block format name"),
    ({"acc": "fixed"}, TypeError, "acc must be a golden.arith.Accumulation, not 'fixed'"),
    ({"pipeline": 5}, ValueError, "pipeline must be"),
    ({"pipeline": True}, TypeError, "pipeline must be"),
])
def test_accumulating_pe_init_wrong(cls, kw, exc, msg):
    """The base's checks, in both PEs: formats, accumulation, pipeline."""
    assert_raises(cls, ACC_PE_ARGS, kw, exc, msg, prefix=True)


def _mxfp4_k(k):
    """MXFP4 with blocks of ``k`` elements (a test format)."""
    return dataclasses.replace(golden.formats.get("mxfp4"), name=f"mxfp4_k{k}", block=k)


@pytest.mark.parametrize("cls", [MXMacPE, BitSerialMXMacPE])
def test_accumulating_pe_block_sizes_differ(cls):
    assert_raises(cls, ACC_PE_ARGS, {"fmt_b": _mxfp4_k(16)}, ValueError,
                  "fmt_a and fmt_b block sizes differ (32 vs 16)")


# ---- the dataflow cores without the front --------------------------------------------------

@budget(8, **SUPPRESS)
@given(data=st.data(), fa=st.sampled_from(FORMATS + ["mxsf"]),
       fb=st.sampled_from(FORMATS + ["mxsf"]), rows=st.integers(1, 3),
       cols=st.integers(1, 3), M=st.integers(1, 4), N=st.integers(1, 4),
       nblk=st.integers(1, 2), acc=acc_strategy(), shared=st.booleans(),
       pipeline=st.integers(0, PE_PIPELINE_MAX), nan=st.booleans(), zero=st.booleans(),
       gaps=st.tuples(waits(), waits()))
def test_os_core_matches_golden(data, fa, fb, rows, cols, M, N, nblk, acc, shared,
                                pipeline, nan, zero, gaps):
    """OutputStationaryCore on its own (per-PE or row-shared accumulation, every
    pipeline): drawn codes, scales, NaN scales and zero blocks, input gaps and output
    stalls; equal to golden bit for bit."""
    a, b = data.draw(mx_operands(fa, fb, M, N, nblk, nan=nan, zero=zero))
    core = OutputStationaryCore(rows, cols, fa, fb, acc,
                                functools.partial(MXMacPE, pipeline=pipeline), shared)
    assert core.serial == 1
    check_gemm(a, b, rows, cols, acc, gaps, 0.4, 0.4, dut=core)


@budget(8, **SUPPRESS)
@given(data=st.data(), fa=st.sampled_from(FORMATS), fb=st.sampled_from(["mxfp4", "mxint8"]),
       rows=st.integers(1, 3), cols=st.integers(1, 3), M=st.integers(1, 3),
       N=st.integers(1, 3), nblk=st.integers(1, 2), acc=acc_strategy(),
       pipeline=st.integers(0, PE_PIPELINE_MAX), gaps=st.tuples(waits(), waits()))
def test_os_core_bitserial_matches_golden(data, fa, fb, rows, cols, M, N, nblk, acc,
                                          pipeline, gaps):
    """OutputStationaryCore with the bit-serial PE: ``serial`` cycles per K step, golden
    results."""
    a, b = data.draw(mx_operands(fa, fb, M, N, nblk))
    core = OutputStationaryCore(rows, cols, fa, fb, acc,
                                functools.partial(BitSerialMXMacPE, pipeline=pipeline), False)
    assert core.serial == golden.formats.get(fb).element.bits + (fb == "mxfp4")
    check_gemm(a, b, rows, cols, acc, gaps, 0.4, 0.4, dut=core)


@budget(8, **SUPPRESS)
@given(data=st.data(), fa=st.sampled_from(FORMATS + ["mxsf"]),
       fb=st.sampled_from(FORMATS + ["mxsf"]), rows=st.integers(1, 3),
       cols=st.integers(1, 3), depth=st.integers(1, 4), M=st.integers(1, 5),
       N=st.integers(1, 4), nblk=st.integers(1, 2),
       acc=st.one_of(acc_strategy(), st.just(FP32)),
       pipeline=st.integers(0, PE_PIPELINE_MAX), nan=st.booleans(), zero=st.booleans(),
       gaps=st.tuples(waits(), waits()))
def test_ws_core_matches_golden(data, fa, fb, rows, cols, depth, M, N, nblk, acc, pipeline,
                                nan, zero, gaps):
    """WeightStationaryCore on its own (``fixed`` and ``fp32``): drawn operands, gaps
    and stalls; equal to golden bit for bit."""
    a, b = data.draw(mx_operands(fa, fb, M, N, nblk, nan=nan, zero=zero))
    core = WeightStationaryCore(rows, cols, fa, fb, acc, pipeline, depth)
    assert core.depth == depth
    check_ws(a, b, rows, cols, acc, gaps, 0.4, 0.4, dut=core)


OS_ARGS = {"rows": 2, "cols": 2, "fmt_a": "mxfp4", "fmt_b": "mxfp4", "acc": ACC,
           "pe": functools.partial(MXMacPE, pipeline=2), "shared": True}


@pytest.mark.parametrize("kw, exc, msg", [
    ({"rows": 0}, ValueError, "rows must be"),
    ({"cols": 2.0}, TypeError, "cols must be"),
    ({"fmt_a": "mxfp5"}, ValueError, "fmt_a must be a block format name"),
    ({"fmt_b": _mxfp4_k(16)}, ValueError, "fmt_a and fmt_b block sizes differ (32 vs 16)"),
    ({"acc": None}, TypeError, "acc must be a golden.arith.Accumulation, not None"),
    ({"pe": "bitparallel"}, TypeError, "pe must be a PE factory"),
    ({"shared": 1}, TypeError, "shared must be"),
    ({"acc": FP32}, ValueError, "shared=True needs fixed-point accumulation, not 'fp32'"),
    ({"pe": BitSerialMXMacPE}, ValueError, "shared=True needs the bit-parallel PE"),
    ({"cols": 33}, ValueError, "shared=True needs cols <= k"),
    ({"pe": BitSerialMXMacPE, "shared": False, "acc": FP32}, ValueError,
     "the bit-serial PE implements fixed-point accumulation only, not 'fp32'"),
])
def test_os_core_init_wrong(kw, exc, msg):
    assert_raises(OutputStationaryCore, OS_ARGS, kw, exc, msg, prefix=True)


WS_ARGS = {"rows": 2, "cols": 2, "fmt_a": "mxfp4", "fmt_b": "mxint8", "acc": ACC,
           "pipeline": 2, "depth": 3}


@pytest.mark.parametrize("kw, exc, msg", [
    ({"rows": 0}, ValueError, "rows must be"),
    ({"cols": None}, TypeError, "cols must be"),
    ({"depth": 0}, ValueError, "depth must be"),
    ({"fmt_b": "nope"}, ValueError, "fmt_b must be a block format name"),
    ({"fmt_a": _mxfp4_k(8)}, ValueError, "fmt_a and fmt_b block sizes differ (8 vs 32)"),
    ({"acc": 32}, TypeError, "acc must be a golden.arith.Accumulation, not 32"),
    ({"pipeline": -1}, ValueError, "pipeline must be"),
])
def test_ws_core_init_wrong(kw, exc, msg):
    assert_raises(WeightStationaryCore, WS_ARGS, kw, exc, msg, prefix=True)


def test_ws_core_latency():
    core = WeightStationaryCore(**WS_ARGS)
    assert ws_latency(2, 2, 2) == 2 + 2 + 2 + 3
    assert (core.rows, core.cols, core.depth, core.pipeline) == (2, 2, 3, 2)


# ---- the output buffer ---------------------------------------------------------------------

@st.composite
def buffer_tiles(draw, rows, cols, width):
    """1..3 tiles of ``rows`` x ``cols`` results: drawn values of ``signed(width)`` and
    NaN flags."""
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    cell = st.tuples(st.integers(lo, hi), st.integers(0, 1))
    return draw(st.lists(st.lists(st.lists(cell, min_size=cols, max_size=cols),
                                  min_size=rows, max_size=rows), min_size=1, max_size=3))


def run_buffer(dut, tiles, gaps, stalls):
    """Drive ``dut`` (an OutputBuffer) as its array does: a tile's ``tile_in`` once the
    buffer is not ``busy``, then (after drawn gaps) the tile's results (per-PE: all at
    once, with ``done``; row-shared: one column per cycle into every row's ring,
    ``fin_valid_next`` a cycle ahead, then ``done``); returns the rows read from ``o``."""
    R, C = dut._rows, dut._cols
    got = []

    async def producer(ctx):
        for tile in tiles:
            while ctx.get(dut.busy):
                await ctx.tick()
            ctx.set(dut.tile_in, 1)
            await ctx.tick()
            ctx.set(dut.tile_in, 0)
            while gaps.random() < 0.5:
                await ctx.tick()
            if dut._shared:
                for j in range(C):
                    while gaps.random() < 0.5:
                        await ctx.tick()
                    for i in range(R):
                        ctx.set(dut.fin_valid_next[i], 1)
                    await ctx.tick()
                    for i in range(R):
                        ctx.set(dut.fin_valid_next[i], 0)
                        ctx.set(dut.fin[i], tile[i][j][0])
                        ctx.set(dut.fin_special[i], tile[i][j][1])
                    await ctx.tick()
            else:
                for i in range(R):
                    for j in range(C):
                        ctx.set(dut.result[i][j], tile[i][j][0])
                        ctx.set(dut.special[i][j], tile[i][j][1])
            for i in range(R):
                ctx.set(dut.done[i], 1)
            await ctx.tick()
            for i in range(R):
                ctx.set(dut.done[i], 0)

    async def consumer(ctx):
        for r in await stream_recv(ctx, dut.o, R * len(tiles), stalls, 0.4):
            got.append([(r.data[j], r.special[j]) for j in range(C)])

    run(dut, producer, consumer)
    return got


@budget(15, **SUPPRESS)
@given(data=st.data(), rows=st.integers(1, 4), cols=st.integers(1, 4),
       width=st.integers(2, 40), shared=st.booleans(), gaps=waits(), stalls=waits())
def test_output_buffer_rows_in_order(data, rows, cols, width, shared, gaps, stalls):
    """Every tile's rows leave the buffer in order, row 0 first, each value and NaN flag
    as written (the buffer's golden model is the identity), whatever the gaps between
    tiles and the stalls of ``o``."""
    dut = OutputBuffer(rows, cols, fixed(width, 0), shared)
    tiles = data.draw(buffer_tiles(rows, cols, width))
    got = run_buffer(dut, tiles, gaps, stalls)
    assert got == [[tuple(c) for c in row] for tile in tiles for row in tile]


BUF_ARGS = {"rows": 2, "cols": 3, "acc": ACC, "shared": False}


@pytest.mark.parametrize("kw, exc, msg", [
    ({"rows": 0}, ValueError, "rows must be"),
    ({"cols": "3"}, TypeError, "cols must be"),
    ({"acc": (32, 16)}, TypeError, "acc must be a golden.arith.Accumulation, not (32, 16)"),
    ({"acc": golden.arith.Accumulation("exact")}, ValueError,
     "acc must be fixed-point or FP32 accumulation"),
    ({"shared": None}, TypeError, "shared must be"),
])
def test_output_buffer_init_wrong(kw, exc, msg):
    assert_raises(OutputBuffer, BUF_ARGS, kw, exc, msg, prefix=True)
