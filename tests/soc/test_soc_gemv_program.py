"""GEMV layers in programs (issue #29 item 2, ``docs/isa.md`` GEMV): the BitMoD GEMV unit
linked to the GEMM unit's program sequencer, reading the activations the GEMM unit's A
memories hold and writing through the same output path (C tiles or the on-chip
re-quantiser). Expectations: ``golden.chain`` (GEMV layers: ``golden.gemv_unit``) and
``isa.check``."""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, strategies as st

from mxhw import golden
from mxhw.golden import bitserial as bs
from mxhw.golden.chain import gemv_rows, linear
from mxhw.soc import isa
from mxhw.soc.driver import Accelerator
from mxhw.soc.layers import ProgramError
from mxhw.soc.top import SoCConfig
from support.gemv import bitmod_weights
from support.hyp import budget
from support.soc import check_instruction_against_spec, mx_operands, run_chain, _finite

#: a 2 x 8 MXFP8 E4M3 GEMM unit with the activation path (memories for 4 layers), and a 4-PE, 8-lane GEMV unit
#: with MXFP8 E4M3 activations linked to its sequencer (4 blocks of 32 weight rows)
CFG = SoCConfig(rows=2, cols=8, fmt_a="mxfp8_e4m3", fmt_b="mxfp4", max_k=64, a_tiles=16,
                b_tiles=32, c_tiles=16, prog_words=16, out_fmt="mxfp8_e4m3",
                gemv_pes=4, gemv_lanes=8, gemv_max_rows=128, gemv_max_cols=64,
                gemv_act="mxfp8_e4m3", gemv_families="bitmod_fp4,bitmod_fp3")
FIXTURE = dict(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
FAMS = ("bitmod_fp4", "bitmod_fp3")


def _caps(cfg, linked=True):
    return {"rows": cfg.rows, "cols": cfg.cols, "max_k": cfg.max_k, "a_tiles": cfg.a_tiles,
            "b_tiles": cfg.b_tiles, "c_tiles": cfg.c_tiles, "out_fmt": 1 if cfg.out_fmt else 0,
            "gemv_blocks": cfg.gemv_max_rows // 32 if linked else 0,
            "gemv_max_k": cfg.gemv_max_cols}


# ---- the specification and the golden twin (fast) ----

def test_config_links_the_units_only_when_they_fit():
    assert CFG.gemv_linked
    assert not SoCConfig(**{**CFG.__dict__, "gemv_act": "mxint8"}).gemv_linked
    assert not SoCConfig(**{**CFG.__dict__, "gemv_max_rows": 16}).gemv_linked
    assert not SoCConfig(**{**CFG.__dict__, "prog_words": 0, "out_fmt": ""}).gemv_linked


@pytest.mark.parametrize("fields, linked, want", [
    (dict(op=2, k_blocks=1, m_tiles=1, n_tiles=1), False, "opcode"),
    (dict(op=2, k_blocks=1, m_tiles=1, n_tiles=1), True, "none"),
    (dict(op=2, k_blocks=3, m_tiles=1, n_tiles=1), True, "shape"),      # K above 64
    (dict(op=2, k_blocks=1, m_tiles=0, n_tiles=1), True, "shape"),
    (dict(op=2, k_blocks=1, m_tiles=1, n_tiles=3, out_fmt=1, dst=2), True, "shape"),  # N > max_k
    (dict(op=2, k_blocks=1, m_tiles=1, n_tiles=2, b=3), True, "region"),  # weight rows
    (dict(op=2, k_blocks=1, m_tiles=5, n_tiles=1), True, "region"),     # 5 x 4 C tiles > 16
    (dict(op=2, k_blocks=1, m_tiles=4, n_tiles=1), True, "none"),
    (dict(op=2, k_blocks=2, m_tiles=2, n_tiles=2, out_fmt=1, src=0, dst=1), True, "region"),
    (dict(op=2, k_blocks=2, m_tiles=2, n_tiles=2, out_fmt=3, src=0, dst=2), True, "format"),
])
def test_isa_check_gemv(fields, linked, want):
    assert isa.check(isa.Instr(**fields), _caps(CFG, linked)) == want


def _gemm(**kw):
    from mxhw.soc.gemm import GemmUnit
    args = dict(rows=2, cols=8, fmt_a="mxfp8_e4m3", fmt_b="mxfp4", acc=CFG.acc, max_k=64,
                prog_words=16, gemv=(4, 64, 64))
    return GemmUnit(**{**args, **kw})


@pytest.mark.parametrize("make, match", [
    (lambda: _gemm(prog_words=0), "needs a program sequencer"),
    (lambda: _gemm(fmt_a="mxfp4"), "8-bit fmt_a"),
    (lambda: _gemm(cols=3), "cols dividing 32"),
    (lambda: _gemm(gemv=(4, 16, 64)), "gemv max_rows"),
    (lambda: _gemm(gemv=(4, 64, 48)), "gemv max_cols"),
    (lambda: __import__("mxhw.soc.gemv", fromlist=["GemvUnit"]).GemvUnit(
        max_rows=16, linked=True), "max_rows >= 32"),
    (lambda: __import__("mxhw.soc.gemv_link", fromlist=["GemvLink"]).GemvLink(
        2, 3, 64, 8, 32, 8, 4, 32), "cols"),
    (lambda: __import__("mxhw.soc.program", fromlist=["ProgramSequencer"]).ProgramSequencer(
        2, 8, 64, 8, 16, 16, 8, 1, gemv_blocks=300, gemv_max_k=64), "gemv_blocks"),
])
def test_bad_link_parameters(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@budget(20)
@given(data=st.data())
def test_gemv_layer_twin_is_the_dequantised_product(data):
    """``golden.chain.linear`` of a GEMV layer on a grid fine enough to hold every block's
    share exactly (no floor, no saturation): equal to ``x_deq @ W_deq^T`` computed with
    Fractions from golden's dequantised values; then re-quantised as golden.quantize."""
    fam = data.draw(st.sampled_from(FAMS))
    M, K, N = data.draw(st.integers(1, 3)), 32 * data.draw(st.integers(1, 2)), 32
    q = data.draw(bitmod_weights(fam, N, K, exp=(-3, 3)))
    x = _finite(data.draw(mx_operands("mxfp8_e4m3", (M, K), 1, nan=False)))
    acc = golden.fixed(53, 40)
    xs, wd = x.dequantize(), q.dequantize()
    want = np.array([[float(sum(Fraction(float(xs[m, k])) * Fraction(float(wd[n, k]))
                                for k in range(K))) for n in range(N)] for m in range(M)])
    lim = 2.0 ** (53 - 1 - 40)
    if np.all(np.abs(want) < lim / 4):
        got = linear(x, q, acc)
        assert np.array_equal(got, want)
        again = linear(x, q, acc, out_fmt="mxfp8_e4m3")
        ref = golden.quantize(want, "mxfp8_e4m3", axis=1)
        assert np.array_equal(again.elements, ref.elements)
        assert np.array_equal(again.scales, ref.scales)


def test_gemv_rows_refuses_bad_input():
    q = bs.quantize_int_scale(np.ones((32, 64)), "bitmod_fp4", group=32)
    x = golden.quantize(np.ones((2, 32)), "mxfp8_e4m3", axis=1)
    with pytest.raises(ValueError, match="inner dimensions"):
        gemv_rows(x, q, golden.fixed(32, 16))
    with pytest.raises(ValueError, match="acc must be"):
        linear(x, q, golden.arith.FP32)


# ---- on the simulated SoC (pysim) ----

@pytest.fixture(scope="module")
def acc():
    with Accelerator.simulated(CFG) as a:
        yield a


@st.composite
def mixed_chain(draw, cfg, max_layers=4):
    """``(x, [(w, out_fmt), ...])``: 1..``max_layers`` layers, each a GEMM (MXFP4
    weights, any width up to max_k) or a GEMV (BitMoD FP4/FP3 weights drawn as codes,
    32 or 64 outputs), every layer but the last re-quantised on chip."""
    n = draw(st.integers(1, max_layers))
    M = draw(st.integers(1, 2 * cfg.rows))
    K = draw(st.sampled_from([32, 64]))
    x = _finite(draw(mx_operands(cfg.fmt_a, (M, K), 1, nan=False)))
    layers, used = [], 0
    for i in range(n):
        last = i == n - 1
        out = None if last and draw(st.booleans()) else cfg.out_fmt
        N = draw(st.sampled_from([32, 64]))
        gemv = used + N // 32 <= cfg.gemv_max_rows // 32 and draw(st.booleans())
        if gemv:
            used += N // 32
            w = draw(bitmod_weights(draw(st.sampled_from(FAMS)), N, K, exp=(-10, -2)))
        else:
            w = _finite(draw(mx_operands(cfg.fmt_b, (K, N), 0, nan=False)))
        layers.append((w, out))
        K = N
    return x, layers


@pytest.mark.slow
@budget(3, **FIXTURE)
@given(data=st.data())
def test_random_mixed_programs_equal_golden(acc, data):
    """Random programs of 1-4 layers mixing GEMM and GEMV (BitMoD) layers, recorded as one
    program: equal to golden.chain bit for bit; every instruction took cycles."""
    x, layers = data.draw(mixed_chain(CFG))
    cycles = run_chain(acc, CFG, x, layers)
    per = cycles["per_instruction"]
    assert len(per) == len(layers) + 1 and all(c > 0 for c in per[:-1])


@pytest.mark.slow
def test_gemv_gemm_gemv_program_equals_golden(acc):
    """A fixed three-layer program: GEMV with two blocks of outputs (64, BitMoD FP3) over
    two row tiles, GEMM, GEMV with fixed-point output; equal to golden.chain."""
    rng = np.random.default_rng(12)
    x = golden.quantize(rng.standard_normal((3, 64)), CFG.fmt_a, axis=1)
    q1 = bs.quantize_int_scale(rng.standard_normal((64, 64)) * 0.2, "bitmod_fp3", group=32)
    w2 = golden.quantize(rng.standard_normal((64, 32)), CFG.fmt_b, axis=0)
    q3 = bs.quantize_int_scale(rng.standard_normal((32, 32)) * 0.1, "bitmod_fp4", group=32)
    run_chain(acc, CFG, x, [(q1, CFG.out_fmt), (w2, CFG.out_fmt), (q3, None)])


@pytest.mark.slow
@pytest.mark.parametrize("fam", FAMS)
def test_bitmod_through_linear_equals_golden(acc, fam):
    """Float weights quantised to BitMoD FP4 / FP3 by upload_weights, x on the device:
    ``linear`` runs a GEMV instruction (no host round trip) and equals golden, both
    re-quantised on chip and as fixed point."""
    rng = np.random.default_rng(5)
    X, W = rng.standard_normal((3, 64)), rng.standard_normal((64, 32)) * 0.05
    x = acc.upload(X)
    w = acc.upload_weights(W, fmt=fam)
    assert w.tiles == 1
    h = acc.linear(x, w, out_fmt="mxfp8_e4m3")
    y = acc.linear(x, w, out_fmt=None)
    xq = golden.quantize(X, CFG.fmt_a, axis=1)
    q = bs.quantize_int_scale(W.T, fam, group=32)
    want = gemv_rows(xq, q, CFG.acc)
    assert np.array_equal(acc.download(y), want)
    got = acc.download_mx(h)
    ref = golden.quantize(want, CFG.out_fmt, axis=1)
    assert np.array_equal(got.elements, ref.elements)
    assert np.array_equal(got.scales, ref.scales)
    for t in (x, w, h):
        acc.free(t)


@pytest.mark.slow
def test_bad_gemv_programs_error_and_write_nothing(acc):
    """GEMV instructions with a shape or region error after a valid one: the error and
    its index; the activations and C tiles unchanged; the next program runs."""
    rng = np.random.default_rng(9)
    x = acc.upload(rng.standard_normal((2, 32)))
    w = acc.upload_weights(rng.standard_normal((32, 32)) * 0.1, fmt="bitmod_fp4")
    y = acc.linear(x, w)
    x_codes, y_vals = acc.download_mx(x), acc.download(y)
    ok = isa.Instr(op=2, k_blocks=1, src=x.tile, m_tiles=1, b=w.tile, n_tiles=1)
    for err, fields in {
            "shape": dict(op=2, k_blocks=3, m_tiles=1, n_tiles=1),
            "region": dict(op=2, k_blocks=1, m_tiles=1, n_tiles=1, b=4),
            "format": dict(op=2, out_fmt=2, k_blocks=1, m_tiles=1, n_tiles=1, dst=5)}.items():
        bad = isa.Instr(**fields)
        assert isa.check(bad, _caps(CFG)) == err
        with pytest.raises(ProgramError) as e:
            acc.run_program([ok, bad])
        assert (e.value.error, e.value.pc) == (err, 1)
    got = acc.download_mx(x)
    assert np.array_equal(got.elements, x_codes.elements)
    assert np.array_equal(got.scales, x_codes.scales)
    assert np.array_equal(acc.download(y), y_vals)
    y2 = acc.linear(x, w)      # the next program runs
    assert np.array_equal(acc.download(y2), y_vals)
    for t in (x, w):
        acc.free(t)


@pytest.mark.slow
@budget(4, **FIXTURE)
@given(ins=st.builds(isa.Instr, op=st.just(2), out_fmt=st.sampled_from([0, 1, 5]),
                     k_blocks=st.integers(0, 3), src=st.integers(0, 17),
                     m_tiles=st.integers(0, 2), dst=st.integers(0, 17), b=st.integers(0, 4),
                     n_tiles=st.integers(0, 3)))
def test_sequencer_gemv_checks_match_the_spec(acc, ins):
    """Random GEMV instructions on the linked device: its error code and index are
    isa.check's (the specification); the valid ones run."""
    check_instruction_against_spec(acc, ins, _caps(CFG))


@pytest.mark.slow
def test_gemv_not_built_is_an_opcode_error():
    """A device whose GEMV unit is not linked (its activation format differs): the GEMV
    instruction stops with "opcode", the driver refuses a program with a GEMV layer
    (one line), and a LINEAR program still runs."""
    cfg = SoCConfig(**{**CFG.__dict__, "gemv_act": "mxint8"})
    with Accelerator.simulated(cfg) as a:
        with pytest.raises(ProgramError) as e:
            a.run_program([isa.Instr(op=2, k_blocks=1, m_tiles=1, n_tiles=1)])
        assert e.value.error == "opcode"
        rng = np.random.default_rng(1)
        x = a.upload(rng.standard_normal((2, 32)))
        w = a.upload_weights(rng.standard_normal((32, 8)), fmt="bitmod_fp4")
        with pytest.raises(ValueError, match="linked to the sequencer"):
            with a.program():
                a.linear(x, w)
        wq = golden.quantize(rng.standard_normal((32, 32)), cfg.fmt_b, axis=0)
        run_chain(a, cfg, a.download_mx(x), [(wq, None)])


def _readme_program_snippets():
    import re
    from pathlib import Path
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    return [b for b in re.findall(r"```python\n(.*?)```", text, re.S)
            if "bitmod_fp4" in b and "acc.program()" in b]


def test_readme_has_the_linked_bitmod_example():
    assert len(_readme_program_snippets()) == 1


@pytest.mark.slow
@pytest.mark.parametrize("snippet", _readme_program_snippets())
def test_readme_linked_bitmod_example_runs(snippet):
    """The README's GEMM + GEMV program runs as written (its own assert checks golden)."""
    exec(compile(snippet, "<README>", "exec"), {})
