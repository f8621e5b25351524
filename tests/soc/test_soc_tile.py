"""The tile unit (``SoCConfig(fmt_a="mxsf_tile", fmt_b="mxsf_tile")``, :mod:`mxhw.soc.tileunit`)
on the simulated SoC: each tensor uploaded once in its stored orientation, read as stored
or transposed by the hardware. Expectations come from golden (``golden.training_gemms``,
``golden.gemm`` of ``q.T``), never from the unit."""

import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, strategies as st
from hypothesis.extra.numpy import arrays

from mxhw import golden
from mxhw.soc.driver import Accelerator
from mxhw.soc.regmap import FORMAT_IDS, GEMM_REGS, decode, region_address
from mxhw.soc.tileunit import TileGemmUnit, tile_k_run
from mxhw.soc.top import SoCConfig, config_overrides
from support.hyp import budget

ROOT = Path(__file__).parents[2]
CFG = SoCConfig(rows=4, cols=4, fmt_a="mxsf_tile", fmt_b="mxsf_tile", max_k=16, a_tiles=4)
FIXTURE = dict(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)


@pytest.fixture(scope="module")
def acc():
    with Accelerator.simulated(CFG) as a:
        yield a


def matrices(shape):
    """A float matrix with zeros, values over 2**-20 .. 2**20 and a scale per matrix, so
    tiles land in both MXSF modes, saturate the accumulator or underflow."""
    elems = st.one_of(st.just(0.0), st.floats(-8.0, 8.0, allow_nan=False, width=32))
    return st.builds(lambda a, e: a * 2.0 ** e, arrays(np.float64, shape, elements=elems),
                     st.integers(-20, 20))


# ---- configuration -------------------------------------------------------------------

@pytest.mark.parametrize("kw, msg", [
    (dict(fmt_b="mxfp4"), "the same one of"),
    (dict(fmt_a="mxfp4", fmt_b="mxsf_tile"), "the same one of"),
    (dict(dataflow="weight_stationary"), "output-stationary only"),
    (dict(rows=8), "rows"),
    (dict(cols=3), "cols"),
    (dict(max_k=512), "max_k"),
    (dict(max_k=4), "max_k"),
    (dict(prog_words=16), "prog_words"),
    (dict(b_tiles=2), "b_tiles"),
    (dict(a_tiles=32), "a_tiles"),
    (dict(max_k=256, a_tiles=16), "block RAM"),
])
def test_bad_tile_configs_raise(kw, msg):
    base = dict(fmt_a="mxsf_tile", fmt_b="mxsf_tile", rows=2, cols=2, max_k=16)
    with pytest.raises(ValueError, match=msg) as e:
        SoCConfig(**{**base, **kw})
    assert "\n" not in str(e.value)


def test_config_overrides_and_ids():
    cfg = config_overrides(["fmt_a=mxsf_tile", "fmt_b=mxsf_tile", "rows=2", "cols=4",
                            "max_k=32", "a_tiles=4"])
    (_, unit), = cfg.units()
    assert isinstance(unit, TileGemmUnit) and unit.k == 8
    assert decode("FORMATS", unit.register_values()["FORMATS"]) == \
        {"fmt_a": FORMAT_IDS["mxsf_tile"], "fmt_b": FORMAT_IDS["mxsf_tile"]}
    with pytest.raises(ValueError, match="output-stationary only"):
        config_overrides(["fmt_a=mxsf_tile", "fmt_b=mxsf_tile", "dataflow=weight_stationary"])


def test_build_cli_refuses_bad_tile_config():
    """``--config`` on the build command line: a one-line error, no traceback."""
    from mxhw.build import main
    for items in (["fmt_a=mxsf_tile"], ["fmt_a=mxsf_tile", "fmt_b=mxsf_tile",
                                        "dataflow=weight_stationary"]):
        argv = ["--board", "ulx3s"] + [a for i in items for a in ("--config", i)]
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert "mxsf_tile" in str(e.value.code) and "\n" not in str(e.value.code)


def test_tile_unit_converts_to_rtlil():
    """The unit elaborates to a netlist (no combinational loop: pysim would not see one)."""
    from amaranth.back import rtlil
    text = rtlil.convert(TileGemmUnit(2, 2, "mxsf_tile", golden.fixed(32, 16), max_k=8,
                                      slots=1))
    assert "module" in text


def test_tile_unit_parameter_errors():
    acc = golden.fixed(32, 16)
    with pytest.raises(ValueError, match="tile format"):
        TileGemmUnit(2, 2, "mxfp4", acc)
    with pytest.raises(ValueError, match="fixed-point"):
        TileGemmUnit(2, 2, "mxsf_tile", golden.FP32)
    with pytest.raises(ValueError, match="slots"):
        TileGemmUnit(2, 2, "mxsf_tile", acc, slots=3)


def test_k_run_is_golden_k_block():
    """The unit's K block per orientation is the one golden takes (systolic.tile.tile_k of
    the read formats; transposed: golden's swapped tile)."""
    from mxhw.golden.tile import transposed_format
    from mxhw.systolic.tile import tile_k
    f = golden.formats.get("mxsf_tile")
    for ta in (False, True):
        for tb in (False, True):
            want = tile_k(transposed_format(f) if ta else f, transposed_format(f) if tb else f)
            assert tile_k_run("mxsf_tile", ta, tb) == want


# ---- the driver's errors ---------------------------------------------------------------

def test_driver_errors(acc):
    x = acc.upload_tiles(np.ones((8, 8)), slot=2)
    with pytest.raises(ValueError, match="multiple of the product's K block 8"):
        acc.matmul(np.ones((4, 8)), np.ones((4, 4)), transpose_a=True)
    with pytest.raises(ValueError, match="inner dimensions"):
        acc.matmul(x, np.ones((4, 4)))
    with pytest.raises(ValueError, match="built for 'mxsf_tile'"):
        acc.matmul(x, x, fmt_a="mxfp4")
    with pytest.raises(TypeError, match="transpose_a"):
        acc.matmul(x, x, transpose_a=1)
    with pytest.raises(ValueError, match="max_k = 16"):
        acc.upload_tiles(np.ones((8, 32)))
    with pytest.raises(ValueError, match="slot"):
        acc.upload_tiles(np.ones((8, 8)), slot=4)
    acc.upload_tiles(np.ones((8, 8)), slot=2)
    with pytest.raises(ValueError, match="no longer on the device"):
        acc.matmul(x, x)


def test_transpose_needs_a_tile_unit():
    with Accelerator.simulated(SoCConfig(rows=1, cols=1, max_k=32)) as a:
        with pytest.raises(ValueError, match="tile-format GEMM unit"):
            a.matmul(np.ones((1, 32)), np.ones((32, 1)), transpose_b=True)
        with pytest.raises(ValueError, match="tile-format GEMM unit"):
            a.upload_tiles(np.ones((8, 4)))


# ---- products against golden -----------------------------------------------------------

def test_one_start_of_each_k_block(acc):
    """One output tile of each K block: A^T B (K block 8) and A B^T (K block 4, its padded
    steps), equal to golden.gemm of the exact transposes."""
    rng = np.random.default_rng(4)
    a = acc.upload_tiles(rng.standard_normal((8, 4)) * 2.0 ** 9, slot=0)
    b = acc.upload_tiles(rng.standard_normal((8, 4)), slot=1)
    np.testing.assert_array_equal(acc.matmul(a, b, transpose_a=True),
                                  golden.gemm(a.q.T, b.q, CFG.acc))
    c = acc.upload_tiles(rng.standard_normal((4, 8)), slot=2)
    np.testing.assert_array_equal(acc.matmul(c, c, transpose_b=True),
                                  golden.gemm(c.q, c.q.T, CFG.acc))


@pytest.mark.slow
def test_all_orientations_small(acc):
    """Every transpose flag pair on one stored pair (A 8 x 8, B 8 x 8): op(A) @ op(B)
    equals golden.gemm of the exact transposes q.T; no stall (the array took a transfer
    every cycle)."""
    rng = np.random.default_rng(3)
    a = rng.standard_normal((8, 8)) * 2.0 ** rng.integers(-6, 6, (8, 8))
    b = rng.standard_normal((8, 8))
    a[:, :4] = 0.0
    at, bt = acc.upload_tiles(a, slot=0), acc.upload_tiles(b, slot=1)
    for ta in (False, True):
        for tb in (False, True):
            want = golden.gemm(at.q.T if ta else at.q, bt.q.T if tb else bt.q, CFG.acc)
            got = acc.matmul(at, bt, transpose_a=ta, transpose_b=tb)
            np.testing.assert_array_equal(got, want, err_msg=f"ta={ta} tb={tb}")
    stalls = acc.read_words(region_address("regs", GEMM_REGS["STALL_CYCLES"]), 1)[0]
    assert stalls == 0


@pytest.mark.slow
@budget(3, **FIXTURE)
@given(data=st.data())
def test_training_step_equals_golden(acc, data):
    """One linear layer's training step from ONE upload each of X, W and dY (mxsf_tile):
    Y = X W, dX = dY W^T (W read transposed), dW = X^T dY (X read transposed), each equal
    to golden.training_gemms bit for bit."""
    M = data.draw(st.sampled_from([8, 16]), "M")
    K = data.draw(st.sampled_from([4, 8, 12, 16]), "K")
    N = data.draw(st.sampled_from([4, 8]), "N")
    X, W, dY = (data.draw(matrices(s), n) for s, n in (((M, K), "X"), ((K, N), "W"),
                                                       ((M, N), "dY")))
    x, w, dy = (acc.upload_tiles(t, slot=i) for i, t in enumerate((X, W, dY)))
    want = golden.training_gemms(x.q, w.q, dy.q, CFG.acc)
    got = (acc.matmul(x, w), acc.matmul(dy, w, transpose_b=True),
           acc.matmul(x, dy, transpose_a=True))
    for name, g, e in zip(("Y", "dX", "dW"), got, want):
        np.testing.assert_array_equal(g, e, err_msg=name)


@pytest.mark.slow
@budget(3, **FIXTURE)
@given(data=st.data())
def test_matmul_of_arrays_equals_golden(acc, data):
    """matmul of float arrays: each quantised once in its stored orientation (tiles over
    its two axes) and read transposed where asked: golden.gemm(op(qa), op(qb))."""
    ta, tb = data.draw(st.booleans(), "ta"), data.draw(st.booleans(), "tb")
    kr = tile_k_run("mxsf_tile", ta, tb)
    K = data.draw(st.sampled_from([k for k in (4, 8, 16) if k % kr == 0]), "K")
    M, N = data.draw(st.integers(1, 9), "M"), data.draw(st.integers(1, 9), "N")
    a = data.draw(matrices((K, M) if ta else (M, K)), "a")
    b = data.draw(matrices((N, K) if tb else (K, N)), "b")
    qa, qb = golden.quantize(a, "mxsf_tile"), golden.quantize(b, "mxsf_tile")
    want = golden.gemm(qa.T if ta else qa, qb.T if tb else qb, CFG.acc)
    np.testing.assert_array_equal(acc.matmul(a, b, fmt_a="mxsf_tile", transpose_a=ta,
                                             transpose_b=tb), want)


# ---- the documented example ------------------------------------------------------------

def _readme_snippets():
    text = (ROOT / "README.md").read_text()
    return [b for b in re.findall(r"```python\n(.*?)```", text, re.S)
            if "upload_tiles(" in b and "Accelerator.simulated" in b]


@pytest.mark.slow
def test_readme_training_step_runs():
    """README's training step on the simulated SoC runs as written; its three results
    equal golden.training_gemms of the tensors it uploaded."""
    snippets = _readme_snippets()
    assert len(snippets) == 1
    env = {}
    exec(compile(snippets[0], "<README>", "exec"), env)
    want = golden.training_gemms(env["x"].q, env["w"].q, env["dy"].q, env["config"].acc)
    for got, e in zip((env["y"], env["dx"], env["dw"]), want):
        np.testing.assert_array_equal(got, e)
