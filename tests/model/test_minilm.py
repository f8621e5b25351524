"""all-MiniLM-L6-v2 offline: a small evaluation, the SQNR ordering, the CLI."""

import json

import numpy as np
import pytest
import torch

from mxhw import golden
from mxhw.model import MXLinear, evaluate, load_minilm, quantize_model
from mxhw.model.__main__ import main
from mxhw.model.metrics import default_corpus

TEXTS = default_corpus()[:12]


@pytest.fixture(scope="module")
def minilm():
    return load_minilm()


def sqnr_db(W, fmt):
    q = golden.quantize(W.T, fmt, axis=0).dequantize().T
    return 10 * np.log10((W ** 2).sum() / ((W - q) ** 2).sum())


def test_corpus_ships_with_the_package():
    t = default_corpus()
    assert len(t) >= 200 and all(s.strip() == s and s for s in t)


@pytest.mark.slow
def test_uniform_formats_follow_golden_sqnr_ordering(minilm):
    fmts = ["mxint8", "mxfp6_e3m2", "mxfp4"]  # golden SQNR on MiniLM: 41.6, 25.3, 18.6 dB
    res = {f: evaluate("minilm", {"default": {"w": f}}, texts=TEXTS) for f in fmts}
    # the expected order, from golden alone: SQNR over every linear weight of the model
    Ws = np.concatenate([m.weight.detach().double().numpy().ravel()
                         for m in minilm.modules() if isinstance(m, torch.nn.Linear)])
    W = Ws.reshape(-1, 384)
    by_sqnr = sorted(fmts, key=lambda f: -sqnr_db(W, f))
    by_cos = sorted(fmts, key=lambda f: -res[f]["cos_mean"])
    assert by_cos == by_sqnr
    for f in fmts:
        r = res[f]
        assert r["bits_per_weight"] == golden.formats.get(f).bits_per_value
        assert 0 < r["cos_min"] <= r["cos_mean"] <= 1 and 0 <= r["top1_agree"] <= 1
    assert res["mxint8"]["cos_mean"] > 0.999


@pytest.mark.slow
def test_one_minilm_layer_fast_equals_golden_gemm(minilm):
    layer = minilm[0].auto_model.encoder.layer[0] if hasattr(minilm[0], "auto_model") \
        else minilm[0].model.encoder.layer[0]
    spec = {"default": {"w": "mxfp4", "a": "mxfp8_e4m3", "acc": "fixed(32,16)"}}
    fast = quantize_model(layer, spec)
    x = torch.randn(3, 5, 384, generator=torch.Generator().manual_seed(0))
    for name, m in fast.named_modules():
        if isinstance(m, MXLinear):
            xin = x if m.in_features == 384 else torch.randn(3, 5, m.in_features)
            x2 = xin.reshape(-1, m.in_features)
            want = golden.gemm(golden.quantize(x2, "mxfp8_e4m3", axis=1), m.wq,
                               golden.fixed(32, 16))
            np.testing.assert_array_equal(m.gemm(x2).numpy(), want)


@pytest.mark.slow
def test_cli_eval_json(tmp_path, capsys):
    t = tmp_path / "t.txt"
    t.write_text("\n".join(TEXTS[:6]) + "\n")
    out = tmp_path / "r.json"
    assert main(["eval", "--model", "minilm", "--formats", "mxfp8_e4m3,mxfp4",
                 "--text", str(t), "--json", str(out)]) == 0
    d = json.loads(out.read_text())
    assert d["n_texts"] == 6 and set(d["formats"]) == {"mxfp8_e4m3", "mxfp4"}
    for r in d["formats"].values():
        assert {"bits_per_weight", "cos_mean", "cos_min", "top1_agree"} <= set(r)
    assert "mxfp4" in capsys.readouterr().out


@pytest.mark.parametrize("argv, msg", [
    (["eval", "--formats", "mxfp9"], "unknown format 'mxfp9'"),
    (["eval", "--formats", "fp4_e2m1"], "element format"),
    (["eval", "--model", "bert", "--formats", "mxfp4"], "only 'minilm'"),
    (["eval", "--formats", "mxfp4", "--acc", "fp64"], "acc must be"),
    (["eval", "--formats", "mxfp4", "--text", "/nonexistent.txt"], "cannot read text file"),
    (["search", "--candidates", "mxfp4"], "exactly one of --budget-bits"),
    (["search", "--candidates", "mxfp4", "--budget-bits", "-1"], "must be positive"),
    (["device", "--sentences", "0"], "--sentences must be in 1..256, not 0"),
    (["device", "--rows", "0"], "--rows must be at least 1"),
    (["device", "--model", "bert"], "only 'minilm'"),
    (["device", "--fmt-a", "mxfp9"], "unknown format 'mxfp9'"),
])
def test_cli_errors_are_one_line(argv, msg, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert msg in err and err.count("\n") == 1 and "Traceback" not in err


def test_cli_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["eval"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--formats" in err and err.count("\n") == 1
