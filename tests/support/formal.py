"""Helpers for tests/formal: run one proof (or a mutant's) in a pytest tmp folder."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from mxhw.formal.flow import DEFAULT_SOLVER, Proof, run_proof, solver_available

__all__ = ["prove", "need_tools", "caught", "pass_streams", "wrapped_requantizer",
           "shifted_product_multiplier"]


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


def wrapped_requantizer(m, outer, extra_stages=0):
    """A fixed-input ``Requantizer`` with ``outer``'s parameters (and ``extra_stages`` more
    pipeline stages) added to ``m`` and passed through to ``outer``; a mutant then
    overrides what it changes. Returns the inner one."""
    from mxhw.dequant import Requantizer
    m.submodules.inner = inner = Requantizer(outer.fmt, in_kind="fixed",
                                             in_width=outer.in_width, in_frac=outer.in_frac,
                                             pipeline=outer.latency + extra_stages)
    pass_streams(m, inner, outer)
    return inner


def shifted_product_multiplier():
    """A mutant ``ElementMultiplier`` class: the product one place too far left."""
    from amaranth.hdl import Module
    from mxhw.pe import ElementMultiplier

    class ShiftedProduct(ElementMultiplier):
        """Off-by-one shift: the product one place too far left."""
        def elaborate(self, platform):
            m = Module()
            m.submodules.inner = inner = ElementMultiplier(self.fmt_a, self.fmt_b,
                                                           self.latency)
            m.d.comb += [inner.a.eq(self.a), inner.b.eq(self.b),
                         self.p.eq(inner.p << 1), self.nonfinite.eq(inner.nonfinite)]
            return m
    return ShiftedProduct
