"""The mixed-precision search on a small module with a user metric: within budget, never
worse than the best uniform format within budget."""

import pytest
import torch
from hypothesis import given, strategies as st

from mxhw import golden
from mxhw.model import SpecError, evaluate, quantize_model
from mxhw.model.mixed import lut_table, plot_pareto, search
from support.hyp import budget

CANDS = ["mxfp4", "mxint4", "mxfp6_e2m3", "mxint8"]


def make_net(seed):
    g = torch.Generator().manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(),
                              torch.nn.Linear(64, 96), torch.nn.ReLU(),
                              torch.nn.Linear(96, 8))
    with torch.no_grad():
        for i, p in enumerate(net.parameters()):
            p.copy_(torch.randn(p.shape, generator=g) * (1 + 3 * (i % 3)))
    return net


X = torch.randn(16, 64, generator=torch.Generator().manual_seed(9))


@torch.no_grad()
def cos_metric(q, f):
    return float(torch.nn.functional.cosine_similarity(q(X), f(X), dim=-1).mean())


def bits(f):
    return golden.formats.get(f).bits_per_value


@budget(4)
@given(st.integers(0, 3), st.sampled_from([4.3, 5.0, 6.3, 7.0]))
def test_search_respects_budget_and_beats_uniform(seed, b):
    net = make_net(seed)
    ev = lambda sp: {"cos_mean": evaluate(net, sp, metric=cos_metric)["metric"]}
    r = search(ev, net, CANDS, budget_bits=b)
    assert r["bits"] <= b + 1e-9
    # independent check of the bits: golden's bits per value weighted by parameters
    params = {n: m.weight.numel() for n, m in net.named_modules()
              if isinstance(m, torch.nn.Linear)}
    want = sum(bits(r["assignment"][n]) * p for n, p in params.items()) / sum(params.values())
    assert r["bits"] == pytest.approx(want)
    # and the metric: re-evaluate the returned spec
    got = cos_metric(quantize_model(net, r["spec"]), net)
    assert got == pytest.approx(r["metrics"]["cos_mean"])
    for f in CANDS:
        if bits(f) <= b:
            u = cos_metric(quantize_model(net, {"default": {"w": f}}), net)
            assert got >= u - 1e-12


def test_lut_budget_and_plot(tmp_path):
    net = make_net(0)
    ev = lambda sp: {"cos_mean": evaluate(net, sp, metric=cos_metric)["metric"]}
    b = lut_table("mxfp6_e2m3")[0]
    r = search(ev, net, CANDS, budget_luts=b)
    assert r["luts"] <= b + 1e-9
    plot_pareto(r, tmp_path / "p.png")
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    r["spec"].save(tmp_path / "s.toml")


def test_search_errors():
    net = make_net(0)
    ev = lambda sp: {"cos_mean": 1.0}
    with pytest.raises(SpecError, match="exactly one budget"):
        search(ev, net, CANDS)
    with pytest.raises(SpecError, match="below the cheapest candidate"):
        search(ev, net, CANDS, budget_bits=3.0)
    with pytest.raises(SpecError, match="not a block format"):
        search(ev, net, ["fp4_e2m1"], budget_bits=8)


def test_lut_table_sources():
    assert lut_table("mxfp4") == (1360 / 32, "measured dot_mxfp4")
    assert lut_table("bitmod_fp4")[1].startswith("est")
