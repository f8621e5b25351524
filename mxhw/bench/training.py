"""``python -m mxhw.bench training``: a two-layer MLP trained in emulation, every GEMM in
a number scheme (issue #35, numerics).

The data: scikit-learn's digits (1797 8 x 8 images, 10 classes, shipped with the package),
pixels / 16, a stratified 80/20 split (seed 0). The model: ``64 -> hidden (ReLU) -> 10``,
He-normal weights (seed 0), zero biases, plain SGD with momentum, mini-batches drawn by a
seeded permutation each epoch, softmax cross-entropy. The output layer is padded to
:data:`OUT_PAD` columns whose weights stay exactly zero (their logits are left out of the
softmax, so their gradients are zero): every GEMM's K is then a multiple of the 1-D
block (32) and of the tiles' K runs.

Every GEMM of a training step runs in the scheme: forward ``Y = X W`` of both layers,
the output layer's input gradient ``dX = dY W^T``, and both weight gradients
``dW = X^T dY`` (the first layer's input gradient is not needed). Master weights, biases,
the optimiser, ReLU and softmax stay in float32. Schemes (:data:`SCHEMES`):

* ``mxsf_tile`` -- X, W and dY quantised once on 8 x 4 MXSF tiles; the transposed operands
  are ``q.T`` (the same codes re-indexed), ``golden.gemm`` with the chosen accumulation;
* ``mxfp8_e4m3`` -- OCP MXFP8 E4M3, 1-D blocks of 32 along K: X and dY along their rows'
  K axis, W along its column; a transposed operand (W^T, X^T) is re-quantised from the
  stored copy (``golden.requantize_transposed``), and dY, stored along N for the input
  gradient, is re-quantised along M for the weight gradient;
* ``fp32`` -- NumPy float32 matmuls.

Evaluation uses each scheme's forward pass. ``--plot FILE`` writes the loss curves (PNG,
matplotlib Agg). Figures, not pass/fail.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from .. import golden
from . import machine_config, print_table, write_json

__all__ = ["SCHEMES", "OUT_PAD", "ACCS", "Config", "Scheme", "scheme", "load_digits_split",
           "init_params", "forward", "train_step", "evaluate", "train", "gradient_error",
           "run", "plot", "main"]

#: Output columns of the last layer (10 classes, zero-padded).
OUT_PAD = 32
SCHEMES = ("mxsf_tile", "mxfp8_e4m3", "fp32")
ACCS = {"fp32": golden.FP32, "exact": golden.EXACT}


@dataclass(frozen=True)
class Config:
    """The experiment: data split, model, optimiser and accumulation."""

    hidden: int = 64
    batch: int = 32
    epochs: int = 15
    lr: float = 0.1
    momentum: float = 0.9
    seed: int = 0
    seeds: int = 3                   # runs with seeds seed, seed + 1, ... (same data split)
    acc: str = "fp32"
    schemes: tuple = SCHEMES
    train_limit: int | None = None   # use only the first n training samples (tests)

    def __post_init__(self):
        golden.params.check_int("hidden", self.hidden, 32)
        golden.params.check_int("batch", self.batch, 8)
        golden.params.check_int("epochs", self.epochs, 1)
        golden.params.check_int("seeds", self.seeds, 1)
        golden.params.check_choice("acc", self.acc, tuple(ACCS))
        for s in self.schemes:
            golden.params.check_choice("scheme", s, SCHEMES)
        if self.hidden % 32 or self.batch % 32:
            raise ValueError(f"hidden and batch must be multiples of 32 (the MXFP8 block "
                             f"along K), not {self.hidden} and {self.batch}")


# ---- the GEMMs of one scheme -------------------------------------------------------------

@dataclass
class Scheme:
    """How a scheme stores X, W and dY and computes the three products from the stored
    copies. ``stored`` operands are what the accelerator would hold: quantised once."""

    name: str
    acc: golden.Accumulation = field(default=golden.FP32)

    def store_x(self, x):
        """An activation (M x K), the A operand of the forward GEMM."""
        if self.name == "fp32":
            return np.asarray(x, np.float32)
        return golden.quantize(x, self.name, axis=1)

    def store_w(self, w):
        """A weight (K x N), the B operand of the forward GEMM."""
        if self.name == "fp32":
            return np.asarray(w, np.float32)
        return golden.quantize(w, self.name, axis=0)

    def store_dy(self, dy):
        """An output gradient (M x N), the A operand of the input-gradient GEMM."""
        return self.store_x(dy)

    def forward(self, x, w):
        """``Y = X W``."""
        if self.name == "fp32":
            return x @ w
        return golden.gemm(x, w, self.acc).astype(np.float32)

    def input_grad(self, dy, w):
        """``dX = dY W^T`` from the stored dY and W."""
        if self.name == "fp32":
            return dy @ w.T
        wt = w.T if self.name == "mxsf_tile" else golden.requantize_transposed(w)
        return golden.gemm(dy, wt, self.acc).astype(np.float32)

    def weight_grad(self, x, dy):
        """``dW = X^T dY`` from the stored X and dY."""
        if self.name == "fp32":
            return x.T @ dy
        if self.name == "mxsf_tile":
            return golden.gemm(x.T, dy, self.acc).astype(np.float32)
        xt = golden.requantize_transposed(x)                      # K x M, blocks along M
        dym = golden.quantize(dy.dequantize(), self.name, axis=0)  # M x N, blocks along M
        return golden.gemm(xt, dym, self.acc).astype(np.float32)


def scheme(name: str, acc="fp32") -> Scheme:
    """The :class:`Scheme` ``name`` (one of :data:`SCHEMES`) with accumulation ``acc``."""
    golden.params.check_choice("scheme", name, SCHEMES)
    return Scheme(name, ACCS[acc] if isinstance(acc, str) else acc)


# ---- data and model ----------------------------------------------------------------------

def load_digits_split(seed: int = 0):
    """scikit-learn's digits, pixels / 16 (float32), stratified 80/20:
    ``(x_train, y_train, x_test, y_test)``."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    return tuple(train_test_split(x, d.target, test_size=0.2, random_state=seed,
                                  stratify=d.target)[i] for i in (0, 2, 1, 3))


def init_params(n_in: int, hidden: int, n_out: int, seed: int = 0) -> dict:
    """He-normal W1 (n_in x hidden), W2 (hidden x OUT_PAD, columns >= n_out zero), zero
    biases; float32."""
    rng = np.random.default_rng(seed)
    w1 = rng.standard_normal((n_in, hidden)) * np.sqrt(2.0 / n_in)
    w2 = np.zeros((hidden, OUT_PAD))
    w2[:, :n_out] = rng.standard_normal((hidden, n_out)) * np.sqrt(2.0 / hidden)
    return {k: np.asarray(v, np.float32) for k, v in
            (("w1", w1), ("b1", np.zeros(hidden)), ("w2", w2), ("b2", np.zeros(OUT_PAD)))}


def _softmax_xent(logits, y, n_out):
    z = logits[:, :n_out].astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    lp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    loss = -lp[np.arange(len(y)), y].mean()
    p = np.exp(lp)
    p[np.arange(len(y)), y] -= 1.0
    dlogits = np.zeros(logits.shape, np.float32)
    dlogits[:, :n_out] = p / len(y)
    return float(loss), dlogits


def forward(s: Scheme, params: dict, x):
    """Logits of ``x`` and the stored operands the backward pass reuses."""
    qx, qw1 = s.store_x(x), s.store_w(params["w1"])
    pre = s.forward(qx, qw1) + params["b1"]
    h = np.maximum(pre, 0.0).astype(np.float32)
    qh, qw2 = s.store_x(h), s.store_w(params["w2"])
    logits = s.forward(qh, qw2) + params["b2"]
    return logits, (qx, pre, qh, qw2)


def train_step(s: Scheme, params: dict, x, y, n_out: int = 10):
    """Loss and gradients (a dict like ``params``) of one mini-batch; every GEMM in ``s``."""
    logits, (qx, pre, qh, qw2) = forward(s, params, x)
    loss, dlogits = _softmax_xent(logits, y, n_out)
    qd2 = s.store_dy(dlogits)
    dw2 = s.weight_grad(qh, qd2)
    dh = s.input_grad(qd2, qw2)
    dpre = np.where(pre > 0, dh, 0.0).astype(np.float32)
    qd1 = s.store_dy(dpre)
    dw1 = s.weight_grad(qx, qd1)
    return loss, {"w1": dw1, "b1": dpre.sum(0), "w2": dw2, "b2": dlogits.sum(0)}


def evaluate(s: Scheme, params: dict, x, y, n_out: int = 10, batch: int = 128) -> float:
    """Accuracy of the scheme's forward pass on ``(x, y)``."""
    hits = 0
    for i in range(0, len(x), batch):
        logits, _ = forward(s, params, x[i:i + batch])
        hits += int((logits[:, :n_out].argmax(1) == y[i:i + batch]).sum())
    return hits / len(x)


def train(name: str, cfg: Config, data=None, seed: int | None = None) -> dict:
    """Train one scheme with ``seed`` (weights and batch order; default ``cfg.seed``);
    returns per-step losses, per-epoch mean losses, accuracies and seconds."""
    s = scheme(name, cfg.acc)
    seed = cfg.seed if seed is None else seed
    xtr, ytr, xte, yte = load_digits_split(cfg.seed) if data is None else data
    if cfg.train_limit is not None:
        xtr, ytr = xtr[:cfg.train_limit], ytr[:cfg.train_limit]
    params = init_params(xtr.shape[1], cfg.hidden, 10, seed)
    vel = {k: np.zeros_like(v) for k, v in params.items()}
    rng = np.random.default_rng(seed + 1000)
    steps, epochs = [], []
    t0 = time.perf_counter()
    for _ in range(cfg.epochs):
        perm = rng.permutation(len(xtr))
        n = len(perm) - len(perm) % cfg.batch  # whole batches only
        ep = []
        for i in range(0, n, cfg.batch):
            idx = perm[i:i + cfg.batch]
            loss, grads = train_step(s, params, xtr[idx], ytr[idx])
            for k in params:
                vel[k] = (cfg.momentum * vel[k] - cfg.lr * grads[k]).astype(np.float32)
                params[k] = (params[k] + vel[k]).astype(np.float32)
            ep.append(loss)
        steps += ep
        epochs.append(float(np.mean(ep)))
    return {"scheme": name, "seed": seed, "step_loss": steps, "epoch_loss": epochs,
            "test_accuracy": evaluate(s, params, xte, yte),
            "train_accuracy": evaluate(s, params, xtr, ytr),
            "seconds": time.perf_counter() - t0, "params": params}


def gradient_error(name: str, cfg: Config, data=None) -> dict:
    """Relative error ``|dW - dW_fp32| / |dW_fp32|`` (Frobenius) of the scheme's weight
    gradients against FP32's, at the initial weights on the first training batch."""
    xtr, ytr = (load_digits_split(cfg.seed) if data is None else data)[:2]
    params = init_params(xtr.shape[1], cfg.hidden, 10, cfg.seed)
    xb, yb = xtr[:cfg.batch], ytr[:cfg.batch]
    _, g = train_step(scheme(name, cfg.acc), params, xb, yb)
    _, ref = train_step(scheme("fp32"), params, xb, yb)
    return {k: float(np.linalg.norm(g[k] - ref[k]) / np.linalg.norm(ref[k]))
            for k in ("w1", "w2")}


def run(cfg: Config) -> list:
    """Train every scheme of ``cfg`` with each seed on the same data; one summary dict per
    scheme: the runs, mean/min/max test accuracy, mean final loss, gradient errors."""
    data = load_digits_split(cfg.seed)
    out = []
    for n in cfg.schemes:
        runs = [train(n, cfg, data, cfg.seed + i) for i in range(cfg.seeds)]
        acc = [r["test_accuracy"] for r in runs]
        out.append({"scheme": n, "runs": runs, "test_accuracy": float(np.mean(acc)),
                    "test_accuracy_min": min(acc), "test_accuracy_max": max(acc),
                    "train_accuracy": float(np.mean([r["train_accuracy"] for r in runs])),
                    "final_loss": float(np.mean([r["epoch_loss"][-1] for r in runs])),
                    "epoch_loss": np.mean([r["epoch_loss"] for r in runs], 0).tolist(),
                    "step_loss": np.mean([r["step_loss"] for r in runs], 0).tolist(),
                    "grad_error": gradient_error(n, cfg, data),
                    "seconds": sum(r["seconds"] for r in runs)})
    return out


def plot(results, path, cfg: Config):
    """Loss curves (per-step loss, smoothed over an epoch's steps) to a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=100)
    for r in results:
        loss = np.asarray(r["step_loss"])
        per = max(1, len(loss) // cfg.epochs)
        k = max(1, per // 4)
        smooth = np.convolve(loss, np.ones(k) / k, mode="valid")
        ax.plot(np.arange(len(smooth)) / per + k / per, smooth,
                label=f"{r['scheme']} (test acc {100 * r['test_accuracy']:.1f}%, mean of "
                      f"{cfg.seeds})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (cross-entropy)")
    ax.set_yscale("log")
    ax.set_title(f"2-layer MLP on digits, every GEMM in the scheme ({cfg.acc} accumulation)",
                 fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m mxhw.bench training",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=Config.epochs)
    p.add_argument("--hidden", type=int, default=Config.hidden)
    p.add_argument("--batch", type=int, default=Config.batch)
    p.add_argument("--lr", type=float, default=Config.lr)
    p.add_argument("--seed", type=int, default=Config.seed)
    p.add_argument("--seeds", type=int, default=Config.seeds,
                   help="runs per scheme, seeds SEED, SEED+1, ... (default %(default)s)")
    p.add_argument("--acc", choices=tuple(ACCS), default=Config.acc,
                   help="golden accumulation of the MX GEMMs (default fp32)")
    p.add_argument("--schemes", default=",".join(SCHEMES),
                   help=f"comma-separated subset of {', '.join(SCHEMES)}")
    p.add_argument("--train-limit", type=int, default=None,
                   help="train on the first N training samples only (smoke runs)")
    p.add_argument("--plot", metavar="PNG", help="write the loss curves to PNG")
    p.add_argument("--json", metavar="FILE", help="write the figures as JSON")
    a = p.parse_args(argv)
    try:
        cfg = Config(hidden=a.hidden, batch=a.batch, epochs=a.epochs, lr=a.lr, seed=a.seed,
                     seeds=a.seeds,
                     acc=a.acc, schemes=tuple(a.schemes.split(",")),
                     train_limit=a.train_limit)
    except (TypeError, ValueError) as e:
        p.error(str(e))
    results = run(cfg)
    print(f"2-layer MLP 64-{cfg.hidden}-10 on scikit-learn digits, {cfg.epochs} epochs, "
          f"batch {cfg.batch}, SGD lr {cfg.lr} momentum {cfg.momentum}, seeds "
          f"{cfg.seed}..{cfg.seed + cfg.seeds - 1} (mean; test acc range min..max); "
          f"MX GEMMs with {cfg.acc} accumulation; dW err: weight-gradient error vs FP32 at "
          f"init (first batch)")
    print_table(["scheme", "final train loss", "train acc %", "test acc %",
                 "test acc range %", "dW1 err", "dW2 err", "seconds"],
                [[r["scheme"], f"{r['final_loss']:.4f}",
                  f"{100 * r['train_accuracy']:.2f}", f"{100 * r['test_accuracy']:.2f}",
                  f"{100 * r['test_accuracy_min']:.2f}..{100 * r['test_accuracy_max']:.2f}",
                  f"{r['grad_error']['w1']:.2e}", f"{r['grad_error']['w2']:.2e}",
                  f"{r['seconds']:.1f}"] for r in results])
    if a.plot:
        plot(results, a.plot, cfg)
        print(f"loss curves: {a.plot}")
    if a.json:
        figs = {}
        for r in results:
            n = r["scheme"]
            figs[f"{n}.test_accuracy"] = r["test_accuracy"]
            figs[f"{n}.test_accuracy_min"] = r["test_accuracy_min"]
            figs[f"{n}.test_accuracy_max"] = r["test_accuracy_max"]
            figs[f"{n}.final_loss"] = r["final_loss"]
            figs[f"{n}.grad_error_w1"] = r["grad_error"]["w1"]
            figs[f"{n}.grad_error_w2"] = r["grad_error"]["w2"]
            figs[f"{n}.train_accuracy"] = r["train_accuracy"]
            figs[f"{n}.seconds"] = r["seconds"]
            for i, v in enumerate(r["epoch_loss"]):
                figs[f"{n}.epoch_loss.{i + 1}"] = v
        config = {**machine_config(), "hidden": cfg.hidden, "batch": cfg.batch,
                  "epochs": cfg.epochs, "lr": cfg.lr, "momentum": cfg.momentum,
                  "seed": cfg.seed, "seeds": cfg.seeds, "acc": cfg.acc,
                  "train_limit": cfg.train_limit,
                  "data": "sklearn.datasets.load_digits, stratified 80/20"}
        write_json(a.json, figs, config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
