"""The SoC's GEMM unit, both dataflows (``SoCConfig(dataflow=...)``): matmul on the
simulated SoC (host driver -> link -> :class:`~mxhw.soc.gemm.GemmUnit`) against
golden.gemm; its registers; its bus contract; its parameters."""

import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, strategies as st

from mxhw import golden
from mxhw.soc.driver import Accelerator, DeviceError
from mxhw.soc.gemm import GemmUnit
from mxhw.soc.regmap import (GEMM_BASE, GEMM_REGS, REGION, REGION_SHIFT, REGISTERS,
                             registers_for)
from mxhw.soc.top import DATAFLOWS, SoCConfig
from mxhw.systolic.array import SystolicArray
from mxhw.systolic.driver import ws_beats

from support.hyp import budget
from support.soc import mx_operands, soc_expect

OS, WS = DATAFLOWS
# weight-stationary depth < rows: weight-only transfers between passes
CFGS = {OS: SoCConfig(rows=4, cols=4, max_k=64),
        WS: SoCConfig(rows=4, cols=3, depth=3, max_k=64, dataflow=WS)}


@pytest.fixture(scope="module", params=DATAFLOWS)
def dev(request):
    """(accelerator, its config) on pysim."""
    cfg = CFGS[request.param]
    return Accelerator.simulated(cfg), cfg


def tile_height(cfg):
    return cfg.tile_depth if cfg.dataflow == WS else cfg.rows


def test_reports_its_configuration(dev):
    acc, cfg = dev
    ws = cfg.dataflow == WS
    assert acc.read_reg("FEATURES") >> 8 & 3 == (0b11 if ws else 0b01)
    g = acc.gemm_config()
    assert (g["rows"], g["cols"], g["max_k"], g["a_tiles"]) == (cfg.rows, cfg.cols,
                                                                cfg.max_k, cfg.a_tiles)
    assert (g["fmt_a"], g["fmt_b"]) == (cfg.fmt_a, cfg.fmt_b)
    assert (g["acc_width"], g["acc_frac"], g["saturate"], g["rne"]) == (32, 16, True, False)
    assert g["dataflow"] == cfg.dataflow
    assert g.get("depth") == (cfg.depth if ws else None)


def test_register_region_reads_zero_past_the_registers(dev):
    """The register region: each register word at its index, and 0 at every other index
    (words past the last register, and high index bits set over a register's low bits),
    for reads back to back and alone."""
    acc, cfg = dev
    geometry = (cfg.rows | cfg.cols << 8 | (cfg.max_k.bit_length() - 1) << 16
                | (cfg.dataflow == WS) << 24)
    base = GEMM_BASE + 4 * GEMM_REGS["GEOMETRY"]
    assert acc.read_words(base, 1) == [geometry]
    top = max(r.index for r in registers_for(cfg.dataflow).values())
    assert acc.read_words(GEMM_BASE + 4 * (top + 1), 4) == [0] * 4
    for high in (1 << 5, 1 << 11, 1 << (REGION_SHIFT - 1)):
        assert acc.read_words(base + 4 * high, 1) == [0], high
        assert acc.read_words(GEMM_BASE + 4 * high, 2) == [0, 0], high
    words = acc.read_words(GEMM_BASE, top + 1)
    assert words[GEMM_REGS["GEOMETRY"]] == geometry and words[GEMM_REGS["K"]] == \
        acc.read_words(GEMM_BASE + 4 * GEMM_REGS["K"], 1)[0]
    if cfg.dataflow == WS:
        assert words[GEMM_REGS["DEPTH"]] == cfg.depth


@st.composite
def matmuls(draw, cfg, max_m=9, max_n=9, huge=True):
    """Operands for ``cfg``'s unit: M x K and K x N drawn as codes (NaN scales, zero
    blocks, scales that saturate the accumulator)."""
    M, N, K = draw(st.integers(1, max_m)), draw(st.integers(1, max_n)), \
        32 * draw(st.integers(1, cfg.max_k // 32))
    return (draw(mx_operands(cfg.fmt_a, (M, K), 1, huge=huge)),
            draw(mx_operands(cfg.fmt_b, (K, N), 0, huge=huge)))


@budget(8)
@given(data=st.data())
def test_matmul_equals_golden(dev, data):
    acc, cfg = dev
    qa, qb = data.draw(matmuls(cfg))
    np.testing.assert_array_equal(acc.matmul(qa, qb), soc_expect(qa, qb, cfg))


@pytest.fixture(scope="module", params=DATAFLOWS)
def dev_compiled(request):
    """(accelerator, its config) on the compiled back end."""
    cfg = CFGS[request.param]
    return Accelerator.simulated(cfg, backend="compiled"), cfg


@pytest.mark.compiled
@budget(12)
@given(data=st.data())
def test_matmul_equals_golden_compiled(dev_compiled, data):
    """More and larger GEMMs on the compiled back end."""
    acc, cfg = dev_compiled
    qa, qb = data.draw(matmuls(cfg, max_m=13, max_n=13))
    np.testing.assert_array_equal(acc.matmul(qa, qb), soc_expect(qa, qb, cfg))


@pytest.mark.parametrize("shape", [(1, 1, 32), (5, 4, 32), (6, 6, 64)],
                         ids=["one-element", "partial-tiles", "whole-tiles"])
def test_matmul_float_operands(dev, shape):
    """Float operands, quantised by the driver: one K block and one element; M, N not
    multiples of the tile; whole tiles with a NaN (its block's scale is NaN)."""
    acc, cfg = dev
    M, N, K = shape
    rng = np.random.default_rng(M * N + K)
    a, b = rng.standard_normal((M, K)), rng.standard_normal((K, N))
    if M > 1:
        a[1, K - 3] = np.nan
    np.testing.assert_array_equal(acc.matmul(a, b), soc_expect(a, b, cfg))


def test_counters_cover_the_schedule(dev):
    """BUSY_CYCLES per START (one tile): the array's input transfers at one a cycle, the
    array's latency, 4 cycles of memory read (2), prefetch queue and result write, and
    (output-stationary) the tile's further result rows; the operands alone never stall."""
    acc, cfg = dev
    rd = lambda name: acc.read_words(GEMM_BASE + 4 * GEMM_REGS[name], 1)[0]
    busy0, stall0 = rd("BUSY_CYCLES"), rd("STALL_CYCLES")
    rng = np.random.default_rng(3)
    H = tile_height(cfg)
    qa = golden.quantize(rng.standard_normal((H, 64)), cfg.fmt_a, axis=1)
    qb = golden.quantize(rng.standard_normal((64, cfg.cols)), cfg.fmt_b, axis=0)
    acc.matmul(qa, qb)
    arr = SystolicArray(cfg.rows, cfg.cols, cfg.fmt_a, cfg.fmt_b, dataflow=cfg.dataflow,
                        acc=cfg.acc, depth=cfg.depth if cfg.dataflow == WS else None)
    if cfg.dataflow == WS:
        expect = len(ws_beats(qa, qb, cfg.rows, cfg.cols, cfg.depth)) + arr.latency + 4
    else:
        expect = 64 + arr.latency + 4 + cfg.rows - 1
    assert rd("BUSY_CYCLES") - busy0 == expect
    assert rd("STALL_CYCLES") == stall0


@pytest.mark.parametrize("call, exc, msg", [
    (lambda acc: acc.matmul(np.ones((2, 64)), np.ones((64, 2)), fmt_a="mxint8"),
     ValueError, r"fmt_a='mxint8', but the device was built for 'mxfp4_e2m1'"),
    (lambda acc: acc.matmul(np.ones((2, 32)), np.ones((32, 2)), fmt_b="mxint8"),
     ValueError, r"fmt_b='mxint8', but the device was built for 'mxfp4_e2m1'"),
    (lambda acc: acc.matmul(np.ones((2, 48)), np.ones((48, 2))),
     ValueError, r"K = 48 must be a positive multiple of 32 and at most the device's max_k = 64"),
    (lambda acc: acc.matmul(np.ones((2, 128)), np.ones((128, 2))),
     ValueError, r"K = 128 must be a positive multiple of 32"),
    (lambda acc: acc.matmul(np.ones((2, 64)), np.ones((32, 2))),
     ValueError, r"inner dimensions differ"),
    (lambda acc: acc.matmul(golden.quantize(np.ones((2, 64)), "mxint8", axis=1),
                            np.ones((64, 2))),
     ValueError, r"a is quantised as 'mxint8', but the device was built for 'mxfp4_e2m1'"),
    (lambda acc: acc.matmul(np.ones(64), np.ones((64, 2))),
     ValueError, r"a must be 2-D, not of shape \(64,\)"),
])
def test_matmul_errors(dev, call, exc, msg):
    with pytest.raises(exc, match=msg):
        call(dev[0])


def test_matmul_format_alias(dev):
    """``fmt_a="mxfp4"`` names the device's ``mxfp4_e2m1``."""
    acc, cfg = dev
    a, b = np.ones((1, 32)), np.ones((32, 1))
    np.testing.assert_array_equal(acc.matmul(a, b, fmt_a="mxfp4"), soc_expect(a, b, cfg))


def test_no_gemm_unit():
    acc = Accelerator.simulated(SoCConfig(rows=0))
    with pytest.raises(DeviceError, match=r"built without a GEMM unit"):
        acc.matmul(np.ones((2, 32)), np.ones((32, 2)))


# formats and array shapes: rows not a power of two (result memories rounded up), six
# FP6 codes straddling two 32-bit lanes, rows not dividing the block (padded passes),
# depth above and below rows, A tiles
SHAPES = [
    dict(rows=1, cols=6, fmt_b="mxfp6_e3m2"),
    dict(rows=3, cols=5, fmt_a="mxfp6_e2m3", fmt_b="mxfp6_e3m2", a_tiles=2),
    dict(rows=2, cols=3, fmt_a="mxint8", fmt_b="mxfp8_e4m3"),
    dict(rows=3, cols=2, depth=5, fmt_a="mxint8", fmt_b="mxfp6_e3m2", dataflow=WS),
    dict(rows=5, cols=2, depth=2, fmt_a="mxfp8_e4m3", fmt_b="mxfp6_e2m3", dataflow=WS),
    dict(rows=6, cols=1, depth=2, fmt_a="mxfp6_e3m2", fmt_b="mxfp8_e5m2", dataflow=WS),
    dict(rows=2, cols=2, depth=2, fmt_a="mxfp4_e2m1", fmt_b="mxint8", dataflow=WS),
]


def shape_id(s):
    return "{}-{}-{}x{}-{}".format(s.get("fmt_a", "fp4"), s.get("fmt_b", "fp4"), s["rows"],
                                   s["cols"], s.get("dataflow", OS)[:1] + "s"
                                   + (f"-d{s['depth']}" if "depth" in s else "")
                                   + (f"-t{s['a_tiles']}" if "a_tiles" in s else ""))


@pytest.mark.parametrize("shape", [
    # the output-stationary shapes take longer on pysim (and run compiled below)
    pytest.param(s, marks=pytest.mark.slow) if s.get("dataflow", OS) == OS else s
    for s in SHAPES], ids=shape_id)
def test_matmul_formats_and_shapes(shape):
    cfg = SoCConfig(max_k=64, acc_width=40, acc_frac=20, **shape)
    acc = Accelerator.simulated(cfg)
    H = tile_height(cfg)
    for M, N, K, seed in [(2 * H + 1, cfg.cols + 1, 64, 1), (1, 1, 32, 2)]:
        rng = np.random.default_rng(seed)
        a, b = rng.standard_normal((M, K)), rng.standard_normal((K, N))
        a *= np.exp2(rng.integers(-12, 13, a.shape))
        np.testing.assert_array_equal(acc.matmul(a, b), soc_expect(a, b, cfg))


@pytest.mark.compiled
@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
def test_matmul_formats_and_shapes_compiled(shape):
    """The same shapes on the compiled back end, larger GEMMs."""
    cfg = SoCConfig(max_k=64, acc_width=40, acc_frac=20, **shape)
    acc = Accelerator.simulated(cfg, backend="compiled")
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((7, 64)), rng.standard_normal((64, 11))
    np.testing.assert_array_equal(acc.matmul(a, b), soc_expect(a, b, cfg))


CFG_TILES = SoCConfig(rows=2, cols=3, fmt_a="mxfp6_e3m2", fmt_b="mxint8", max_k=64,
                      a_tiles=4)


@pytest.fixture(scope="module")
def acc_tiles():
    return Accelerator.simulated(CFG_TILES, backend="compiled")


@pytest.mark.compiled
@budget(10)
@given(data=st.data())
def test_matmul_a_tiles(acc_tiles, data):
    """A unit holding 4 A row blocks: M spans one to three groups of them, B strips are
    sent once per group; results equal golden."""
    qa, qb = data.draw(matmuls(CFG_TILES, max_m=19, max_n=8))
    np.testing.assert_array_equal(acc_tiles.matmul(qa, qb), soc_expect(qa, qb, CFG_TILES))


@pytest.mark.compiled
def test_a_tiles_reported_and_selectable(acc_tiles):
    assert acc_tiles.gemm_config()["a_tiles"] == 4
    reg = GEMM_BASE + 4 * GEMM_REGS["A_TILE"]
    acc_tiles.write_words(reg, [3])
    assert acc_tiles.read_words(reg, 1) == [3]
    acc_tiles.write_words(reg, [5])            # two bits: 5 selects tile 1
    assert acc_tiles.read_words(reg, 1) == [1]


def test_a_tiles_selectable_pysim():
    acc = Accelerator.simulated(SoCConfig(rows=1, cols=1, max_k=32, a_tiles=2))
    reg = GEMM_BASE + 4 * GEMM_REGS["A_TILE"]
    acc.write_words(reg, [3])                  # one bit: 3 selects tile 1
    assert acc.read_words(reg, 1) == [1] and acc.gemm_config()["a_tiles"] == 2


def test_register_map_is_documented():
    """soc/PROTOCOL.md's register table is regmap.REGISTERS: name, offset, access."""
    doc = (Path(__file__).parents[2] / "soc" / "PROTOCOL.md").read_text()
    rows = re.findall(r"^\| `(\w+)` \| `\+0x([0-9A-F]+)` \| (R/W|R|W) \|", doc, re.M)
    assert [(n, int(o, 16), a) for n, o, a in rows] == \
        [(r.name, r.offset, r.access) for r in REGISTERS]


@pytest.mark.parametrize("dataflow", DATAFLOWS)
@budget(5)
@given(ops=st.lists(st.tuples(st.sampled_from(["regs", "a", "c", "c_special"]),
                              st.integers(0, 17), st.booleans()), min_size=1, max_size=24))
def test_gemm_unit_read_data_is_zero_unless_read(dataflow, ops):
    """The unit's bus contract that the SoC's read path relies on (it ORs the sources'
    read data): ``r_data`` is 0 in the cycle after a cycle without ``r_en``, whatever
    the address; after a read it holds the word (the description registers; 0 past the
    registers and in the write-only regions; the results, all 0 after reset)."""
    from amaranth.hdl import Module
    from amaranth.sim import Simulator
    ws = dataflow == WS
    u = GemmUnit(rows=2, cols=2, fmt_a="mxfp4_e2m1", fmt_b="mxfp4_e2m1", acc=CFGS[OS].acc,
                 max_k=32, dataflow=dataflow, depth=2 if ws else None)
    m = Module()
    m.submodules.u = u
    regs = registers_for(dataflow)
    described = {regs[n].index: v for n, v in u.register_values().items()}

    def expected(region, index, read):
        if not read or region != "regs" or index > max(r.index for r in regs.values()):
            return 0        # results read 0 after reset; the operand regions are write-only
        if index in described:
            return described[index]
        return 0 if index not in {r.index for r in regs.values()} else None

    async def tb(ctx):
        for region, index, read in ops:
            ctx.set(u.bus.addr, REGION[region] << REGION_SHIFT | index)
            ctx.set(u.bus.r_en, read)
            await ctx.tick()        # the read's data: registered at this edge
            want = expected(region, index, read)
            if want is not None:    # None: a live register, not checked here
                assert ctx.get(u.bus.r_data) == want, (region, index, read)

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()


BASE = dict(rows=2, cols=2, fmt_a="mxfp4_e2m1", fmt_b="mxfp4_e2m1", acc=CFGS[OS].acc,
            max_k=64)


@pytest.mark.parametrize("dataflow", DATAFLOWS)
@pytest.mark.parametrize("kwargs, exc, msg", [
    (dict(fmt_a="mxsf_tile"), ValueError,
     r"fmt_a='mxsf_tile' has 2-D tiles: it is the tile unit's format"),
    (dict(fmt_b="nvfp4"), ValueError, r"fmt_b must be one of mxfp8_e4m3, .*, not 'nvfp4'"),
    (dict(fmt_b="mxsf"), ValueError,
     r"fmt_b='mxsf': a format with block modes is an output-stationary unit's fmt_a only"),
    (dict(rows=0), ValueError, r"rows must be in \[1, 255\], not 0"),
    (dict(cols=33), ValueError, r"cols must be in \[1, 32\], not 33"),
    (dict(cols=True), TypeError, r"cols must be an integer, not True"),
    (dict(max_k=48), ValueError, r"max_k must be a power of two, not 48"),
    (dict(max_k=16), ValueError, r"max_k must be >= 32, not 16"),
    (dict(acc=golden.arith.FP32), ValueError,
     r"^acc must be fixed-point accumulation \(golden.fixed\(...\)\) for the SoC's GEMM "
     r"units, not 'fp32': their ACC register and result words hold fixed-point results$"),
    (dict(acc=golden.arith.EXACT), ValueError,
     r"^acc must be fixed-point accumulation \(golden.fixed\(...\)\) for the SoC's GEMM "
     r"units, not 'exact'"),
    (dict(acc=32), TypeError, r"^acc must be a golden.arith.Accumulation, not 32$"),
])
def test_gemm_unit_wrong_params(dataflow, kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        GemmUnit(**{**BASE, "dataflow": dataflow, **kwargs})


@pytest.mark.parametrize("kwargs, exc, msg", [
    (dict(a_tiles=6), ValueError, r"a_tiles must be a power of two, not 6"),
    (dict(a_tiles=0), ValueError, r"a_tiles must be in \[1, 32768\], not 0"),
    (dict(depth=2), ValueError, r"depth applies to the weight-stationary dataflow only"),
    (dict(dataflow=WS, depth=256), ValueError, r"depth must be in \[1, 255\], not 256"),
    (dict(dataflow=WS, depth=True), TypeError, r"depth must be an integer, not True"),
    (dict(dataflow=WS, a_tiles=2), ValueError, r"a_tiles must be in \[1, 1\], not 2"),
    (dict(dataflow="WS"), ValueError,
     r"dataflow must be one of 'output_stationary', 'weight_stationary', not 'WS'"),
])
def test_gemm_unit_wrong_dataflow_params(kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        GemmUnit(**{**BASE, **kwargs})


def test_gemm_unit_registers():
    u = GemmUnit(rows=3, cols=2, depth=5, fmt_a="mxint8", fmt_b="mxfp6_e3m2",
                 acc=CFGS[OS].acc, max_k=128, dataflow=WS)
    assert u.geometry() == 3 | 2 << 8 | 7 << 16 | 1 << 24
    assert u.passes_per_block == 11 and u.tile_rows == 5
    u = GemmUnit(rows=3, cols=2, fmt_a="mxfp4", fmt_b="mxfp4", acc=CFGS[OS].acc,
                 max_k=64, a_tiles=4)
    assert u.geometry() == 3 | 2 << 8 | 6 << 16 | 2 << 28
    assert (u.fmt_a, u.tile_rows) == ("mxfp4_e2m1", 3)


def test_soc_config_formats_by_golden_name():
    """Aliases resolve to golden's canonical names, the CLI's ``--config fmt_a=mxfp4``
    included; MXSF weights (no block modes in the B memories) are refused at once."""
    cfg = SoCConfig(fmt_a="mxfp4", fmt_b="mxint8")
    assert (cfg.fmt_a, cfg.fmt_b) == ("mxfp4_e2m1", "mxint8")
    for dataflow in DATAFLOWS:
        with pytest.raises(ValueError, match=r"fmt_b='mxsf': a format with block modes is "
                                             r"an output-stationary unit's fmt_a only"):
            SoCConfig(dataflow=dataflow, fmt_b="mxsf")


def test_dataflows_are_the_arrays():
    from mxhw.systolic import array
    assert DATAFLOWS is array.DATAFLOWS


@pytest.mark.parametrize("exc, kwargs, msg", [
    (ValueError, dict(dataflow="row_stationary"),
     r"dataflow must be one of 'output_stationary', 'weight_stationary', "
     r"not 'row_stationary'"),
    (ValueError, dict(depth=4),
     r"depth applies to the weight-stationary dataflow only, not 'output_stationary' "
     r"\(leave it 0\)"),
    (ValueError, dict(depth=-1, dataflow=WS), r"depth must be >= 0, not -1"),
    (ValueError, dict(a_tiles=3), r"a_tiles must be a power of two, not 3"),
    (ValueError, dict(a_tiles=0), r"a_tiles must be >= 1, not 0"),
    (ValueError, dict(a_tiles=2, dataflow=WS), r"a_tiles applies to the output-stationary"),
    (TypeError, dict(rows=True), r"rows must be an integer, not True"),
    (ValueError, dict(scratch_words=100), r"scratch_words must be a power of two, not 100"),
    (ValueError, dict(baud=0), r"baud must be >= 1, not 0"),
    (TypeError, dict(clk_hz=25e6), r"clk_hz must be an integer, not 25000000.0"),
])
def test_config_wrong(exc, kwargs, msg):
    """SoCConfig checks its fields with mxhw.lib.params (type, range, power of two)."""
    with pytest.raises(exc, match=msg):
        SoCConfig(**kwargs)


def test_config_depth_defaults_to_rows():
    assert SoCConfig(rows=4, dataflow=WS).tile_depth == 4
    assert SoCConfig(rows=4, depth=7, dataflow=WS).tile_depth == 7
    assert SoCConfig(rows=4, dataflow=WS).features() >> 9 & 1 == 1
    assert SoCConfig(rows=0, dataflow=WS).features() >> 8 == 0
    assert SoCConfig(rows=0).units() == []
