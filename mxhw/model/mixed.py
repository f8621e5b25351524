"""Mixed-precision search (MASE-style): per-group sensitivity, then a greedy search under
a budget, checked against every uniform assignment within the budget."""

from __future__ import annotations

import re

import torch.nn as nn

from .. import golden
from .quant import MXLinear
from .spec import Spec, SpecError, bits_per_value

__all__ = ["LUT_PER_MAC", "lut_table", "linear_groups", "sensitivity", "search",
           "plot_pareto"]

#: ECP5 LUTs per MAC of each format's 32-lane block dot unit (``dot_<fmt>``: LUT4-eq. /
#: 32, at its default pipeline; the output buffer's few LUT RAM cells not counted).
#: MXFP4, MXFP6 E3M2, MXFP8 E4M3 and MXINT8 as measured for issue #33 (docs/components.md);
#: MXFP6 E2M3 and MXFP8 E5M2 were measured before its area passes (docs/ppa/ppa.md, pipeline
#: 2) and are high by about a quarter. Formats without a measured dot unit are estimates
#: (the measured format with the same element width), marked ``est``.
LUT_PER_MAC = {
    "mxfp4_e2m1": (1360 / 32, "measured dot_mxfp4"),
    "mxfp6_e2m3": (3821 / 32, "measured dot_mxfp6_e2m3 (pipeline 2, before #33)"),
    "mxfp6_e3m2": (3370 / 32, "measured dot_mxfp6_e3m2"),
    "mxfp8_e4m3": (5926 / 32, "measured dot_mxfp8_e4m3"),
    "mxfp8_e5m2": (13045 / 32, "measured dot_mxfp8_e5m2 (pipeline 2, before #33)"),
    "mxint8": (638 / 32, "measured dot_mxint8 (+1 DSP per MAC)"),
}
_FLOAT_LUT = 1000.0  # an FP32 MAC: not measured, a placeholder that keeps float costly


def lut_table(fmt) -> tuple[float, str]:
    """(LUT per MAC, source) for a block format name or 'float'."""
    if fmt is None or fmt == "float":
        return _FLOAT_LUT, "assumed (FP32 MAC, not measured)"
    f = golden.formats.get(fmt)
    if f.name in LUT_PER_MAC:
        return LUT_PER_MAC[f.name]
    bits = max(c.bits for c in f.candidates)
    near = {4: "mxfp4_e2m1", 3: "mxfp4_e2m1", 2: "mxfp4_e2m1", 5: "mxfp6_e2m3",
            6: "mxfp6_e2m3", 7: "mxfp8_e4m3", 8: "mxfp8_e4m3"}.get(bits, "mxfp8_e4m3")
    if f.name.startswith("mxint") and bits == 8:
        near = "mxint8"
    return LUT_PER_MAC[near][0], f"est (as {near})"


def linear_groups(model, by="layer") -> dict[str, list[str]]:
    """Linear layers grouped for the search: ``by="layer"`` one group each, ``"role"``
    the same layer role across blocks (digits in the name replaced by ``*``)."""
    names = [n for n, m in model.named_modules() if isinstance(m, (nn.Linear, MXLinear))]
    if by not in ("layer", "role"):
        raise SpecError(f"group by 'layer' or 'role', not {by!r}")
    out: dict[str, list[str]] = {}
    for n in names:
        key = n if by == "layer" else re.sub(r"(?<=\.)\d+(?=\.)", "*", n)
        out.setdefault(key, []).append(n)
    return out


def _params(model):
    return {n: m.in_features * m.out_features for n, m in model.named_modules()
            if isinstance(m, (nn.Linear, MXLinear))}


def _cost(assign, groups, params, fmt_cost):
    tot = sum(params.values())
    return sum(fmt_cost(assign.get(g)) * params[n] for g, ns in groups.items()
               for n in ns) / tot


def _spec(assign, groups, a=None, acc="fp32"):
    d = {}
    for g, f in assign.items():
        if f is None:
            continue
        for n in groups[g]:
            d[n] = {"w": f, "a": a, "acc": acc}
    return Spec.from_dict(d)


def sensitivity(evaluate_fn, model, candidates, groups, key="cos_mean", a=None, acc="fp32",
                progress=None):
    """``{group: {fmt: drop}}``: the metric's drop from the float model when only that group
    is quantised to ``fmt``. ``evaluate_fn(spec) -> dict``."""
    out = {}
    for g in groups:
        out[g] = {}
        for f in candidates:
            r = evaluate_fn(_spec({g: f}, groups, a, acc))
            out[g][f] = 1.0 - r[key]
            if progress:
                progress(f"sensitivity {g} {f}: {r[key]:.5f}")
    return out


def search(evaluate_fn, model, candidates, budget_bits=None, budget_luts=None, by="layer",
           key="cos_mean", a=None, acc="fp32", progress=None, sens=None):
    """Greedy mixed-precision search under a budget; see docs/model.md.

    Start every group at the cheapest candidate, then repeatedly upgrade the group whose
    move buys the largest sensitivity reduction per unit of cost, while within budget.
    The greedy result is evaluated, and so is every uniform assignment within the budget;
    the best by the metric is returned, so the result is never worse than the best uniform
    one. Returns a dict: ``spec``, ``assignment``, ``metrics``, ``bits``, ``luts``,
    ``uniform`` (per format: metrics, bits, luts, within budget), ``points`` (every
    evaluated assignment, for the Pareto plot), ``sensitivity``.
    """
    if (budget_bits is None) == (budget_luts is None):
        raise SpecError("give exactly one budget: budget_bits or budget_luts")
    cands = []
    for c in candidates:
        f = golden.formats.get(c)
        if not isinstance(f, golden.BlockFormat):
            raise SpecError(f"candidate {c!r} is not a block format")
        cands.append(c)
    if not cands:
        raise SpecError("no candidate formats")
    groups = linear_groups(model, by)
    params = _params(model)
    bits_of = lambda f: 32.0 if f is None else bits_per_value(f)
    luts_of = lambda f: lut_table(f)[0]
    cost_of = bits_of if budget_bits is not None else luts_of
    budget = budget_bits if budget_bits is not None else budget_luts
    measure = lambda asg: (_cost(asg, groups, params, bits_of),
                           _cost(asg, groups, params, luts_of))
    order = sorted(cands, key=cost_of)
    start = {g: order[0] for g in groups}
    if _cost(start, groups, params, cost_of) > budget + 1e-12:
        raise SpecError(f"budget {budget} is below the cheapest candidate "
                        f"({order[0]}: {_cost(start, groups, params, cost_of):.3f})")
    if sens is None:
        sens = sensitivity(evaluate_fn, model, cands, groups, key, a, acc, progress)
    asg = dict(start)
    trail = [dict(asg)]
    while True:
        best = None
        cur = _cost(asg, groups, params, cost_of)
        for g in groups:
            for f in cands:
                gain = sens[g][asg[g]] - sens[g][f]
                extra = sum(params[n] for n in groups[g]) * (cost_of(f) - cost_of(asg[g]))
                if gain <= 0 or extra <= 0:
                    continue
                new = cur + extra / sum(params.values())
                if new > budget + 1e-12:
                    continue
                ratio = gain / extra
                if best is None or ratio > best[0]:
                    best = (ratio, g, f)
        if best is None:
            break
        asg[best[1]] = best[2]
        trail.append(dict(asg))
    points = []

    def run(assign, label):
        r = evaluate_fn(_spec(assign, groups, a, acc))
        b, l = measure(assign)
        p = {"label": label, "metrics": r, "bits": b, "luts": l, "assignment": dict(assign)}
        points.append(p)
        if progress:
            progress(f"{label}: {key} {r[key]:.5f} at {b:.3f} bits/weight, {l:.1f} LUT/MAC")
        return p

    # a few points along the greedy path (for the front), always its end
    idx = sorted({0, len(trail) - 1, *range(0, len(trail), max(1, len(trail) // 4))})
    for i in idx:
        run(trail[i], f"greedy step {i}")
    greedy = points[-1]
    uniform = {}
    for f in cands:
        u = run({g: f for g in groups}, f"uniform {f}")
        uniform[f] = dict(u, within=(cost_of(f) <= budget + 1e-12))
    best = greedy
    for f, u in uniform.items():
        if u["within"] and u["metrics"][key] > best["metrics"][key]:
            best = u
    return {"spec": _spec(best["assignment"], groups, a, acc), "assignment": best["assignment"],
            "metrics": best["metrics"], "bits": best["bits"], "luts": best["luts"],
            "source": best["label"], "uniform": uniform, "points": points,
            "sensitivity": sens, "groups": groups, "key": key, "budget": budget,
            "budget_kind": "bits" if budget_bits is not None else "luts"}


def plot_pareto(result, path):
    """Metric vs bits per weight of every evaluated point, coloured by estimated LUT/MAC;
    the Pareto front (higher metric, fewer bits) joined by a line; PNG (Agg)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    key = result["key"]
    pts = result["points"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    sc = ax.scatter([p["bits"] for p in pts], [p["metrics"][key] for p in pts],
                    c=[p["luts"] for p in pts], cmap="viridis",
                    marker="o", s=50, edgecolors="k")
    for p in pts:
        if p["label"].startswith("uniform"):
            ax.annotate(p["label"][8:], (p["bits"], p["metrics"][key]), fontsize=7,
                        xytext=(3, 3), textcoords="offset points")
    front, best = [], -float("inf")
    for p in sorted(pts, key=lambda p: (p["bits"], -p["metrics"][key])):
        if p["metrics"][key] > best:
            front.append(p)
            best = p["metrics"][key]
    ax.plot([p["bits"] for p in front], [p["metrics"][key] for p in front], "r--", lw=1,
            label="Pareto front")
    ax.scatter([result["bits"]], [result["metrics"][key]], marker="*", s=250, c="red",
               label="search result", zorder=5)
    if result["budget_kind"] == "bits":
        ax.axvline(result["budget"], color="gray", ls=":", label="budget")
    ax.set_xlabel("average bits per weight")
    ax.set_ylabel(key)
    fig.colorbar(sc, label="estimated LUT per MAC (ECP5)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
