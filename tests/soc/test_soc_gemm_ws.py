"""The weight-stationary SoC (``SoCConfig(dataflow="weight_stationary")``): matmul through
the host driver, the link and :class:`~mxhw.soc.gemm_ws.GemmWSUnit`, against golden.gemm."""

import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st

from mxhw import golden
from mxhw.golden.quantize import MXArray
from mxhw.soc.driver import Accelerator
from mxhw.soc.gemm import GEMM_BASE
from mxhw.soc.gemm_ws import WS_REGS, GemmWSUnit
from mxhw.soc.top import DATAFLOWS, SoCConfig
from mxhw.systolic.driver import ws_beats

# depth < rows: weight-only transfers between passes; M, N tiles of 3 and 3
CFG = SoCConfig(rows=4, cols=3, depth=3, max_k=64, dataflow="weight_stationary")


@pytest.fixture(scope="module")
def acc():
    return Accelerator.simulated(CFG, backend="compiled")


def operand(rng, fmt, shape, axis, kind):
    """A quantised operand; ``kind`` shapes the values (NaN scales, zero blocks, a wide
    magnitude spread, values that saturate the accumulator)."""
    x = rng.standard_normal(shape)
    if kind == "spread":
        x *= np.exp2(rng.integers(-12, 13, shape))
    elif kind == "huge":
        x *= 2.0 ** 12
    elif kind == "zeros":
        x[rng.random(shape) < 0.5] = 0.0
    q = golden.quantize(x, fmt, axis=axis)
    if kind != "nan":
        return q
    scales = q.scales.copy()
    scales[rng.random(scales.shape) < 0.2] = golden.formats.get(fmt).scale.nan_code
    return MXArray(q.fmt, q.shape, q.axis, q.elements, scales, q.modes)


def check(acc, cfg, M, N, K, kind, seed):
    rng = np.random.default_rng(seed)
    qa = operand(rng, cfg.fmt_a, (M, K), 1, kind)
    qb = operand(rng, cfg.fmt_b, (K, N), 0, kind)
    np.testing.assert_array_equal(acc.matmul(qa, qb), golden.gemm(qa, qb, cfg.acc))


def test_reports_its_dataflow(acc):
    assert acc.read_reg("FEATURES") >> 8 & 3 == 0b11        # GEMM unit, weight-stationary
    geo = acc.read_words(GEMM_BASE + 4 * WS_REGS["GEOMETRY"], 1)[0]
    assert geo >> 24 == 1
    g = acc.gemm_config()
    assert (g["dataflow"], g["rows"], g["cols"], g["depth"], g["max_k"]) == (
        "weight_stationary", CFG.rows, CFG.cols, CFG.depth, CFG.max_k)
    assert (g["fmt_a"], g["fmt_b"], g["acc_width"], g["acc_frac"]) == (
        CFG.fmt_a, CFG.fmt_b, CFG.acc_width, CFG.acc_frac)


def test_output_stationary_reports_its_dataflow():
    acc = Accelerator.simulated(SoCConfig(rows=1, cols=1, max_k=32))
    assert acc.read_reg("FEATURES") >> 8 & 3 == 0b01
    g = acc.gemm_config()
    assert g["dataflow"] == "output_stationary" and "depth" not in g


@settings(max_examples=12)
@given(M=st.integers(1, 8), N=st.integers(1, 7), kblocks=st.integers(1, 2),
       kind=st.sampled_from(["normal", "spread", "zeros", "nan", "huge"]),
       seed=st.integers(0, 2**32 - 1))
@example(M=1, N=1, kblocks=1, kind="normal", seed=0)       # K of one block, one element
@example(M=5, N=4, kblocks=1, kind="spread", seed=1)       # M, N not multiples of 3
@example(M=6, N=6, kblocks=2, kind="nan", seed=2)          # whole tiles, NaN scales
def test_matmul_equals_golden(acc, M, N, kblocks, kind, seed):
    check(acc, CFG, M, N, 32 * kblocks, kind, seed)


def test_counters_cover_the_schedule(acc):
    """BUSY_CYCLES per START (one tile): the array's input schedule at one transfer per
    cycle, plus the documented pipeline latency (``rows + cols + 11``, see GemmWSUnit);
    the operands alone never stall a tile of this size."""
    rd = lambda name: acc.read_words(GEMM_BASE + 4 * WS_REGS[name], 1)[0]
    busy0, stall0 = rd("BUSY_CYCLES"), rd("STALL_CYCLES")
    rng = np.random.default_rng(3)
    qa = operand(rng, CFG.fmt_a, (CFG.depth, 64), 1, "normal")
    qb = operand(rng, CFG.fmt_b, (64, CFG.cols), 0, "normal")
    acc.matmul(qa, qb)
    transfers = len(ws_beats(qa, qb, CFG.rows, CFG.cols, CFG.depth))
    assert rd("BUSY_CYCLES") - busy0 == transfers + CFG.rows + CFG.cols + 11
    assert rd("STALL_CYCLES") == stall0
    assert rd("DEPTH") == CFG.depth


# formats, and array shapes: rows not dividing the block (padded passes), depth above and
# below rows, an A row of codes straddling two 32-bit lanes (6 x 6 bits)
SHAPES = [
    dict(rows=3, cols=2, depth=5, fmt_a="mxint8", fmt_b="mxfp6_e3m2"),
    dict(rows=5, cols=2, depth=2, fmt_a="mxfp8_e4m3", fmt_b="mxfp6_e2m3"),
    dict(rows=6, cols=1, depth=2, fmt_a="mxfp6_e3m2", fmt_b="mxfp8_e5m2"),
    dict(rows=2, cols=2, depth=2, fmt_a="mxfp4_e2m1", fmt_b="mxint8"),
]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "{fmt_a}-{fmt_b}-{rows}x{cols}"
                         "-d{depth}".format(**s))
def test_matmul_formats_and_shapes(shape):
    cfg = SoCConfig(max_k=64, acc_width=40, acc_frac=20, dataflow="weight_stationary",
                    **shape)
    acc = Accelerator.simulated(cfg)
    for M, N, K, kind in [(shape["depth"] + 1, shape["cols"] + 1, 64, "spread"),
                          (1, 1, 32, "nan")]:
        check(acc, cfg, M, N, K, kind, M * N + K)


@pytest.mark.parametrize("call, msg", [
    (lambda acc: acc.matmul(np.ones((2, 128)), np.ones((128, 2))),
     r"K = 128 must be a positive multiple of 32 and at most the device's max_k = 64"),
    (lambda acc: acc.matmul(np.ones((2, 32)), np.ones((32, 2)), fmt_b="mxint8"),
     r"fmt_b='mxint8', but the device was built for 'mxfp4_e2m1'"),
])
def test_matmul_errors(acc, call, msg):
    with pytest.raises(ValueError, match=msg):
        call(acc)


def test_dataflows_match_the_arrays():
    from mxhw.systolic.array import DATAFLOWS as ARRAY_DATAFLOWS
    assert DATAFLOWS == ARRAY_DATAFLOWS


@pytest.mark.parametrize("kwargs, msg", [
    (dict(dataflow="row_stationary"),
     r"dataflow must be one of output_stationary, weight_stationary, not 'row_stationary'"),
    (dict(dataflow="WS"),
     r"dataflow must be one of output_stationary, weight_stationary, not 'WS'"),
    (dict(depth=4),
     r"depth applies to the weight-stationary dataflow only, not 'output_stationary' "
     r"\(leave it 0\)"),
    (dict(depth=-1, dataflow="weight_stationary"),
     r"depth must be a non-negative integer, not -1"),
])
def test_config_wrong_dataflow(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        SoCConfig(**kwargs)


def test_config_depth_defaults_to_rows():
    assert SoCConfig(rows=4, dataflow="weight_stationary").tile_depth == 4
    assert SoCConfig(rows=4, depth=7, dataflow="weight_stationary").tile_depth == 7
    assert SoCConfig(rows=4, dataflow="weight_stationary").features() >> 9 & 1 == 1
    assert SoCConfig(rows=0, dataflow="weight_stationary").features() >> 8 == 0


@pytest.mark.parametrize("kwargs, msg", [
    (dict(fmt_a="mxsf"), r"fmt_a must be one of mxfp8_e4m3, .*, not 'mxsf'"),
    (dict(rows=0), r"rows must be an integer in \[1, 255\], not 0"),
    (dict(cols=33), r"cols must be an integer in \[1, 32\], not 33"),
    (dict(depth=256), r"depth must be an integer in \[1, 255\], not 256"),
    (dict(depth=True), r"depth must be an integer in \[1, 255\], not True"),
    (dict(max_k=48), r"max_k must be a power of two and a multiple of 32, not 48"),
    (dict(acc=golden.arith.FP32),
     r"^acc must be fixed-point accumulation \(golden.fixed\(...\)\) for the SoC's GEMM "
     r"units, not 'fp32': their ACC register and result words hold fixed-point results$"),
    (dict(acc=golden.arith.EXACT),
     r"^acc must be fixed-point accumulation \(golden.fixed\(...\)\) for the SoC's GEMM "
     r"units, not 'exact'"),
])
def test_gemm_ws_unit_wrong_params(kwargs, msg):
    args = dict(rows=2, cols=2, depth=2, fmt_a="mxfp4_e2m1", fmt_b="mxfp4_e2m1",
                acc=CFG.acc, max_k=64)
    args.update(kwargs)
    with pytest.raises(ValueError, match=msg):
        GemmWSUnit(**args)


def test_gemm_ws_unit_wrong_acc_type():
    with pytest.raises(TypeError, match=r"^acc must be a golden.arith.Accumulation, not 32$"):
        GemmWSUnit(rows=2, cols=2, depth=2, fmt_a="mxfp4_e2m1", fmt_b="mxfp4_e2m1", acc=32)


def test_gemm_ws_unit_registers():
    u = GemmWSUnit(rows=3, cols=2, depth=5, fmt_a="mxint8", fmt_b="mxfp6_e3m2",
                   acc=CFG.acc, max_k=128)
    assert u.geometry() == 3 | 2 << 8 | 7 << 16 | 1 << 24
    assert u.passes_per_block == 11
