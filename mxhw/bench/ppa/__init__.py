"""``python -m mxhw.bench ppa``: area and Fmax of every block, from Yosys and nextpnr.

Each configuration (:data:`CONFIGS`) is wrapped in :class:`Harness`, synthesised for
ECP5 (LFE5U-85F, ULX3S) and Xilinx 7-series (xc7a35t, Arty A7-35T) and placed and routed
with nextpnr-ecp5; ``soc_ulx3s`` is the default ULX3S SoC through :func:`mxhw.build.build`.
Results are cached by RTL hash under ``~/.cache/mxhw/ppa`` (``MXHW_PPA_CACHE``,
``--cache``). What is measured and how it is counted: ``docs/build.md``.

Modules: :mod:`.configs` (the configuration registry and every constructor call),
:mod:`.harness` (the registered wrapper), :mod:`.runner` (tool runs and the cache),
:mod:`.report` (figures, table, report and plots); this module is the command line.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from .. import print_table, write_json
from .configs import (ARRAY_ACC, ARRAY_FORMATS, ARRAY_SIZES, BITSERIAL_ARRAYS, CONFIGS,
                      LARGE_ARRAY, MUL_PAIRS, MX_FORMATS, QUICK, REQUANT_PIPELINE, SOC, Config,
                      element_name, is_large, maker, select)
from .harness import DUT, TOP, Harness, harness_rtlil, strip_src
from . import runner
from .report import FIGURES, HEADERS, figures, run_config_info, table_rows, write_report
from .runner import (ECP5_CAPACITY, ECP5_NEXTPNR, ECP5_PART, HARNESS_VERSION, PNR_SEED,
                     REQUEST_MHZ, SCRIPTS, XC7_PART, check_seeds, default_cache,
                     ecp5_figures, place_and_route, run, run_config, run_soc, run_task, synth,
                     tool_versions, xc7_figures)

__all__ = [
    # configs
    "Config", "CONFIGS", "QUICK", "SOC", "MUL_PAIRS", "MX_FORMATS", "ARRAY_FORMATS",
    "ARRAY_SIZES", "ARRAY_ACC", "REQUANT_PIPELINE", "BITSERIAL_ARRAYS", "LARGE_ARRAY",
    "select", "is_large", "maker", "element_name",
    # harness
    "Harness", "harness_rtlil", "strip_src", "TOP", "DUT",
    # runner
    "ECP5_PART", "ECP5_NEXTPNR", "XC7_PART", "REQUEST_MHZ", "HARNESS_VERSION",
    "ECP5_CAPACITY", "SCRIPTS", "PNR_SEED", "tool_versions", "default_cache",
    "ecp5_figures", "xc7_figures", "synth", "place_and_route", "check_seeds", "run_config",
    "run_soc", "run_task", "run",
    # report
    "FIGURES", "HEADERS", "figures", "table_rows", "run_config_info", "write_report",
    # the command line
    "main"]

def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m mxhw.bench ppa", description=__doc__.split(
        "\n")[0], epilog=f"configurations: {', '.join([*CONFIGS, SOC])}")
    p.add_argument("--json", metavar="FILE")
    p.add_argument("--quick", action="store_true",
                   help=f"only {', '.join(QUICK)}")
    p.add_argument("--only", metavar="REGEX",
                   help="configurations whose name matches REGEX (re.search)")
    p.add_argument("--large", action="store_true",
                   help=f"include the {LARGE_ARRAY}x{LARGE_ARRAY} arrays (slow)")
    p.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1,
                   help="parallel processes (default: the CPU count)")
    p.add_argument("--cache", metavar="DIR", help=f"result cache (default {default_cache()})")
    p.add_argument("--rerun", action="store_true", help="ignore cached results")
    p.add_argument("--report", metavar="DIR", help="write DIR/ppa.md and PNG plots")
    p.add_argument("--seeds", type=int, default=1, metavar="N",
                   help="place and route each block with nextpnr seeds 1..N and report the "
                        "median Fmax (default 1; the SoC always uses seed 1)")
    p.add_argument("--synth-only", action="store_true",
                   help="ECP5 synthesis only: no place and route (no Fmax), no xc7; the "
                        "figures are labelled synth_only")
    p.add_argument("--list", action="store_true", help="list the configurations and exit")
    args = p.parse_args(argv)
    if args.seeds < 1:
        p.error(f"--seeds must be at least 1, not {args.seeds}")
    try:
        names = select(args.only, args.quick, args.large)
    except ValueError as e:
        p.error(str(e))
    if args.synth_only and SOC in names:
        if args.only is None:
            p.error("--synth-only does not apply to the SoC: select blocks with --only")
        names.remove(SOC)
    if args.list:
        print("\n".join(names))
        return 0
    if args.jobs < 1:
        p.error(f"-j must be at least 1, not {args.jobs}")
    t0 = time.monotonic()
    print(f"ppa: {len(names)} configuration(s) on {args.jobs} process(es)", flush=True)

    def progress(r):
        how = "cached" if r["cached"] and all(r["cached"].values()) else f"{r['seconds']} s"
        err = f"  FAILED: {', '.join(r['errors'])}" if r["errors"] else ""
        print(f"  {r['name']}: {how}{err}", flush=True)
    seeds = tuple(range(1, args.seeds + 1))
    results = run(names, args.jobs, args.cache, args.rerun, progress, seeds,
                  not args.synth_only)
    wall = time.monotonic() - t0
    print_table(HEADERS, table_rows(results))
    print(f"wall time {wall:.0f} s")
    config = run_config_info(runner.tool_versions())
    config.update({"jobs": args.jobs, "wall_s": round(wall, 1), "quick": args.quick,
                   "nextpnr_seeds": list(seeds), "soc_nextpnr_seed": PNR_SEED,
                   "only": args.only, "synth_only": args.synth_only,
                   "failed": {r["name"]: sorted(r["errors"]) for r in results if r["errors"]}})
    for r in results:
        for t, msg in r["errors"].items():
            print(f"ppa: {r['name']} ({t}) failed:\n{msg}", file=sys.stderr)
    if args.json:
        write_json(args.json, figures(results), config)
    if args.report:
        for path in write_report(results, args.report, config):
            print(f"wrote {path}")
    return 0
