"""Format accuracy tables: ``python -m mxhw.golden.compare``.

For each requested format: bits per value (scale, mode and zero-point bits included,
:meth:`BlockFormat.bits_per_value_for` the tensor's size: a block format's scale is
amortised over its block, a per-tensor format's (``fp8_e4m3_pt``, ``fp8_e5m2_pt``: one FP32
scale) over the whole tensor), SQNR in dB (``10 log10(sum x**2 / sum (x - q)**2)``)
and the largest absolute error, on a given tensor (``--tensor file.npy``) or on synthetic
ones. Synthetic tensors (seed ``--seed``, 0 by default; 256 x 1024, quantised along the last
axis, i.e. the input channel of a weight ``W[out, in]``):

* ``gaussian``: standard normal;
* ``laplace``: Laplace, scale 1;
* ``student_t_outliers``: Student t with 3 degrees of freedom, and 4 input channels
  (columns) multiplied by 20 (outlier channels).

Every registered block format is accepted (``--list`` prints them with their bits per
value), among them NVFP4 (``nvfp4``: its FP32 per-tensor scale amortised over the tensor),
MX+ (``mxfp4_plus``, ``mxfp6_plus``, ``mxfp8_plus``) and the OCP scale-rounding variants
of every OCP MX format (``mxfp8_e4m3_rceil``, ``mxfp4_e2m1_ceil``, ``mxfp6_e2m3_even``, ...:
``<format>_{ceil,even,rceil}``; the plain name is the OCP floor rule).

``ant4`` and ``ant8`` name ANT's per-tensor selection (:func:`golden.ant.select` with 4 or
8 bits; one FP16 scale and the type bits amortised over the tensor). ``--plot FILE.png``
draws SQNR against bits per value (needs matplotlib, imported only then). ``--wide``
prints one row per format instead (bits per value, then the SQNR on each tensor; the
bits per value of the first tensor, which is every tensor's when they have one size, as
the synthetic ones do).
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys

import numpy as np

from . import formats as _f
from .quantize import quantize, to_numpy

__all__ = ["synthetic", "evaluate", "table", "wide", "main"]

#: Name accepted besides the registered block formats.
PSEUDO = ("ant4", "ant8")


def synthetic(seed: int = 0, shape=(256, 1024)) -> dict:
    """The documented synthetic tensors, by name."""
    rng = np.random.default_rng(seed)
    t = rng.standard_t(3, size=shape)
    cols = rng.choice(shape[-1], size=4, replace=False)
    t[:, cols] *= 20.0
    return {"gaussian": rng.standard_normal(shape), "laplace": rng.laplace(size=shape),
            "student_t_outliers": t}


def _check_name(name):
    if name in PSEUDO:
        return
    try:
        f = _f.get(name)
    except KeyError:
        raise ValueError(f"unknown format {name!r}; use a block format "
                         f"({', '.join(_f.block_names())}) or one of {PSEUDO}") from None
    if not isinstance(f, _f.BlockFormat):
        raise ValueError(f"{name!r} is an element format; compare takes block formats")


def evaluate(x, name: str) -> tuple[float, float, float]:
    """(bits per value, SQNR dB, max abs error) of ``name`` on ``x`` (axis -1)."""
    _check_name(name)
    x = to_numpy(x)
    if name in PSEUDO:
        from .ant import select
        q = select(x, bits=int(name[3:]))
        bpv = q.fmt.bits_per_value_for(x.size)
        d = q.dequantize().reshape(x.shape)
    else:
        f = _f.get(name)
        bpv = f.bits_per_value_for(x.size)
        d = quantize(x, f, axis=-1).dequantize()
    err = x - d
    noise = float((err ** 2).sum())
    sqnr = float("inf") if noise == 0 else 10 * np.log10(float((x ** 2).sum()) / noise)
    return bpv, sqnr, float(np.abs(err).max())


def table(tensors: dict, names) -> tuple[str, list]:
    """A Markdown table (str) and the rows (tensor, format, bpv, sqnr, maxerr)."""
    for n in names:
        _check_name(n)
    rows = [(tn, n, *evaluate(x, n)) for tn, x in tensors.items() for n in names]
    lines = ["| tensor | format | bits/value | SQNR (dB) | max abs err |",
             "|---|---|---:|---:|---:|"]
    lines += [f"| {t} | {n} | {b:.4f} | {s:.2f} | {m:.4g} |" for t, n, b, s, m in rows]
    return "\n".join(lines), rows


def wide(rows) -> str:
    """The rows of :func:`table` as a Markdown table with one row per format: bits per
    value (on the first tensor) and one SQNR column per tensor."""
    tns = list(dict.fromkeys(r[0] for r in rows))
    fmts = list(dict.fromkeys(r[1] for r in rows))
    by = {(r[0], r[1]): r for r in rows}
    lines = ["| format | bits/value | " + " | ".join(f"{t} SQNR (dB)" for t in tns) + " |",
             "|---|---:|" + "---:|" * len(tns)]
    for n in fmts:
        sq = " | ".join(f"{by[t, n][3]:.2f}" for t in tns)
        lines.append(f"| {n} | {by[tns[0], n][2]:.4f} | {sq} |")
    return "\n".join(lines)


def _plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for tn in dict.fromkeys(r[0] for r in rows):
        pts = [(r[2], r[3], r[1]) for r in rows if r[0] == tn]
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], label=tn)
        for b, s, n in pts:
            ax.annotate(n, (b, s), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("bits per value")
    ax.set_ylabel("SQNR (dB)")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m mxhw.golden.compare", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--formats", default="mxfp4,mxsf,bitmod_fp4,mxint4",
                   help="comma-separated block format names (and ant4, ant8)")
    p.add_argument("--tensor", help="a .npy file to quantise along its last axis")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic tensors")
    p.add_argument("--plot", help="write SQNR vs bits per value to this PNG file")
    p.add_argument("--wide", action="store_true",
                   help="one row per format, one SQNR column per tensor")
    p.add_argument("--list", action="store_true",
                   help="list the block formats (and their bits per value) and exit")
    a = p.parse_args(argv)
    if a.list:
        for n in _f.block_names():
            f = _f.get(n)
            bpv = "per tensor" if f.per_tensor else f"{f.bits_per_value:.4f}"
            print(f"{n}\t{bpv}")
        print("\n".join(f"{n}\tper tensor" for n in PSEUDO))
        return 0
    names = [n.strip() for n in a.formats.split(",") if n.strip()]
    if not names:
        p.error("--formats: give at least one format name")
    try:
        for n in names:
            _check_name(n)
    except ValueError as e:
        p.error(f"--formats: {e}")
    if a.plot:
        folder = os.path.dirname(os.path.abspath(a.plot))
        if not os.path.isdir(folder):
            _fail(f"--plot: folder {folder!r} does not exist")
    if a.tensor:
        x = _load_tensor(a.tensor)
        if isinstance(x, str):
            _fail(x)
        tensors = {a.tensor: x}
    else:
        tensors = synthetic(a.seed)
    try:
        text, rows = table(tensors, names)
    except (ValueError, TypeError) as e:
        _fail(str(e).splitlines()[0])
    print(wide(rows) if a.wide else text)
    if a.plot:
        try:
            _plot(rows, a.plot)
        except OSError as e:
            _fail(f"--plot: cannot write {a.plot!r}: {e.strerror or e}")
        print(f"plot written to {a.plot}")
    return 0


_PROG = "python -m mxhw.golden.compare"


def _fail(msg):
    """A CLI error: one line on stderr, exit status 2."""
    print(f"{_PROG}: error: {msg}", file=sys.stderr)
    raise SystemExit(2)


def _load_tensor(path):
    """The ``--tensor`` file as a non-empty, at least 1-D real array, or an error (str)."""
    try:
        x = np.load(path)
    except FileNotFoundError:
        return f"--tensor: no such file {path!r}"
    except (OSError, ValueError, EOFError, pickle.UnpicklingError) as e:
        return f"--tensor: {path!r} is not a .npy file ({type(e).__name__})"
    if not isinstance(x, np.ndarray):
        return f"--tensor: {path!r} holds several arrays (.npz); give one .npy array"
    if x.ndim == 0:
        return f"--tensor: {path!r} holds a 0-d array; give at least one axis"
    if x.size == 0:
        return f"--tensor: {path!r} holds an empty array of shape {x.shape}"
    return x


if __name__ == "__main__":
    sys.exit(main())
