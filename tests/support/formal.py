"""Helpers for tests/formal: run one proof (or a mutant's) in a pytest tmp folder."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from mxhw.formal.flow import DEFAULT_SOLVER, Proof, run_proof, solver_available

__all__ = ["prove", "need_tools", "caught", "pass_streams"]


def need_tools(solver=DEFAULT_SOLVER):
    """Skip unless yowasp-sby and ``solver`` are installed (pip install -e '.[formal]')."""
    if not (Path(sys.executable).parent / "yowasp-sby").exists() and not shutil.which("yowasp-sby"):
        pytest.skip("yowasp-sby not installed")
    if not solver_available(solver):
        pytest.skip(f"solver {solver} not installed")


def prove(tmp_path, name, harness, *, mode="bmc", depth=1, timeout=300, solver=None):
    """Run ``harness`` (an Elaboratable with ``ports()``) as a proof; return the Result."""
    need_tools(solver or DEFAULT_SOLVER)
    proof = Proof(name, type(harness).__name__, name, lambda: (harness, harness.ports()),
                  mode=mode, depth=depth, timeout=timeout)
    return run_proof(proof, solver=solver, root=tmp_path)


def caught(r):
    """Assert that a mutant's proof failed with a counterexample trace."""
    assert r.status == "failed", r.line()
    assert r.vcd is not None and r.vcd.exists(), r.line()


def pass_streams(m, inner, outer):
    """Connect a wrapped stream component ``inner`` to the wrapper ``outer`` (``i`` and
    ``o`` passed through); a mutant then overrides what it changes."""
    m.d.comb += [inner.i.payload.eq(outer.i.payload), inner.i.valid.eq(outer.i.valid),
                 outer.i.ready.eq(inner.i.ready), outer.o.payload.eq(inner.o.payload),
                 outer.o.valid.eq(inner.o.valid), inner.o.ready.eq(outer.o.ready)]
