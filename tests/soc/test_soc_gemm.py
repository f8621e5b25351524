"""matmul on the simulated SoC (host driver -> link -> GEMM unit) against golden.gemm."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from mxhw import golden
from mxhw.soc.driver import Accelerator, DeviceError
from mxhw.soc.top import SoCConfig

CFG = SoCConfig(rows=4, cols=4, max_k=64)


@pytest.fixture(scope="module")
def acc():
    return Accelerator.simulated(CFG)


def expect(a, b, cfg=CFG):
    qa = golden.quantize(a, cfg.fmt_a, axis=1)
    qb = golden.quantize(b, cfg.fmt_b, axis=0)
    return golden.gemm(qa, qb, cfg.acc)


def test_reports_its_configuration(acc):
    g = acc.gemm_config()
    assert (g["rows"], g["cols"], g["max_k"]) == (CFG.rows, CFG.cols, CFG.max_k)
    assert (g["fmt_a"], g["fmt_b"]) == (CFG.fmt_a, CFG.fmt_b)
    assert (g["acc_width"], g["acc_frac"], g["saturate"], g["rne"]) == (32, 16, True, False)


def test_register_region_reads_zero_past_the_registers(acc):
    """The register region: each register word at its index, and 0 at every other index
    (words past the last register, and high index bits set over a register's low bits),
    for reads back to back and alone."""
    from mxhw.soc.gemm import GEMM_BASE, GEMM_REGS, REGION_SHIFT
    geometry = CFG.rows | CFG.cols << 8 | (CFG.max_k.bit_length() - 1) << 16
    base = GEMM_BASE + 4 * GEMM_REGS["GEOMETRY"]
    assert acc.read_words(base, 1) == [geometry]
    top = max(GEMM_REGS.values())
    assert acc.read_words(GEMM_BASE + 4 * (top + 1), 4) == [0] * 4
    for high in (1 << 5, 1 << 11, 1 << (REGION_SHIFT - 1)):
        assert acc.read_words(base + 4 * high, 1) == [0], high
        assert acc.read_words(GEMM_BASE + 4 * high, 2) == [0, 0], high
    words = acc.read_words(GEMM_BASE, top + 1)
    assert words[GEMM_REGS["GEOMETRY"]] == geometry and words[GEMM_REGS["K"]] == \
        acc.read_words(GEMM_BASE + 4 * GEMM_REGS["K"], 1)[0]


values = st.sampled_from(["normal", "zeros", "outliers", "tiny", "huge"])


def make(rng, shape, kind):
    x = rng.standard_normal(shape)
    if kind == "zeros":
        x[rng.random(shape) < 0.5] = 0.0
    elif kind == "outliers":
        x[rng.random(shape) < 0.05] *= 1000.0
    elif kind == "tiny":
        x *= 2.0 ** -20
    elif kind == "huge":
        x *= 2.0 ** 12  # large enough that the 32-bit accumulator saturates
    return x


@settings(max_examples=8)
@given(M=st.integers(1, 9), N=st.integers(1, 9), kblocks=st.integers(1, 2), kind=values,
       seed=st.integers(0, 2**32 - 1))
def test_matmul_equals_golden(acc, M, N, kblocks, kind, seed):
    rng = np.random.default_rng(seed)
    a = make(rng, (M, 32 * kblocks), kind)
    b = make(rng, (32 * kblocks, N), kind)
    np.testing.assert_array_equal(acc.matmul(a, b), expect(a, b))


def test_matmul_quantised_operands_and_nan_scale(acc):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((4, 64))
    a[1, 40] = np.nan  # block (1, 1) gets the NaN scale
    b = rng.standard_normal((64, 3))
    qa = golden.quantize(a, "mxfp4", axis=1)
    qb = golden.quantize(b, "mxfp4", axis=0)
    got = acc.matmul(qa, qb)
    ref = golden.gemm(qa, qb, CFG.acc)
    assert np.isnan(ref[1]).all() and not np.isnan(ref[[0, 2, 3]]).any()
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("call, exc, msg", [
    (lambda acc: acc.matmul(np.ones((2, 64)), np.ones((64, 2)), fmt_a="mxint8"),
     ValueError, r"fmt_a='mxint8', but the device was built for 'mxfp4_e2m1'"),
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
def test_matmul_errors(acc, call, exc, msg):
    with pytest.raises(exc, match=msg):
        call(acc)


def test_no_gemm_unit():
    acc = Accelerator.simulated(SoCConfig(rows=0))
    with pytest.raises(DeviceError, match=r"built without a GEMM unit"):
        acc.matmul(np.ones((2, 32)), np.ones((32, 2)))


@pytest.mark.slow
def test_matmul_compiled_backend_mixed_formats():
    cfg = SoCConfig(rows=2, cols=3, fmt_a="mxint8", fmt_b="mxfp8_e4m3", max_k=64,
                    acc_width=40, acc_frac=20)
    acc = Accelerator.simulated(cfg, backend="compiled")
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((5, 64)), rng.standard_normal((64, 7))
    np.testing.assert_array_equal(acc.matmul(a, b), expect(a, b, cfg))


CFG_TILES = SoCConfig(rows=2, cols=3, fmt_a="mxfp6_e3m2", fmt_b="mxint8", max_k=64,
                      a_tiles=4)


@pytest.fixture(scope="module")
def acc_tiles():
    return Accelerator.simulated(CFG_TILES, backend="compiled")


@settings(max_examples=10)
@given(M=st.integers(1, 19), N=st.integers(1, 8), kblocks=st.integers(1, 2), kind=values,
       seed=st.integers(0, 2**32 - 1))
def test_matmul_a_tiles(acc_tiles, M, N, kblocks, kind, seed):
    """A unit holding 4 A row blocks: M spans one to three groups of them, B strips are
    sent once per group; results equal golden."""
    rng = np.random.default_rng(seed)
    a = make(rng, (M, 32 * kblocks), kind)
    b = make(rng, (32 * kblocks, N), kind)
    np.testing.assert_array_equal(acc_tiles.matmul(a, b), expect(a, b, CFG_TILES))


@pytest.mark.parametrize("cfg", [
    # six FP6 codes: the sixth straddles the first two 32-bit lanes of a B word
    SoCConfig(rows=1, cols=6, fmt_b="mxfp6_e3m2", max_k=64),
    # rows not a power of two (result memories are rounded up), two A tiles
    SoCConfig(rows=3, cols=5, fmt_a="mxfp6_e2m3", fmt_b="mxfp6_e3m2", max_k=64, a_tiles=2),
], ids=["fp6-straddles-lanes", "rows3-a_tiles2"])
def test_matmul_odd_shapes_compiled(cfg):
    acc = Accelerator.simulated(cfg, backend="compiled")
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((7, 64)), rng.standard_normal((64, 11))
    np.testing.assert_array_equal(acc.matmul(a, b), expect(a, b, cfg))


def test_a_tiles_reported_and_selectable(acc_tiles):
    from mxhw.soc.gemm import GEMM_BASE, GEMM_REGS
    assert acc_tiles.gemm_config()["a_tiles"] == 4
    reg = GEMM_BASE + 4 * GEMM_REGS["A_TILE"]
    acc_tiles.write_words(reg, [3])
    assert acc_tiles.read_words(reg, 1) == [3]
    acc_tiles.write_words(reg, [5])            # two bits: 5 selects tile 1
    assert acc_tiles.read_words(reg, 1) == [1]


def test_soc_config_a_tiles_errors():
    with pytest.raises(ValueError, match="a_tiles must be a power of two, not 3"):
        SoCConfig(a_tiles=3)
    with pytest.raises(ValueError, match="a_tiles must be a positive integer, not 0"):
        SoCConfig(a_tiles=0)


@pytest.mark.parametrize("kwargs, msg", [
    (dict(a_tiles=6), r"a_tiles must be a power of two in \[1, 32768\], not 6"),
    (dict(a_tiles=0), r"a_tiles must be a power of two in \[1, 32768\], not 0"),
    (dict(fmt_a="mxsf"), r"fmt_a must be one of mxfp8_e4m3, .*, not 'mxsf'"),
    (dict(cols=33), r"cols must be an integer in \[1, 32\], not 33"),
    (dict(max_k=48), r"max_k must be a power of two and a multiple of 32, not 48"),
    (dict(max_k=16), r"max_k must be a power of two and a multiple of 32, not 16"),
    (dict(acc=golden.arith.FP32),
     r"^acc must be fixed-point accumulation \(golden.fixed\(...\)\) for the SoC's GEMM "
     r"units, not 'fp32': their ACC register and result words hold fixed-point results$"),
])
def test_gemm_unit_wrong_params(kwargs, msg):
    from mxhw.soc.gemm import GemmUnit
    args = dict(rows=2, cols=2, fmt_a="mxfp4_e2m1", fmt_b="mxfp4_e2m1", acc=CFG.acc,
                max_k=64)
    args.update(kwargs)
    with pytest.raises(ValueError, match=msg):
        GemmUnit(**args)


def test_gemm_unit_wrong_acc_type():
    from mxhw.soc.gemm import GemmUnit
    with pytest.raises(TypeError, match=r"^acc must be a golden.arith.Accumulation, not 32$"):
        GemmUnit(rows=2, cols=2, fmt_a="mxfp4_e2m1", fmt_b="mxfp4_e2m1", acc=32)


@pytest.mark.parametrize("unit", ["output_stationary", "weight_stationary"])
@settings(max_examples=5, deadline=None)
@given(ops=st.lists(st.tuples(st.sampled_from(["regs", "a", "c", "c_special"]),
                              st.integers(0, 9), st.booleans()), min_size=1, max_size=24))
def test_gemm_unit_read_data_is_zero_unless_read(unit, ops):
    """The units' bus contract that the SoC's read path relies on (it ORs the sources'
    read data): ``r_data`` is 0 in the cycle after a cycle without ``r_en``, whatever
    the address; after a read it holds the word (the GEOMETRY register; 0 past the
    registers and in the write-only regions; the results, all 0 after reset)."""
    from amaranth.hdl import Module
    from amaranth.sim import Simulator
    from mxhw.soc.gemm import GEMM_REGS, REGION, REGION_SHIFT, GemmUnit
    from mxhw.soc.gemm_ws import WS_REGS, GemmWSUnit
    fmts = dict(fmt_a="mxfp4_e2m1", fmt_b="mxfp4_e2m1", acc=CFG.acc, max_k=32)
    if unit == "output_stationary":
        u, regs = GemmUnit(rows=2, cols=2, **fmts), GEMM_REGS
    else:
        u, regs = GemmWSUnit(rows=2, cols=2, depth=2, **fmts), WS_REGS
    m = Module()
    m.submodules.u = u

    def expected(region, index, read):
        if not read or region != "regs" or index > max(regs.values()):
            return 0        # results read 0 after reset; the operand regions are write-only
        return {regs["GEOMETRY"]: u.geometry(), regs["ACC"]: u.acc_word()}.get(index)

    async def tb(ctx):
        for region, index, read in ops:
            ctx.set(u.bus.addr, REGION[region] << REGION_SHIFT | index)
            ctx.set(u.bus.r_en, read)
            await ctx.tick()        # the read's data: registered at this edge
            want = expected(region, index, read)
            if want is not None:    # None: a register not checked here
                assert ctx.get(u.bus.r_data) == want, (region, index, read)

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
