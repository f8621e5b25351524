"""MXSF (MX-SAFE, two element modes per block) as an operand of the systolic arrays, against
golden.arith.gemm bit for bit: output-stationary (fixed and FP32 accumulation, bit-parallel
and bit-serial PEs), weight-stationary, the GemmEngine; the moded element decode; errors.

Golden's MXSF MXArray holds one mode per block (``modes``: 0 = W, E2M5; 1 = S, fp6_e3m2 in
the low 6 bits); a mode S code with a top bit set is reserved and decodes to NaN, which
makes its block (and the result) NaN. Operands come from golden's quantiser on data built
to land in either mode, or are built directly from random modes and codes (reserved codes
included)."""

import math

import numpy as np
import pytest
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator
from hypothesis import HealthCheck, given, strategies as st

from support.hyp import budget
from mxhw import golden
from mxhw.formats import Unpacked, fixed_point, fixed_shape, layout_of, operand_element, unpack
from mxhw.golden.arith import FP32, fixed, gemm
from mxhw.golden.quantize import MXArray, quantize
from mxhw.pe.multiplier import ElementMultiplier, product_width
from mxhw.systolic import BitSerialMXMacPE, MXMacPE, SystolicArray
from mxhw.systolic.bitserial import serial_bits
from mxhw.systolic.driver import array_beats, ws_beats, ws_engine_beats
from mxhw.systolic import array_block_format
from mxhw.systolic.grid import PE_PIPELINE_MAX

from support.soc import check_engine, run_engine
from support.systolic import (MXSF, Harness, acc_strategy, check_fp32, check_gemm, check_pe_tiles,
                              check_ws, mx_operands, mxsf_operand, random_operand, run_pe,
                              waits)

#: the other operand's formats in the mixed tests
OTHERS = ["mxfp4", "mxint8", "mxfp8_e4m3"]
#: operand format pairs with MXSF on A, on B, on both
PAIRS = ([("mxsf", f) for f in OTHERS] + [(f, "mxsf") for f in OTHERS]
         + [("mxsf", "mxsf")])


# ---- golden facts the hardware relies on ------------------------------------------------

def test_golden_mxsf_representation():
    """Golden's MXSF MXArray: one mode per block (0 = W, 1 = S); a reserved mode S code is
    NaN and makes the GEMM result NaN; the data generator reaches both modes."""
    rng = np.random.default_rng(1)
    a = mxsf_operand(rng, (8, 256), 1)
    assert a.modes.shape == a.scales.shape and set(np.unique(a.modes)) == {0, 1}
    w, s = MXSF.candidates
    assert not np.isnan(w.table).any()
    assert np.isnan(s.table[64:]).all() and not np.isnan(s.table[:64]).any()
    el = a.elements.copy()
    blk = np.argwhere(a.modes == 1)[0]
    el[blk[0], 32 * blk[1]] = 0x40                          # reserved in mode S
    bad = MXArray(MXSF, a.shape, 1, el, a.scales, a.modes)
    b = quantize(np.ones((256, 1)), "mxfp4", axis=0)
    v = gemm(bad, b, fixed(32, 8))
    assert np.isnan(v[blk[0], 0]) and np.isnan(v).sum() == 1


# ---- the moded element: decode, fixed point, products -----------------------------------

def _decode(fmt):
    """``unpack`` and ``fixed_point`` of ``fmt`` on ports."""
    def build(m, d):
        m.d.comb += [d.u.eq(unpack(m, fmt, d.code)), d.x.eq(fixed_point(m, fmt, d.code))]
    return Harness({"code": In(layout_of(fmt)), "u": Out(Unpacked(fmt)),
                    "x": Out(fixed_shape(fmt))}, build)


def test_operand_element_decode_every_code():
    """Every (mode, code) of MXSF: the unpacked value is golden's candidate value, the
    fixed-point integer golden's ``element_ints`` (same grid), NaN exactly the reserved
    codes; zero has the smallest exponent."""
    e = operand_element(MXSF)
    assert e.bits == 9 and e.lsb_exp == min(c.lsb_exp for c in MXSF.candidates)
    # golden: one row of 16 blocks, the first 8 in mode W (codes 0..255), then mode S
    codes = np.tile(np.arange(256), 2)[None]
    modes = np.repeat([0, 1], 8)[None]
    mx = MXArray(MXSF, (1, 512), 1, codes, np.full((1, 16), 127), modes)
    ints, lsb, bad = golden.arith.element_ints(mx)
    assert lsb == e.lsb_exp
    vals = mx.element_values()[0]
    dut = _decode(e)
    lay = Unpacked(e)
    got = []

    async def tb(ctx):
        for c in range(512):
            ctx.set(dut.code.as_value(), c)
            await ctx.delay(1e-9)
            u = ctx.get(dut.u)
            got.append(({f: getattr(u, f) for f in ("sign", "significand", "exponent",
                                                    "is_zero", "is_nan")}, ctx.get(dut.x)))

    sim = Simulator(dut)
    sim.add_testbench(tb)
    sim.run()
    for c, (u, x) in enumerate(got):           # code c = mode << 8 | element code
        want = vals[c]
        assert u["is_nan"] == bad[0, c] == math.isnan(want), c
        if not bad[0, c]:
            assert lay.value(u) == want and np.signbit(lay.value(u)) == np.signbit(want), c
            assert x == ints[0, c], c
            assert u["is_zero"] == (want == 0), c
            if want == 0:
                assert u["exponent"] == lay.exp_range[0], c
    assert product_width(e, e) == 21 and fixed_shape(e).width == 11   # +-896 on 2**-5


@budget(6, suppress_health_check=list(HealthCheck))
@given(data=st.data(), fb=st.sampled_from(["mxsf", "mxfp4", "mxint8", "mxfp8_e5m2"]))
def test_multiplier_products(data, fb):
    """ElementMultiplier on the moded element: drawn (mode, code) pairs (reserved codes
    included) against the exact products of golden's ``element_ints`` (NaN/Inf:
    ``nonfinite``)."""
    ea, eb = operand_element(MXSF), operand_element(array_block_format(fb))
    a, b = data.draw(mx_operands("mxsf", fb, 1, 1, 8, reserved=True, inf=True))
    ia, la, bada = golden.arith.element_ints(a)
    ib, lb, badb = golden.arith.element_ints(b)
    dut = ElementMultiplier(ea, eb)
    assert dut.lsb_exp == la + lb
    got = []

    async def tb(ctx):
        for n in range(256):
            ctx.set(dut.a.as_value(), int(a.elements[0, n]) | int(a.modes[0, n // 32]) << 8)
            code_b = int(b.elements[n, 0])
            if b.modes is not None:
                code_b |= int(b.modes[n // 32, 0]) << 8
            ctx.set(dut.b.as_value(), code_b)
            await ctx.delay(1e-9)
            got.append((ctx.get(dut.p), ctx.get(dut.nonfinite)))

    sim = Simulator(dut)
    sim.add_testbench(tb)
    sim.run()
    for n, (p, nf) in enumerate(got):
        bad = bada[0, n] or badb[n, 0]
        assert nf == bad, n
        if not bad:
            assert p == int(ia[0, n]) * int(ib[n, 0]), n


# ---- output-stationary ------------------------------------------------------------------

@budget(12, suppress_health_check=list(HealthCheck))
@given(data=st.data(), pair=st.sampled_from(PAIRS), rows=st.integers(1, 4),
       cols=st.integers(1, 4), M=st.integers(1, 6), N=st.integers(1, 6),
       nblk=st.integers(1, 2), acc=acc_strategy(), nan=st.booleans(), zero=st.booleans(),
       reserved=st.booleans(), gaps=st.tuples(waits(), waits()),
       pipeline=st.integers(0, PE_PIPELINE_MAX))
def test_os_matches_golden(data, pair, rows, cols, M, N, nblk, acc, nan, zero, reserved, gaps,
                           pipeline):
    """MXSF on A, on B, on both (drawn modes and codes, reserved codes, NaN scales, zero
    blocks), shapes, fixed accumulation, gaps and stalls: equal to golden."""
    a, b = data.draw(mx_operands(*pair, M, N, nblk, nan=nan, zero=zero, reserved=reserved))
    check_gemm(a, b, rows, cols, acc, gaps, 0.5, 0.5, pipeline=pipeline)


@budget(8, suppress_health_check=list(HealthCheck))
@given(data=st.data(), pair=st.sampled_from(PAIRS), rows=st.integers(1, 2),
       cols=st.integers(1, 2), M=st.integers(1, 3), N=st.integers(1, 3),
       nblk=st.integers(1, 3), spread=st.sampled_from([4, 40, 130]),
       pipeline=st.integers(0, PE_PIPELINE_MAX), nan=st.booleans(), reserved=st.booleans(),
       zero=st.booleans(), gaps=st.tuples(waits(), waits()))
def test_os_fp32_matches_golden(data, pair, rows, cols, M, N, nblk, spread, pipeline, nan,
                                reserved, zero, gaps):
    """FP32 accumulation with MXSF operands, magnitudes up to beyond float32's range."""
    a, b = data.draw(mx_operands(*pair, M, N, nblk, nan=nan, zero=zero, reserved=reserved,
                                 spread=spread))
    check_fp32(a, b, rows, cols, pipeline, gaps, 0.5)


@budget(10, suppress_health_check=list(HealthCheck))
@given(data=st.data(), fa=st.sampled_from(["mxsf", "mxfp4", "mxfp8_e4m3"]),
       nblks=st.lists(st.integers(1, 3), min_size=1, max_size=3), acc=acc_strategy(),
       pipeline=st.integers(0, PE_PIPELINE_MAX), gaps=waits(200),
       fb=st.sampled_from(["mxsf", "mxint8"]))
def test_pe_matches_golden(data, fa, fb, nblks, acc, pipeline, gaps):
    """One MXMacPE (MXSF on at least one side), tiles back to back, its mode ports driven
    per element."""
    if "mxsf" not in (fa, fb):
        fa = "mxsf"
    a, b = data.draw(mx_operands(fa, fb, 1, 1, sum(nblks), nan=True, reserved=True,
                                 b_kw={"nan": False}))
    check_pe_tiles(a, b, nblks, acc, run_pe(a, b, nblks, acc, pipeline, gaps))


# ---- bit-serial PEs ------------------------------------------------------------------------

@budget(8, suppress_health_check=list(HealthCheck))
@given(data=st.data(),
       pair=st.sampled_from([("mxsf", "mxfp4"), ("mxsf", "mxint8"), ("mxfp4", "mxsf"),
                             ("mxint8", "mxsf"), ("mxsf", "mxsf")]),
       rows=st.integers(1, 3), cols=st.integers(1, 3), M=st.integers(1, 4),
       N=st.integers(1, 4), nblk=st.integers(1, 2), acc=acc_strategy(), nan=st.booleans(),
       reserved=st.booleans(), gaps=st.tuples(waits(), waits()),
       pipeline=st.integers(0, PE_PIPELINE_MAX))
def test_bitserial_matches_golden(data, pair, rows, cols, M, N, nblk, acc, nan, reserved,
                                  gaps, pipeline):
    """Bit-serial PEs: MXSF activations decoded by mode in the PE; MXSF weights turned
    into their exact 11-bit fixed-point integers by mode at the edge and shifted out."""
    a, b = data.draw(mx_operands(*pair, M, N, nblk, nan=nan, reserved=reserved))
    check_gemm(a, b, rows, cols, acc, gaps, 0.5, pe="bitserial", pipeline=pipeline)


def test_bitserial_mxsf_weight_bits():
    """MXSF weights: the serial width is that of golden's exact integers over both modes
    (+-896 at 2**-5: 11 bits), so a K step takes 11 cycles."""
    e = operand_element(MXSF)
    ints = e.int_table[~e.nonfinite_mask].astype(int)
    assert (ints.min(), ints.max()) == (-896, 896)
    assert serial_bits(e) == 11
    dut = SystolicArray(2, 2, "mxfp4", "mxsf", acc=fixed(32, 16), pe="bitserial")
    assert dut.step_cycles == 11 and "b_mode" in dut.in_layout.members
    assert BitSerialMXMacPE(MXSF, array_block_format("mxfp4"), fixed(32, 16)).serial_bits == 5


# ---- weight-stationary --------------------------------------------------------------------

@budget(12, suppress_health_check=list(HealthCheck))
@given(data=st.data(), pair=st.sampled_from(PAIRS), rows=st.integers(1, 4),
       cols=st.integers(1, 4), depth=st.integers(1, 5), M=st.integers(1, 6),
       N=st.integers(1, 6), nblk=st.integers(1, 2), acc=acc_strategy(),
       pipeline=st.integers(0, PE_PIPELINE_MAX), nan=st.booleans(), zero=st.booleans(),
       reserved=st.booleans(), gaps=st.tuples(waits(), waits()))
def test_ws_matches_golden(data, pair, rows, cols, depth, M, N, nblk, acc, pipeline, nan,
                           zero, reserved, gaps):
    """Weight-stationary: the weights' modes held beside the codes in the PEs, the
    activations' mode with each row."""
    a, b = data.draw(mx_operands(*pair, M, N, nblk, nan=nan, zero=zero, reserved=reserved))
    check_ws(a, b, rows, cols, acc, gaps, 0.5, 0.5, pipeline=pipeline, depth=depth)


@budget(6, suppress_health_check=list(HealthCheck))
@given(data=st.data(), pair=st.sampled_from(PAIRS), rows=st.integers(1, 3),
       cols=st.integers(1, 3), depth=st.integers(1, 4), M=st.integers(1, 4),
       N=st.integers(1, 4), nblk=st.integers(1, 2), spread=st.sampled_from([4, 40, 130]),
       pipeline=st.integers(0, PE_PIPELINE_MAX), nan=st.booleans(), reserved=st.booleans(),
       gaps=st.tuples(waits(), waits()))
def test_ws_fp32_matches_golden(data, pair, rows, cols, depth, M, N, nblk, spread, pipeline,
                                nan, reserved, gaps):
    """Weight-stationary FP32 accumulation with MXSF operands (reserved codes are NaN
    products in the column stages' IEEE flags)."""
    a, b = data.draw(mx_operands(*pair, M, N, nblk, nan=nan, reserved=reserved,
                                 spread=spread))
    check_ws(a, b, rows, cols, FP32, gaps, 0.5, pipeline=pipeline, depth=depth)


# ---- edge cases -----------------------------------------------------------------------------

def _edge_operands():
    """MXSF operands with zero blocks, NaN scales, reserved codes, blocks in both modes,
    and one block of saturating extremes (+-28 in mode S, +-7.875 in mode W, at the
    largest scales); row 3 of A stays ordinary."""
    rng = np.random.default_rng(30)
    a = mxsf_operand(rng, (4, 96), 1, raw_p=0.5)
    b = mxsf_operand(rng, (96, 2), 0)
    el, sc, mo = a.elements.copy(), a.scales.copy(), a.modes.copy()
    el[0, :32], mo[0, 0] = 0, 1                         # an all-zero block in mode S
    sc[1, 1] = MXSF.scale.nan_code                      # a NaN scale
    el[2, 40], mo[2, 1] = 0xC5, 1                       # a reserved code in mode S
    el[0, 64:], sc[0, 2], mo[0, 2] = np.where(np.arange(32) % 3, 0x1F, 0x3F), 254, 1
    el[1, 64:], sc[1, 2], mo[1, 2] = np.where(np.arange(32) % 3, 0x7F, 0xFF), 254, 0
    a = MXArray(MXSF, a.shape, 1, el, sc, mo)
    bel, bsc, bmo = b.elements.copy(), b.scales.copy(), b.modes.copy()
    bel[64:, 0], bsc[2, 0], bmo[2, 0] = 0x1F, 254, 1                # +28 at 2**127
    bel[64:, 1], bsc[2, 1], bmo[2, 1] = 0xFF, 250, 0                # -7.875 at 2**123
    b = MXArray(MXSF, b.shape, 0, bel, bsc, bmo)
    return a, b


@pytest.mark.slow
def test_edge_cases_all_dataflows():
    a, b = _edge_operands()
    for acc in (fixed(24, 4, "saturate", "rne"), fixed(20, -2, "wrap", "floor")):
        val, raw = gemm(a, b, acc, return_raw=True)
        assert np.isnan(val[1]).all() and np.isnan(val[2]).all()     # NaN scale, reserved
        assert not np.isnan(val[[0, 3]]).any()
        if acc.overflow == "saturate":
            assert set(int(x) for x in raw[0]) <= {-(1 << 23), (1 << 23) - 1}
        check_gemm(a, b, 4, 2, acc, p_stall=0.3)
        check_gemm(a, b, 2, 2, acc, pe="bitserial", pipeline=1)
        check_ws(a, b, 4, 2, acc, depth=3, p_idle=0.2)
    v = gemm(a, b, FP32)
    assert np.isinf(v[0]).all()                                     # float32 overflow
    check_fp32(a, b, 4, 2, 2)
    check_ws(a, b, 4, 2, FP32, depth=3)


def test_k_of_one_block_and_all_zero():
    """K = 32 (one block), the first operand all zero codes in mode S; a 1x1 array."""
    rng = np.random.default_rng(31)
    a = mxsf_operand(rng, (2, 32), 1)
    a = MXArray(MXSF, a.shape, 1, np.zeros_like(a.elements), a.scales, np.ones_like(a.modes))
    b = mxsf_operand(rng, (32, 3), 0, raw_p=1.0)
    acc = fixed(32, 16, "saturate", "rne")
    assert (gemm(a, b, acc) == 0).all()
    for rows, cols in ((1, 1), (2, 3)):
        check_gemm(a, b, rows, cols, acc)
        check_ws(a, b, rows, cols, acc)
    c = mxsf_operand(rng, (2, 32), 1, raw_p=1.0)
    check_gemm(c, b, 1, 1, acc)
    check_ws(c, b, 1, 1, acc)
    check_fp32(c, b, 1, 1, 0)


# ---- the engine and the layouts -----------------------------------------------------------

@pytest.mark.parametrize("dataflow", ["output_stationary", "weight_stationary"])
def test_engine(dataflow):
    """GemmEngine passes the mode fields through its FIFO to the array."""
    rng = np.random.default_rng(32)
    a = mxsf_operand(rng, (3, 64), 1, raw_p=0.3, reserved_p=0.01)
    b = random_operand(rng, "mxfp8_e4m3", (64, 3), 0)
    acc = fixed(32, 12)
    kw = {"depth": 2} if dataflow == "weight_stationary" else {}
    got, _ = run_engine(a, b, 2, 2, acc, p_idle=0.2, p_stall=0.2, dataflow=dataflow, **kw)
    check_engine(a, b, got, acc)
    c = mxsf_operand(rng, (64, 3), 0, raw_p=0.3)
    got, _ = run_engine(a, c, 2, 2, acc, dataflow=dataflow, **kw)
    check_engine(a, c, got, acc)


def test_layouts():
    """Mode fields exist only for MXSF operands, beside the scales; other formats'
    layouts are unchanged."""
    acc = fixed(32, 16)
    os_ = SystolicArray(2, 3, "mxsf", "mxfp4", acc=acc)
    assert list(os_.in_layout.members) == ["a", "a_scale", "a_mode", "b", "b_scale", "last"]
    assert os_.in_layout.members["a_mode"].length == 2
    os_ = SystolicArray(2, 3, "mxint8", "mxsf", acc=acc)
    assert list(os_.in_layout.members) == ["a", "a_scale", "b", "b_scale", "b_mode", "last"]
    assert os_.in_layout.members["b_mode"].length == 3
    ws = SystolicArray(2, 3, "mxsf", "mxsf", acc=acc, dataflow="weight_stationary")
    assert list(ws.in_layout.members)[:6] == ["a", "a_scale", "a_mode", "w", "w_scale",
                                              "w_mode"]
    assert ws.in_layout.members["a_mode"].width == 1
    assert ws.in_layout.members["w_mode"].length == 3
    ws = SystolicArray(2, 3, "mxfp4", "mxint8", acc=acc, dataflow="weight_stationary")
    assert "a_mode" not in ws.in_layout.members and "w_mode" not in ws.in_layout.members
    pe = MXMacPE(MXSF, array_block_format("mxfp4"), acc)
    assert "a_mode" in pe.signature.members and "b_mode" not in pe.signature.members
    # the drivers fill the modes from golden's MXArray
    rng = np.random.default_rng(33)
    a = mxsf_operand(rng, (2, 64), 1)
    b = mxsf_operand(rng, (64, 3), 0)
    beats = array_beats(a, b, 3, 4, 0, 0)
    assert [bt["a_mode"] for bt in beats[::32]] == [[*a.modes[:, j], 0] for j in range(2)]
    assert [bt["b_mode"] for bt in beats[::32]] == [[*b.modes[j], 0] for j in range(2)]
    wb = ws_beats(a, b, 2, 3, 2)
    assert all("a_mode" in bt and "w_mode" in bt for bt in wb)
    eb = ws_engine_beats(a, b, 2, 3, 2)
    assert all(set(bt) == {"a", "a_scale", "a_mode", "w", "w_scale", "w_mode"} for bt in eb)


# ---- errors -----------------------------------------------------------------------------------

@pytest.mark.parametrize("kw", [
    {}, {"dataflow": "weight_stationary"}, {"pe": "bitserial"}, {"acc": FP32},
])
@pytest.mark.parametrize("side", ["fmt_a", "fmt_b"])
def test_mxsf_tile_as_k_blocks(kw, side):
    """2-D MXSF tiles (issue 35) reach the PEs as 1-D K blocks of golden's K block (gcd of
    the tile's run along K and the partner's: on A its width 4, on B its height 8, against
    32), naming the mapped formats;
    the PE-level check still refuses a bare tile, naming the parameter."""
    args = dict(rows=2, cols=2, fmt_a="mxsf", fmt_b="mxsf", acc=fixed(32, 16))
    args.update(kw)
    args[side] = "mxsf_tile"
    dut = SystolicArray(**args)
    k = 4 if side == "fmt_a" else 8
    assert dut.k == k and getattr(dut, side).name == f"mxsf_tile_k{k}"
    with pytest.raises(ValueError) as e:
        array_block_format("mxsf_tile", side)
    assert str(e.value) == (f"{side}: mxsf_tile has 2-D blocks (8, 4); the PEs take 1-D "
                            f"blocks along K (array_formats maps tiles onto them)")


def test_other_moded_formats_rejected():
    """BitMoD (4 modes per group, FP16 group scales) is still rejected, for its scale."""
    with pytest.raises(ValueError) as e:
        SystolicArray(2, 2, "mxsf", "bitmod_fp4", acc=fixed(32, 16))
    assert str(e.value) == ("fmt_b: bitmod_fp4 has fp16 scales; the arrays take "
                            "power-of-two scales")


@pytest.mark.parametrize("cands, msg", [
    (("fp4_e2m1", "fp8_e4m3"), "fmt_a: two_modes's element modes differ in width (fp4_e2m1: 4, "
                               "fp8_e4m3: 8); the datapath takes modes of equal width"),
    (("fp8_e4m3", "fp8_e5m2"), "fmt_a: two_modes has an element mode with Inf codes; the "
                               "datapath takes moded formats without Inf"),
])
def test_moded_formats_that_do_not_fit(cands, msg):
    """Other formats with modes per block: the ones the moded datapath cannot take raise
    a clear error naming the parameter."""
    fmt = golden.formats.BlockFormat(
        name="two_modes", candidates=tuple(golden.formats.get(c) for c in cands),
        scale=golden.formats.get("e8m0"), block=32)
    with pytest.raises(ValueError) as e:
        SystolicArray(2, 2, fmt, "mxfp4", acc=fixed(32, 16))
    assert str(e.value) == msg
