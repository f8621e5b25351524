"""The SoC's BitMoD GEMV unit (mxhw.soc.gemv) against its golden twin
(mxhw.golden.gemv_unit), the twin against an independent exact computation, and the
checks of parameters and sizes."""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, strategies as st

from mxhw import golden
from mxhw.golden import bitserial as bs
from mxhw.golden.mxint import mxint
from mxhw.golden.gemv_unit import (BLOCK, FAMILIES, activation_ints, exact_align_width,
                                   gemv_fixed)
from mxhw.soc.driver import Accelerator, DeviceError
from mxhw.soc.gemv import GemvUnit, gemv_unit_for, parse_families
from mxhw.soc.gemv_host import (GemvWeights, gemv_config, gemv_run, gemv_upload_activations,
                                gemv_upload_weights)
from mxhw.soc.gemv_map import GEMV_REGION, GEMV_REGISTERS, GEMV_REGS
from mxhw.soc.regmap import REGION
from mxhw.soc.top import SoCConfig
from support.gemv import GemvSoCConfig, bitmod_weights, mx_vector
from support.hyp import budget

ACTS = ["mxint8", "mxfp8_e4m3"]
ACC = golden.fixed(32, 16)


def _align(fmt):
    f = golden.formats.get(fmt)
    return exact_align_width(fmt) if f.element.kind == "fp" else None


@st.composite
def gemv_case(draw, act, max_rows=10, max_blocks=4, nan=False, exp=(-12, 4)):
    """``(q, x)``: BitMoD/INT weights of a drawn family and shape, groups of 32 or 64, and
    an MX vector of ``act``, all drawn as codes."""
    family = draw(st.sampled_from(FAMILIES))
    rows = draw(st.integers(1, max_rows))
    group = draw(st.sampled_from([BLOCK, 2 * BLOCK]))
    cols = group * draw(st.integers(1, max(1, max_blocks * BLOCK // group)))
    q = draw(bitmod_weights(family, rows, cols, group, exp=exp))
    x = draw(mx_vector(act, cols, nan=nan))
    return q, x


def _block_values(q, x):
    """Independent of the twin: each block's share of ``W_deq @ x_deq`` as Fractions (from
    golden's dequantised values: exact float64)."""
    wd, xd = q.dequantize(), x.dequantize()
    R, K = wd.shape
    return [[sum((Fraction(float(wd[r, k])) * Fraction(float(xd[k]))
                  for k in range(b, b + BLOCK)), Fraction(0))
             for b in range(0, K, BLOCK)] for r in range(R)]


# ---- the golden twin ------------------------------------------------------------------------

@pytest.mark.parametrize("act", ACTS)
@budget(30)
@given(data=st.data())
def test_twin_is_the_per_block_floor_of_the_dequantised_product(act, data):
    """gemv_fixed = per block: floor(share * 2**frac), added with saturation (the GEMM
    unit's fixed-point rule), where the shares come from W_deq and x_deq."""
    q, x = data.draw(gemv_case(act))
    width, frac = data.draw(st.sampled_from([(32, 16), (16, 4), (24, 0), (48, 30)]))
    acc = golden.fixed(width, frac)
    _, raw = gemv_fixed(q, x, acc, _align(act), return_raw=True)
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    for r, shares in enumerate(_block_values(q, x)):
        reg = 0
        for s in shares:
            reg = min(max(reg + (s * 2 ** frac).__floor__(), lo), hi)
        assert raw[r] == reg, (r, raw[r], reg)


@pytest.mark.parametrize("act", ACTS)
@budget(30)
@given(data=st.data())
def test_twin_equals_the_dequantised_product_on_a_fine_grid(act, data):
    """With a grid fine enough for every block's share and a register too wide to
    saturate, the result is exactly W_deq @ x_deq."""
    q, x = data.draw(gemv_case(act))
    frac = 80
    val, raw = gemv_fixed(q, x, golden.fixed(200, frac), _align(act), return_raw=True)
    for r, shares in enumerate(_block_values(q, x)):
        assert Fraction(int(raw[r]), 2 ** frac) == sum(shares)
    ref = q.dequantize() @ x.dequantize()
    np.testing.assert_allclose(val, ref, rtol=1e-12, atol=1e-300)


@budget(40)
@given(x=mx_vector("mxfp8_e4m3", 64))
def test_exact_align_width_loses_nothing(x):
    """At exact_align_width the aligned integers hold MXFP8 E4M3 blocks exactly."""
    ints, exps, nan = activation_ints(x, exact_align_width("mxfp8_e4m3"))
    assert not nan.any()
    back = np.ldexp(ints.astype(np.float64), np.repeat(exps, BLOCK))
    assert np.array_equal(back, x.dequantize())


def test_twin_nan():
    """A NaN scale (E8M0 0xFF) or a NaN element makes every row NaN."""
    rng = np.random.default_rng(0)
    q = bs.quantize_int_scale(rng.standard_normal((3, 64)), "bitmod_fp4", group=32)
    x = golden.quantize(rng.standard_normal(64), "mxint8")
    assert not np.isnan(gemv_fixed(q, x, ACC)).any()
    x.scales[1] = 0xFF
    assert np.isnan(gemv_fixed(q, x, ACC)).all()
    xf = golden.quantize(rng.standard_normal(64), "mxfp8_e4m3")
    xf.elements[5] = 0x7F                              # E4M3 NaN
    assert np.isnan(gemv_fixed(q, xf, ACC, exact_align_width("mxfp8_e4m3"))).all()


@pytest.mark.parametrize("call, exc, match", [
    (lambda q, x: gemv_fixed(q, x, golden.FP32), ValueError, "acc must be golden.fixed"),
    (lambda q, x: gemv_fixed(q, x, golden.fixed(32, 16, rounding="rne")), ValueError,
     "saturating, floor"),
    (lambda q, x: gemv_fixed(q, x.dequantize(), ACC), TypeError, "x must be a golden.MXArray"),
    (lambda q, x: gemv_fixed(q, golden.quantize(np.ones(64), "mxfp4"), ACC, 1), ValueError,
     r"align_width must be in \[2, 62\]"),
    (lambda q, x: gemv_fixed(q, golden.quantize(np.ones(64), "mxfp4"), ACC), ValueError,
     "align_width is needed"),
    (lambda q, x: gemv_fixed(q, x, ACC, 12), ValueError, "align_width applies"),
    (lambda q, x: gemv_fixed(bs.quantize_int_scale(np.ones((2, 64)), "int8", 32), x, ACC),
     ValueError, "q.family must be one of"),
    (lambda q, x: gemv_fixed(bs.quantize_int_scale(np.ones((2, 64)), "int4", 16), x, ACC),
     ValueError, "q.group must be a multiple of 32"),
    (lambda q, x: gemv_fixed(q, golden.quantize(np.ones(32), "mxint8"), ACC), ValueError,
     "W has 64 columns, x has 32"),
    (lambda q, x: gemv_fixed(q, golden.quantize(np.ones(64), mxint(8, block=16)), ACC),
     ValueError, "x must be an MX format"),
])
def test_twin_bad_input(call, exc, match):
    rng = np.random.default_rng(1)
    q = bs.quantize_int_scale(rng.standard_normal((2, 64)), "int4", group=32)
    x = golden.quantize(rng.standard_normal(64), "mxint8")
    with pytest.raises(exc, match=match):
        call(q, x)


# ---- the unit on the simulated SoC ---------------------------------------------------------

_DEVICES = {}


def device(**kw):
    """One simulated SoC per configuration, kept for the module (building one takes a few
    seconds; each example writes everything it uses)."""
    key = tuple(sorted(kw.items()))
    if key not in _DEVICES:
        _DEVICES[key] = Accelerator.simulated(GemvSoCConfig(**kw))
    return _DEVICES[key]


@pytest.mark.parametrize("act", ACTS)
@budget(8)
@given(data=st.data())
def test_unit_equals_golden(act, data):
    """Random weights (family, per-group types, codes, scales, row exponents, shape) and
    activations (codes, scales, NaN): the device's result words equal the twin's."""
    acc = device(gemv_act=act)
    q, x = data.draw(gemv_case(act, nan=data.draw(st.booleans())))
    h = gemv_upload_weights(acc, q)
    y, raw = gemv_run(acc, h, x, raw=True)
    ref, rraw = gemv_fixed(q, x, ACC, _align(act), return_raw=True)
    assert np.array_equal(np.isnan(y), np.isnan(ref))
    if not np.isnan(ref).any():
        assert raw == [int(v) for v in rraw]
        assert np.array_equal(y, ref)


@pytest.mark.parametrize("family", ["bitmod_fp3", "bitmod_fp4"])
def test_unit_float_weights_saturation_and_reuse(family):
    """Float weights quantised by the host (BitMoD FP3 and FP4), two activation vectors on
    one upload, a handle uploaded again after another, and a result that saturates."""
    acc = device(gemv_act="mxint8")
    rng = np.random.default_rng(2)
    w = rng.standard_normal((7, 96))
    h = gemv_upload_weights(acc, w, family)
    big = gemv_upload_weights(acc, w * 2.0 ** 20, family)
    for x in (rng.standard_normal(96), rng.standard_normal(96) * 8):
        y, raw = gemv_run(acc, h, x, raw=True)
        ref, rraw = gemv_fixed(h.q, golden.quantize(x, "mxint8"), ACC, return_raw=True)
        assert raw == list(rraw) and np.array_equal(y, ref)
    y, raw = gemv_run(acc, big, np.full(96, 100.0), raw=True)
    _, rraw = gemv_fixed(big.q, golden.quantize(np.full(96, 100.0), "mxint8"), ACC,
                         return_raw=True)
    assert raw == list(rraw)
    assert {max(raw), min(raw)} & {(1 << 31) - 1, -(1 << 31)}        # it saturated


def test_unit_registers_describe_it():
    acc = device(gemv_act="mxfp8_e4m3")
    cfg = gemv_config(acc)
    assert cfg == {"pes": 4, "lanes": 4, "max_cols": 128, "max_rows": 16,
                   "align_width": exact_align_width("mxfp8_e4m3"), "act_fmt": "mxfp8_e4m3",
                   "families": FAMILIES, "scale_bits": 8, "acc_width": 32, "acc_frac": 16}


# ---- refusals -------------------------------------------------------------------------------

def test_host_refuses_what_is_not_built():
    acc = device(gemv_act="mxint8", gemv_families="bitmod_fp4")
    rng = np.random.default_rng(3)
    w = rng.standard_normal((4, 64))
    q0 = bs.quantize_int_scale(w, "bitmod_fp4", group=32)
    cases = [
        (lambda: gemv_upload_weights(acc, w, "int3"), "built for the weight families "
         "bitmod_fp4, not 'int3'"),
        (lambda: gemv_upload_weights(acc, w, "mxfp4"), "fmt must be one of"),
        (lambda: gemv_upload_weights(acc, np.ones((17, 64)), "bitmod_fp4"),
         "takes 1 .. 16 rows and 32 .. 128 columns"),
        (lambda: gemv_upload_weights(acc, np.ones((4, 256)), "bitmod_fp4"),
         "takes 1 .. 16 rows and 32 .. 128 columns"),
        (lambda: gemv_upload_weights(acc, np.ones((4, 48)), "bitmod_fp4"),
         "multiple of 32"),
        (lambda: gemv_upload_weights(acc, np.ones(64), "bitmod_fp4"), "non-empty 2-D"),
        (lambda: gemv_upload_weights(acc, w * 2.0 ** -200, "bitmod_fp4"),
         "row exponents"),
        (lambda: gemv_upload_weights(acc, bs.quantize_int_scale(w, "bitmod_fp4", 32, 9)),
         "scales need 9 bits"),
        (lambda: gemv_upload_weights(acc, bs.quantize_int_scale(w, "bitmod_fp4", 32), "int4"),
         "quantised as 'bitmod_fp4'"),
        (lambda: gemv_run(acc, w, np.ones(64)), "the handle gemv_upload_weights returned"),
        (lambda: gemv_upload_weights(acc, _with(q0, types=q0.types + 4)),
         r"type indices must lie in \[0, 3\]"),
        (lambda: gemv_upload_weights(acc, _with(q0, codes=q0.codes + 16)),
         r"codes must lie in \[0, 15\]"),
    ]
    h = gemv_upload_weights(acc, w, "bitmod_fp4")
    assert isinstance(h, GemvWeights)
    cases += [
        (lambda: gemv_run(acc, h, np.ones(32)), "x has 32 values, W has 64 columns"),
        (lambda: gemv_run(acc, h, np.ones(40)), "multiple of 32 up to 128"),
        (lambda: gemv_run(acc, h, np.ones(64), fmt="mxfp8_e4m3"), "built for 'mxint8'"),
        (lambda: gemv_run(acc, h, golden.quantize(np.ones(64), "mxfp8_e4m3")),
         "1-D MX vector of 'mxint8'"),
        (lambda: gemv_upload_activations(acc, np.ones((2, 32))), "x must be 1-D"),
    ]
    for call, match in cases:
        with pytest.raises((ValueError, TypeError), match=match):
            call()
    # nothing refused reached the device: the resident weights still compute
    x = rng.standard_normal(64)
    _, raw = gemv_run(acc, h, x, raw=True)
    assert raw == list(gemv_fixed(h.q, golden.quantize(x, "mxint8"), ACC, return_raw=True)[1])


def _with(q, **changes):
    import dataclasses
    return dataclasses.replace(q, **changes)


def test_host_refuses_a_soc_without_the_unit():
    acc = Accelerator.simulated(SoCConfig(rows=0))
    with pytest.raises(DeviceError, match="this SoC has no GEMV unit"):
        gemv_upload_weights(acc, np.ones((2, 32)), "int4")


@pytest.mark.parametrize("kw, exc, match", [
    (dict(pes=3), ValueError, "pes must be a power of two"),
    (dict(pes=64), ValueError, r"pes must be in \[1, 32\]"),
    (dict(lanes=64), ValueError, r"lanes must be in \[1, 32\]"),
    (dict(pes=8, max_rows=4), ValueError, r"max_rows must be in \[8, 4096\]"),
    (dict(max_cols=16), ValueError, r"max_cols must be in \[32, 4096\]"),
    (dict(max_cols=8192), ValueError, r"max_cols must be in \[32, 4096\]"),
    (dict(act_fmt="mxfp4"), ValueError, "act_fmt must be one of 'mxint8', 'mxfp8_e4m3'"),
    (dict(act_fmt=8), TypeError, "act_fmt must be a format name"),
    (dict(families=["fp5"]), ValueError, "families must be one of"),
    (dict(families=[]), ValueError, "families must name at least one"),
    (dict(families=3), TypeError, "families must be a sequence"),
    (dict(acc=golden.FP32), ValueError, "acc must be fixed-point"),
    (dict(acc=golden.fixed(32, 16, rounding="rne")), ValueError, "acc must saturate"),
    (dict(acc=golden.fixed(65, 16)), ValueError, r"acc width must be in \[2, 64\]"),
    (dict(scale_bits=9), ValueError, r"scale_bits must be in \[1, 8\]"),
])
def test_unit_bad_parameters(kw, exc, match):
    with pytest.raises(exc, match=match):
        GemvUnit(**kw)


def test_unit_for():
    assert gemv_unit_for(0) is None
    u = gemv_unit_for(2, 2, 8, 64, "mxint8", "int3, bitmod_fp3")
    assert (u.pes, u.lanes, u.max_rows, u.max_cols, u.families) == \
        (2, 2, 8, 64, ("bitmod_fp3", "int3"))
    assert parse_families("int4,bitmod_fp4") == ("bitmod_fp4", "int4")
    with pytest.raises(ValueError, match=r"gemv_pes must be in \[0, 32\]"):
        gemv_unit_for(-1)


def test_map_shares_the_gemm_regions():
    """The regions the unit helpers decode by the GEMM map's ids mean the same here; the
    register indices are unique per access."""
    for mine, theirs in (("regs", "regs"), ("y", "c"), ("y_special", "c_special")):
        assert GEMV_REGION[mine] == REGION[theirs]
    assert len(set(GEMV_REGION.values())) == len(GEMV_REGION)
    for access in ("R", "W"):
        idx = [r.index for r in GEMV_REGISTERS if access in r.access]
        assert len(idx) == len(set(idx))
    assert GEMV_REGS["START"] == GEMV_REGS["STATUS"]


def test_docs_register_table_is_the_map():
    """docs/gemv.md's register table is GEMV_REGISTERS."""
    import pathlib
    text = (pathlib.Path(__file__).parent.parent / "docs" / "gemv.md").read_text()
    section = text.split("## Registers")[1].split("\n## ")[0]
    rows = [[c.strip().replace("\\|", "|") for c in line.strip("|").split(" | ")]
            for line in section.splitlines() if line.startswith("| 0x")]
    assert rows == [[f"0x{r.index:X}", r.access, r.name, r.doc] for r in GEMV_REGISTERS]


@pytest.mark.compiled
@pytest.mark.slow
@pytest.mark.parametrize("act", ACTS)
def test_unit_64x256_compiled(act):
    """A 64 x 256 GEMV per weight family on the compiled back end equals the twin; the
    busy cycles are those of the engine's passes (docs/gemv.md)."""
    from mxhw.soc.gemv_map import GEMV_BASE
    acc = Accelerator.simulated(GemvSoCConfig(gemv_act=act, gemv_max_rows=64,
                                              gemv_max_cols=256), backend="compiled")
    rng = np.random.default_rng(4)
    w, x = rng.standard_normal((64, 256)), rng.standard_normal(256)
    busy = GEMV_BASE + 4 * GEMV_REGS["BUSY_CYCLES"]
    for family, prec in (("bitmod_fp4", 6), ("bitmod_fp3", 4), ("int4", 4), ("int3", 3)):
        h = gemv_upload_weights(acc, w, family)
        c0 = acc.read_words(busy, 1)[0]
        _, raw = gemv_run(acc, h, x, raw=True)
        cycles = acc.read_words(busy, 1)[0] - c0
        ref = gemv_fixed(h.q, golden.quantize(x, act), ACC, _align(act), return_raw=True)[1]
        assert raw == list(ref)
        assert cycles <= 16 * 64 * prec + 40, (family, cycles)
        print(f"{act} {family}: 64 x 256 GEMV in {cycles} cycles")


@pytest.mark.parametrize("kw", [
    dict(gemv_pes=1, gemv_lanes=32, gemv_max_rows=1, gemv_max_cols=32),
    dict(gemv_pes=2, gemv_lanes=1, gemv_max_rows=4, gemv_max_cols=64, gemv_act="mxfp8_e4m3",
         gemv_families="bitmod_fp3,int3"),
])
@budget(3)
@given(data=st.data())
def test_unit_edge_geometries(kw, data):
    """One row pass, one block, a whole block per beat; one lane per beat, two families,
    MXFP8: equal to the twin."""
    acc = device(**kw)
    cfg = gemv_config(acc)
    family = data.draw(st.sampled_from(cfg["families"]))
    rows = data.draw(st.integers(1, cfg["max_rows"]))
    cols = BLOCK * data.draw(st.integers(1, cfg["max_cols"] // BLOCK))
    q = data.draw(bitmod_weights(family, rows, cols))
    x = data.draw(mx_vector(cfg["act_fmt"], cols))
    _, raw = gemv_run(acc, gemv_upload_weights(acc, q), x, raw=True)
    assert raw == list(gemv_fixed(q, x, ACC, cfg["align_width"] or None, return_raw=True)[1])


def test_unit_ignores_writes_while_busy_and_empty_starts():
    """Operand and register writes while the unit is busy change nothing; a START with
    ROWS = 0 finishes at once."""
    from mxhw.soc.gemv_map import gemv_address
    acc = device(gemv_act="mxint8")
    rng = np.random.default_rng(5)
    q = bs.quantize_int_scale(rng.standard_normal((16, 128)), "bitmod_fp4", group=32)
    x = golden.quantize(rng.standard_normal(128), "mxint8")
    h = gemv_upload_weights(acc, q)
    gemv_run(acc, h, x)                       # uploads the weights and activations
    reg = lambda n: gemv_address("regs", GEMV_REGS[n])      # noqa: E731
    acc.write_words(reg("START"), [1])
    acc.write_words(gemv_address("w"), [0xFFFFFFFF] * 4)        # busy: ignored
    acc.write_words(gemv_address("x"), [0x7F7F7F7F] * 8)
    acc.write_words(reg("COLS"), [32])
    assert acc.read_words(reg("STATUS"), 1)[0] & 1                 # still busy
    for _ in range(200):
        if acc.read_words(reg("STATUS"), 1)[0] & 2:
            break
    words = acc.read_words(gemv_address("y"), 16)
    ref = gemv_fixed(q, x, ACC, return_raw=True)[1]
    assert [w - ((w >> 31) << 32) for w in words] == list(ref)
    assert acc.read_words(reg("COLS"), 1)[0] == 128
    acc.write_words(reg("ROWS"), [0])
    acc.write_words(reg("START"), [1])
    assert acc.read_words(reg("STATUS"), 1)[0] == 2                # done, not busy
    assert acc.read_words(gemv_address("y"), 16) == words          # nothing written


def test_gemm_and_gemv_units_side_by_side():
    """A SoC with both units: the GEMM unit's matmul and the GEMV unit's GEMVs (a token
    batch through gemv_matmul) both equal golden; neither disturbs the other."""
    from mxhw.soc.gemv_host import gemv_matmul
    acc = device(rows=2, cols=2, max_k=64, gemv_max_rows=8, gemv_max_cols=64)
    rng = np.random.default_rng(6)
    w = rng.standard_normal((5, 64))
    xs = rng.standard_normal((3, 64))
    h = gemv_upload_weights(acc, w, "int4")
    a, b = rng.standard_normal((3, 64)), rng.standard_normal((64, 2))
    c = acc.matmul(a, b)
    ys = gemv_matmul(acc, h, xs)
    assert np.array_equal(c, golden.gemm(golden.quantize(a, "mxfp4", axis=1),
                                         golden.quantize(b, "mxfp4", axis=0), ACC))
    ref = np.stack([gemv_fixed(h.q, golden.quantize(x, "mxint8"), ACC) for x in xs])
    assert np.array_equal(ys, ref)
    assert gemv_matmul(acc, h, np.zeros((0, 64))).shape == (0, 5)
    with pytest.raises(ValueError, match=r"xs must be 2-D \(tokens, cols\)"):
        gemv_matmul(acc, h, np.ones(64))


# ---- through the layer API (Accelerator.upload_weights / linear / download) ------------

@pytest.mark.parametrize("family", ["bitmod_fp4", "bitmod_fp3"])
@budget(4)
@given(data=st.data())
def test_linear_runs_bitmod_on_the_gemv_unit(family, data):
    """``upload_weights(W, fmt=family)`` puts (K, N) weights in the GEMV unit and
    ``linear`` runs them there: ``download`` equals the twin, token by token, on the
    golden quantisation of W^T (groups of 32 along K) and of each token (MXINT8)."""
    M = data.draw(st.integers(1, 3), label="tokens")
    K = BLOCK * data.draw(st.integers(1, 2), label="K blocks")
    N = data.draw(st.integers(1, 6), label="N")
    # eighths in [-8, 8]: within the row exponents the unit holds (tinier weights are
    # refused by the host with a clear error, tested elsewhere)
    vals = st.integers(-64, 64).map(lambda v: v / 8)
    from hypothesis.extra.numpy import arrays
    W = data.draw(arrays(np.float64, (K, N), elements=vals), label="W")
    X = data.draw(arrays(np.float64, (M, K), elements=vals), label="X")
    acc = device()
    w = acc.upload_weights(W, fmt=family)
    Y = acc.download(acc.linear(X, w))
    q = bs.quantize_int_scale(W.T, family, group=BLOCK, scale_bits=w.payload.q.scale_bits)
    want = np.stack([gemv_fixed(q, golden.quantize(x, "mxint8"), ACC) for x in X])
    assert Y.shape == (M, N)
    np.testing.assert_array_equal(Y, want)


def test_linear_gemv_refusals():
    acc = device()
    w = acc.upload_weights(np.ones((32, 2)), fmt="bitmod_fp4")
    with pytest.raises(ValueError, match="out_fmt=None only"):
        acc.linear(np.ones((1, 32)), w, out_fmt="mxfp8_e4m3")
    with pytest.raises(ValueError, match=r"\(M, 32\)"):
        acc.linear(np.ones((1, 64)), w)
    with pytest.raises(ValueError, match="weights are write-only"):
        acc.download(w)


def _readme_gemv_snippets():
    import re
    from pathlib import Path
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    return [b for b in re.findall(r"```python\n(.*?)```", text, re.S)
            if "bitmod_fp4" in b and "Accelerator.simulated" in b
            and "acc.program()" not in b]     # the linked unit's example: test_soc_gemv_program


@pytest.mark.parametrize("snippet", _readme_gemv_snippets())
def test_readme_bitmod_example_runs(snippet):
    """The README's BitMoD example runs as written (its own assert checks golden)."""
    exec(compile(snippet, "<README>", "exec"), {})
