"""mxhw.bench.training: the MLP's GEMMs equal golden's, its backward pass is the gradient,
and the suite runs (figures are not asserted on beyond sanity)."""

import json

import numpy as np
import pytest
from hypothesis import given, strategies as st

from mxhw import golden
from mxhw.bench import training as T
from support.golden import tiled_arrays
from support.hyp import budget


def _needs_digits():
    pytest.importorskip("sklearn", reason="the digits data set ships with scikit-learn")

TILE, TILE_T = "mxsf_tile", golden.mxsf.mxsf_tile(4, 8)
E4M3 = "mxfp8_e4m3"


@st.composite
def operands(draw):
    """X (M x K), W (K x N), dY (M x N), every contraction a multiple of 32; each row a
    drawn run of 4 values repeated with drawn powers of two (support.golden.tiled_arrays)."""
    m, k, n = (32 * draw(st.integers(1, 2)) for _ in range(3))
    e = draw(st.integers(-6, 3))
    return tuple(np.ldexp(draw(tiled_arrays(*s, core=4, hi_abs=8.0)), e)
                 for s in ((m, k), (k, n), (m, n)))


def _eq(a, b):
    assert a.dtype == np.float32 and a.shape == b.shape
    assert np.array_equal(a, np.asarray(b, np.float32))


@budget(10)
@given(operands(), st.sampled_from(["fp32", "exact"]))
def test_tile_scheme_equals_golden(ops, acc):
    """X, W, dY stored once; the transposed reads equal golden on the float transposes
    quantised on 4 x 8 tiles."""
    x, w, dy = ops
    s = T.scheme(TILE, acc)
    a = T.ACCS[acc]
    qx, qw, qd = s.store_x(x), s.store_w(w), s.store_dy(dy)
    _eq(s.forward(qx, qw), golden.gemm(golden.quantize(x, TILE), golden.quantize(w, TILE), a))
    _eq(s.input_grad(qd, qw),
        golden.gemm(golden.quantize(dy, TILE), golden.quantize(w.T, TILE_T), a))
    _eq(s.weight_grad(qx, qd),
        golden.gemm(golden.quantize(x.T, TILE_T), golden.quantize(dy, TILE), a))


@budget(10)
@given(operands())
def test_mxfp8_scheme_equals_golden(ops):
    """1-D blocks: every transposed or re-oriented operand is re-quantised from the
    stored copy."""
    x, w, dy = ops
    s = T.scheme(E4M3)
    q = golden.quantize
    qx, qw, qd = s.store_x(x), s.store_w(w), s.store_dy(dy)
    fx, fw, fd = (q(x, E4M3, axis=1).dequantize(), q(w, E4M3, axis=0).dequantize(),
                  q(dy, E4M3, axis=1).dequantize())
    _eq(s.forward(qx, qw), golden.gemm(q(x, E4M3, axis=1), q(w, E4M3, axis=0), golden.FP32))
    _eq(s.input_grad(qd, qw),
        golden.gemm(q(dy, E4M3, axis=1), q(fw.T, E4M3, axis=0), golden.FP32))
    _eq(s.weight_grad(qx, qd),
        golden.gemm(q(fx.T, E4M3, axis=1), q(fd, E4M3, axis=0), golden.FP32))


def test_fp32_scheme_is_float32_matmul():
    rng = np.random.default_rng(0)
    x, w, dy = (rng.standard_normal(s).astype(np.float32) for s in ((4, 6), (6, 5), (4, 5)))
    s = T.scheme("fp32")
    assert np.array_equal(s.forward(x, w), x @ w)
    assert np.array_equal(s.input_grad(dy, w), dy @ w.T)
    assert np.array_equal(s.weight_grad(x, dy), x.T @ dy)


def _torch_grads(params, x, y):
    torch = pytest.importorskip("torch")
    p = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params.items()}
    h = torch.relu(torch.tensor(x, dtype=torch.float64) @ p["w1"] + p["b1"])
    logits = (h @ p["w2"] + p["b2"])[:, :10]
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor(y))
    loss.backward()
    return loss.item(), {k: v.grad.numpy() for k, v in p.items()}


def test_backward_pass_is_the_gradient():
    """FP32 scheme: train_step's gradients are autograd's (float64); the MX schemes'
    are near them, MXSF tiles (one quantisation, 6-bit significands) nearer than MXFP8
    E4M3 (re-quantised transposes, 4-bit significands)."""
    _needs_digits()
    xtr, ytr, _, _ = T.load_digits_split(0)
    params = T.init_params(64, 64, 10, seed=1)
    params["b1"] += np.float32(0.01)
    x, y = xtr[:32], ytr[:32]
    ref_loss, ref = _torch_grads(params, x, y)
    loss, g = T.train_step(T.scheme("fp32"), params, x, y)
    assert loss == pytest.approx(ref_loss, rel=1e-5)
    for k in ref:
        assert np.allclose(g[k], ref[k], rtol=1e-4, atol=1e-6), k
    assert not g["w2"][:, 10:].any() and not g["b2"][10:].any()  # padding stays zero
    err = {}
    for name in (TILE, E4M3):
        _, gq = T.train_step(T.scheme(name), params, x, y)
        err[name] = max(np.linalg.norm(gq[k] - ref[k]) / np.linalg.norm(ref[k]) for k in ref)
    assert err[TILE] < 0.1 and err[E4M3] < 0.3 and err[TILE] < err[E4M3]


def test_suite_runs_and_is_deterministic(tmp_path, capsys):
    _needs_digits()
    argv = ["--epochs", "2", "--seeds", "1", "--train-limit", "256", "--hidden", "32"]
    assert T.main([*argv, "--json", str(tmp_path / "a.json"),
                   "--plot", str(tmp_path / "loss.png")]) == 0
    out = capsys.readouterr().out
    for name in T.SCHEMES:
        assert f"\n{name} " in out
    assert (tmp_path / "loss.png").read_bytes()[:4] == b"\x89PNG"
    assert T.main([*argv, "--json", str(tmp_path / "b.json")]) == 0
    a, b = (json.loads((tmp_path / f).read_text()) for f in ("a.json", "b.json"))
    assert a["config"]["seeds"] == 1 and a["config"]["train_limit"] == 256
    for name in T.SCHEMES:
        assert 0.5 < a[f"{name}.test_accuracy"] <= 1.0
        assert a[f"{name}.epoch_loss.2"] < a[f"{name}.epoch_loss.1"]
    figs = lambda d: {k: v for k, v in d.items() if k != "config" and "seconds" not in k}
    assert figs(a) == figs(b)


def test_padding_columns_stay_zero():
    _needs_digits()
    cfg = T.Config(epochs=1, seeds=1, train_limit=64, schemes=(TILE,))
    r = T.train(TILE, cfg)
    assert not r["params"]["w2"][:, 10:].any() and not r["params"]["b2"][10:].any()


def test_config_errors(capsys):
    with pytest.raises(ValueError, match=r"hidden and batch must be multiples of 32"):
        T.Config(batch=40)
    with pytest.raises(ValueError, match=r"scheme must be one of"):
        T.Config(schemes=("bf16",))
    with pytest.raises(SystemExit):
        T.main(["--schemes", "bf16"])
    assert "scheme must be one of" in capsys.readouterr().err


def test_runs_as_a_bench_suite(capsys):
    """The suite's entry as mxhw.bench dispatches it (``SUITES["training"] =
    _suite("training")``)."""
    _needs_digits()
    from mxhw import bench
    run = bench._suite("training")
    assert run(["--epochs", "1", "--seeds", "1", "--train-limit", "64",
                "--schemes", "fp32"]) == 0
    assert "\nfp32 " in capsys.readouterr().out
