"""``python -m mxhw.bench SUITE [options]``: figures, never pass/fail.

Each suite is a module of this package with a ``main(argv) -> int`` that parses its own
options (every suite takes ``--json FILE``), prints a readable table and, with ``--json``,
writes a flat JSON object of name -> number plus a ``"config"`` entry (see
:func:`write_json`). Adding a suite is one line in :data:`SUITES`::

    SUITES["array"] = _suite("array")      # runs mxhw.bench.array.main(argv)

Suites are imported only when run, so one suite's dependencies never slow down another.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import sys

from ..lib.params import check_number

__all__ = ["SUITES", "main", "machine_config", "write_json", "print_table"]


def _suite(module: str):
    """A SUITES entry running ``mxhw.bench.<module>.main(argv)``, imported on first use."""
    def run(argv):
        return importlib.import_module(f"{__name__}.{module}").main(argv)
    run.__name__ = run.__qualname__ = f"run_{module}"
    run.__doc__ = f"Run the {module!r} suite (mxhw.bench.{module}.main)."
    return run


#: Suite name -> callable taking the remaining command-line arguments, returning an exit
#: status. Keep the names lower-case; ``python -m mxhw.bench --help`` lists them.
SUITES = {
    "golden": _suite("golden"),   # quantiser throughput per block format
    "sim": _suite("sim"),         # simulated cycles/s per simulation back end
    "array": _suite("array"),     # systolic-array utilisation on a GEMM (simulated)
    "bitserial": _suite("bitserial"),  # bit-serial GEMV cycles per precision (simulated)
    "ppa": _suite("ppa"),         # LUT/FF/DSP/BRAM and Fmax per block (Yosys, nextpnr)
}


def machine_config() -> dict:
    """The configuration every suite records: machine, OS, CPU count, Python, NumPy."""
    import numpy as np
    try:
        load = round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        load = None
    return {
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "load_average_1min": load,
    }


def write_json(path, figures: dict, config: dict):
    """Write ``{**figures, "config": config}``; figures must be a flat name -> number map."""
    for k, v in figures.items():
        try:
            if k == "config":
                raise TypeError("the configuration is not a figure")
            check_number(f"figure {k!r}", v)
        except TypeError:
            raise ValueError(f"figure {k!r} must be a finite number, not {v!r}") from None
    with open(path, "w") as f:
        json.dump({**figures, "config": config}, f, indent=2, sort_keys=False)
        f.write("\n")


def print_table(headers, rows, file=None):
    """Print ``rows`` (sequences of cells) under ``headers``, columns aligned."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    out = file or sys.stdout
    for j, r in enumerate(cells):
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(r, widths))), file=out)
        if j == 0:
            print("  ".join("-" * w for w in widths), file=out)


def _usage() -> str:
    return ("usage: python -m mxhw.bench SUITE [--json FILE] [suite options]\n"
            f"suites: {', '.join(sorted(SUITES))}\n"
            "`python -m mxhw.bench SUITE --help` lists a suite's options.")


def main(argv=None) -> int:
    """Dispatch ``argv[0]`` (a suite name) with the remaining arguments."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage(), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in SUITES:
        print(f"mxhw.bench: unknown suite {name!r}; suites: {', '.join(sorted(SUITES))}",
              file=sys.stderr)
        return 2
    status = SUITES[name](rest)
    return 0 if status is None else int(status)
