"""``python -m mxhw.bench golden``: quantiser throughput per block format.

For every registered block format (the OCP MX ones first), quantise an N x N float32
Gaussian matrix (``numpy.random.default_rng(0)``; default N = 4096) along its last axis
with ``golden.quantize``, then dequantise it, timing each with ``time.perf_counter`` (the
best of ``--repeat`` runs, after a small warm-up that builds the format's tables).

Figures (seconds, wall clock, this machine): ``quantize_<fmt>_<N>_s`` and
``dequantize_<fmt>_<N>_s``, ``<fmt>`` being the format's shortest registered name
(``mxfp4`` for ``mxfp4_e2m1``). Throughput in Mvalues/s is printed alongside.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from . import machine_config, print_table, write_json

__all__ = ["run", "main", "default_formats"]

_OCP = ["mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e3m2", "mxfp6_e2m3", "mxfp4", "mxint8"]


def default_formats() -> list[str]:
    """The OCP formats, then every other registered block format, one name per descriptor
    (its shortest name)."""
    from .. import golden
    by_fmt = {}
    for n in golden.formats.block_names():
        d = golden.formats.get(n)
        if id(d) not in by_fmt or len(n) < len(by_fmt[id(d)]):
            by_fmt[id(d)] = n
    names = list(by_fmt.values())
    return [n for n in _OCP if n in names] + sorted(n for n in names if n not in _OCP)


def _best(fn, repeat):
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def run(size: int = 4096, formats=None, repeat: int = 1):
    """Measure; returns ``(figures, rows, config)``."""
    from .. import golden
    formats = default_formats() if formats is None else list(formats)
    for f in formats:  # bad names fail before any timing
        if not isinstance(golden.formats.get(f), golden.BlockFormat):
            raise KeyError(f"{f!r} is not a block format; block formats: "
                           f"{', '.join(golden.formats.block_names())}")
    x = np.random.default_rng(0).standard_normal((size, size), dtype=np.float32)
    figures, rows = {}, []
    n = x.size
    for f in formats:
        golden.quantize(x[:2, :64], f).dequantize()   # warm-up: decode/encode tables
        tq, q = _best(lambda: golden.quantize(x, f), repeat)
        td, _ = _best(q.dequantize, repeat)
        figures[f"quantize_{f}_{size}_s"] = float(f"{tq:.4g}")
        figures[f"dequantize_{f}_{size}_s"] = float(f"{td:.4g}")
        rows.append((f, f"{tq:.3f}", f"{n / tq / 1e6:.1f}", f"{td:.3f}", f"{n / td / 1e6:.1f}"))
    config = {**machine_config(), "suite": "golden", "size": size, "repeat": repeat,
              "input": f"{size}x{size} float32 standard normal, seed 0, quantised along axis -1"}
    return figures, rows, config


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mxhw.bench golden",
                                     description="Quantiser throughput per block format.")
    parser.add_argument("--json", metavar="FILE", help="write figures and configuration")
    parser.add_argument("--size", type=int, default=4096, metavar="N",
                        help="quantise an N x N matrix (default 4096)")
    parser.add_argument("--formats", metavar="F1,F2",
                        help="comma-separated block formats (default: all registered)")
    parser.add_argument("--repeat", type=int, default=1, metavar="R",
                        help="report the best of R runs (default 1)")
    args = parser.parse_args(argv)
    if args.size < 1:
        parser.error(f"--size must be a positive integer, not {args.size}")
    if args.repeat < 1:
        parser.error(f"--repeat must be a positive integer, not {args.repeat}")
    formats = args.formats.split(",") if args.formats else None
    try:
        figures, rows, config = run(args.size, formats, args.repeat)
    except KeyError as e:
        parser.error(str(e.args[0]))
    print(f"golden quantiser, {args.size}x{args.size} float32 "
          f"({config['machine']}, {config['cpus']} CPUs, Python {config['python']}, "
          f"NumPy {config['numpy']})")
    print_table(["format", "quantize s", "Mvalues/s", "dequantize s", "Mvalues/s"], rows)
    if args.json:
        write_json(args.json, figures, config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
