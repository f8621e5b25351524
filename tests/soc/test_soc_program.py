"""Programs on the simulated SoC: chains of linear layers through the driver's layer API
against golden.chain bit for bit; bad programs give an error status and write nothing;
the driver refuses what the device was not built with."""

import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, strategies as st

from mxhw import golden
from mxhw.golden.chain import linear
from mxhw.soc import isa
from mxhw.soc.driver import Accelerator
from mxhw.soc.layers import ProgramError
from mxhw.soc.top import SoCConfig
from support.hyp import budget
from support.soc import check_instruction_against_spec, chain_layers, run_chain

ROOT = Path(__file__).parents[2]

#: a small SoC with every part of the layer path: 2 x 8 array (4 column tiles per block
#: of 32), MXFP8 E4M3 activations re-quantised on chip, MXFP4 weights
CFG = SoCConfig(rows=2, cols=8, fmt_a="mxfp8_e4m3", fmt_b="mxfp4", max_k=64, a_tiles=8,
                b_tiles=32, c_tiles=16, prog_words=16, out_fmt="mxfp8_e4m3")
FIXTURE = dict(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)


@pytest.fixture(scope="module")
def acc():
    with Accelerator.simulated(CFG) as a:
        yield a


def _one_instr_caps(cfg):
    return {"rows": cfg.rows, "cols": cfg.cols, "max_k": cfg.max_k, "a_tiles": cfg.a_tiles,
            "b_tiles": cfg.b_tiles, "c_tiles": cfg.c_tiles,
            "out_fmt": 1 if cfg.out_fmt else 0}


@budget(3, **FIXTURE)
@given(data=st.data())
def test_random_chains_equal_golden(acc, data):
    """Random chains of 1-3 layers (shapes, operand codes, last layer re-quantised or
    fixed point), recorded as one program: equal to golden.chain bit for bit."""
    x, layers = data.draw(chain_layers(CFG, max_layers=3))
    cycles = run_chain(acc, CFG, x, layers)
    per = cycles["per_instruction"]
    assert len(per) == len(layers) + 1 and all(c > 0 for c in per[:-1])
    assert sum(per) <= cycles["total"]


def test_layers_one_by_one_equal_golden(acc):
    """The same chain run one ``linear`` at a time (each its own program)."""
    rng = np.random.default_rng(3)
    x = golden.quantize(rng.standard_normal((3, 64)), CFG.fmt_a, axis=1)
    w1 = golden.quantize(rng.standard_normal((64, 32)) * 4, CFG.fmt_b, axis=0)
    w2 = golden.quantize(rng.standard_normal((32, 12)), CFG.fmt_b, axis=0)
    run_chain(acc, CFG, x, [(w1, CFG.out_fmt), (w2, None)], one_program=False)


def _sentinel(acc):
    """An activation tensor and a fixed-point result on the device, and their contents."""
    rng = np.random.default_rng(7)
    x = acc.upload(rng.standard_normal((2, 32)))
    w = acc.upload_weights(rng.standard_normal((32, 8)))
    y = acc.linear(x, w, out_fmt=None)
    return x, w, y, acc.download_mx(x), acc.download(y)


BAD = {
    "opcode": dict(op=5),
    "format": dict(op=1, out_fmt=2, k_blocks=1, m_tiles=1, n_tiles=4, src=0, dst=4),
    "shape": dict(op=1, k_blocks=3, m_tiles=1, n_tiles=1),
    "region": dict(op=1, k_blocks=1, m_tiles=1, n_tiles=4, src=0, dst=0, out_fmt=1),
}


def test_bad_programs_error_and_write_nothing(acc):
    """An instruction with each error, after a valid one: PROG_STATUS has the code and
    its index; the A tiles and C tiles on the device are unchanged; the next program
    runs and equals golden."""
    x, w, y, x_codes, y_vals = _sentinel(acc)
    # a first, valid instruction: y's own tile again (C tile 0, the same values)
    ok = isa.Instr(op=1, k_blocks=1, src=x.tile, m_tiles=1, b=w.tile, n_tiles=1)
    for err, fields in BAD.items():
        bad = isa.Instr(**fields)
        assert isa.check(bad, _one_instr_caps(CFG)) == err
        with pytest.raises(ProgramError) as e:
            acc.run_program([ok, bad])
        assert e.value.error == err and e.value.pc == 1
    got = acc.download_mx(x)
    assert np.array_equal(got.elements, x_codes.elements)
    assert np.array_equal(got.scales, x_codes.scales)
    assert np.array_equal(acc.download(y), y_vals)
    # the next valid program runs
    rng = np.random.default_rng(11)
    wq = golden.quantize(rng.standard_normal((32, 32)), CFG.fmt_b, axis=0)
    run_chain(acc, CFG, x_codes, [(wq, CFG.out_fmt)])
    for t in (x, w):
        acc.free(t)


@budget(4, **FIXTURE)
@given(ins=st.builds(isa.Instr, op=st.integers(0, 3), out_fmt=st.sampled_from([0, 1, 5]),
                     k_blocks=st.integers(0, 3), src=st.integers(0, 9),
                     m_tiles=st.integers(0, 3), dst=st.integers(0, 9), b=st.integers(28, 33),
                     n_tiles=st.integers(0, 5)))
def test_sequencer_checks_match_the_spec(acc, ins):
    """Random instructions: the device's error code and index are isa.check's (the
    specification), and the program's valid instructions run."""
    check_instruction_against_spec(acc, ins, _one_instr_caps(CFG))


def test_program_without_end_runs_off_its_memory(acc):
    """A program memory full of valid instructions and no END: error "region" at the
    index one past the memory; the next program runs."""
    from mxhw.soc.regmap import GEMM_REGS, decode, region_address
    n = CFG.prog_words // isa.WORDS
    words = isa.encode(isa.Instr(op=1, k_blocks=1, m_tiles=1, n_tiles=1))
    acc.write_words(region_address("prog"), words * n)
    acc.write_words(region_address("regs", GEMM_REGS["PROG_START"]), [1])
    for _ in range(1000):
        st_ = decode("PROG_STATUS", acc.read_words(
            region_address("regs", GEMM_REGS["PROG_STATUS"]), 1)[0])
        if st_["done"]:
            break
    assert (st_["busy"], st_["error"], st_["pc"]) == (0, isa.ERRORS["region"], n)
    acc.run_program([])


def test_matmul_after_a_program(acc):
    """A program leaves A_TILE and B_TILE at 0: the register-driven matmul (A tile 0, B
    tile 0) still equals golden after programs ran."""
    from support.soc import soc_expect
    rng = np.random.default_rng(2)
    A, B = rng.standard_normal((2, 32)), rng.standard_normal((32, 8))
    acc.run_program([isa.Instr(op=1, k_blocks=1, src=3, m_tiles=1, b=5, n_tiles=2)])
    assert np.array_equal(acc.matmul(A, B), soc_expect(A, B, CFG))


# ---- driver refusals -------------------------------------------------------------------

def test_driver_refuses_what_is_not_built(acc):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2, 32))
    with pytest.raises(ValueError, match="not built on this device"):
        acc.upload(X, fmt="mxint8")
    with pytest.raises(ValueError, match="not built on this device"):
        acc.upload_weights(X.T, fmt="mxfp8_e4m3")
    with pytest.raises(ValueError, match="multiple of 32"):
        acc.upload(rng.standard_normal((2, 48)))
    with pytest.raises(ValueError, match="max_k = 64"):
        acc.upload(rng.standard_normal((2, 128)))
    with pytest.raises(ValueError, match="NaN or Inf"):
        acc.upload(np.full((2, 32), np.nan))
    x = acc.upload(X)
    w = acc.upload_weights(rng.standard_normal((32, 24)))
    try:
        with pytest.raises(ValueError, match="not built on this device"):
            acc.linear(x, w, out_fmt="mxfp4")
        with pytest.raises(ValueError, match="multiple of 32"):
            acc.linear(x, w, out_fmt="mxfp8_e4m3")
        with pytest.raises(ValueError, match="inner dimensions"):
            acc.linear(acc_h := acc.upload(rng.standard_normal((2, 64))), w)
        acc.free(acc_h)
        with pytest.raises(MemoryError, match="consecutive free A tiles"):
            acc.upload(rng.standard_normal((2 * CFG.a_tiles, 32)))
        with pytest.raises(ValueError, match="program of 9 instructions"):
            with acc.program():
                for _ in range(8):
                    acc.linear(x, w)
        with pytest.raises(TypeError, match="tensor of this Accelerator"):
            acc.linear(X, w)
        with pytest.raises(ValueError, match="write-only"):
            acc.download(w)
        y1 = acc.linear(x, w)
        acc.linear(x, w)
        with pytest.raises(ValueError, match="overwritten"):
            acc.download(y1)
    finally:
        acc.free(x)
        acc.free(w)
    with pytest.raises(ValueError, match="was freed"):
        acc.linear(x, w)


def test_driver_refuses_devices_without_the_layer_path():
    with Accelerator.simulated(SoCConfig(rows=1, cols=1, max_k=32)) as a:
        with pytest.raises(RuntimeError, match="without a program sequencer"):
            a.upload(np.ones((1, 32)))
    with Accelerator.simulated(SoCConfig(rows=1, cols=2, max_k=32, prog_words=4,
                                         b_tiles=32, c_tiles=2)) as a:
        x = a.upload(np.ones((1, 32)))
        w = a.upload_weights(np.ones((32, 32)))
        with pytest.raises(ValueError, match="without the on-chip activation path"):
            a.linear(x, w, out_fmt="mxfp4")
        with pytest.raises(ValueError, match="C tiles"):
            a.linear(x, w)           # 16 column tiles, 2 C tiles
        w2 = a.upload_weights(np.ones((32, 3)))
        y = a.linear(x, w2)
        want = linear(golden.quantize(np.ones((1, 32)), "mxfp4", axis=1),
                      golden.quantize(np.ones((32, 3)), "mxfp4", axis=0), SoCConfig().acc)
        assert np.array_equal(a.download(y), want)


# ---- the documented example ------------------------------------------------------------

def _snippets():
    out = []
    for doc in (ROOT / "README.md", ROOT / "docs" / "isa.md"):
        for block in re.findall(r"```python\n(.*?)```", doc.read_text(), re.S):
            if "acc.linear(" in block and "Accelerator.simulated" in block:
                out.append(pytest.param(block, id=doc.name))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("snippet", _snippets())
def test_documented_chain_example_runs(snippet):
    """The chain examples of README.md and docs/isa.md run as written, and their result
    equals golden.chain."""
    env = {}
    exec(compile(snippet, "<snippet>", "exec"), env)
    if "Y" in env and "X" in env and "W1" in env and "W2" in env:
        from mxhw.golden.chain import chain
        cfg = env.get("config") or env["acc"].transport.config
        want = chain(golden.quantize(env["X"], "mxfp8_e4m3", axis=1),
                     [(golden.quantize(env["W1"], "mxfp4", axis=0), "mxfp8_e4m3"),
                      (golden.quantize(env["W2"], "mxfp4", axis=0), None)], cfg.acc)
        assert np.array_equal(env["Y"], want)


@pytest.mark.slow
@pytest.mark.parametrize("fmt_a,fmt_b", [("mxint8", "mxint8"), ("mxfp6_e2m3", "mxfp4"),
                                         ("mxfp4", "mxfp8_e5m2")])
def test_other_built_formats_chain(fmt_a, fmt_b):
    """The activation path in other built formats (MXINT8 included): a two-layer chain,
    re-quantised on chip, equals golden.chain."""
    cfg = SoCConfig(rows=2, cols=16, fmt_a=fmt_a, fmt_b=fmt_b, max_k=64, a_tiles=8,
                    b_tiles=8, c_tiles=4, prog_words=8, out_fmt=fmt_a)
    rng = np.random.default_rng(5)
    x = golden.quantize(rng.standard_normal((3, 64)) * 8, fmt_a, axis=1)
    w1 = golden.quantize(rng.standard_normal((64, 32)), fmt_b, axis=0)
    w2 = golden.quantize(rng.standard_normal((32, 32)), fmt_b, axis=0)
    with Accelerator.simulated(cfg) as a:
        run_chain(a, cfg, x, [(w1, fmt_a), (w2, fmt_a)])


# ---- larger programs on the compiled back end ------------------------------------------

#: a 4 x 4 unit, MXFP8 E4M3 activations re-quantised on chip, MXFP4 weights: up to 4
#: layers of up to 128 features and 8 rows (2 row tiles: 2 x 32 C tiles for the widest
#: fixed-point layer)
BIG = SoCConfig(rows=4, cols=4, fmt_a="mxfp8_e4m3", fmt_b="mxfp4", max_k=128, a_tiles=16,
                b_tiles=128, c_tiles=64, prog_words=16, out_fmt="mxfp8_e4m3")


@pytest.mark.compiled
@budget(6, deadline=None)
@given(data=st.data())
def test_random_chains_equal_golden_compiled(data):
    x, layers = data.draw(chain_layers(BIG, max_layers=4, max_m=8))
    run_chain(_big_acc(), BIG, x, layers)


_BIG = []


def _big_acc():
    if not _BIG:
        _BIG.append(Accelerator.simulated(BIG, backend="compiled"))
    return _BIG[0]
