"""Reach a component's internal state from a proof harness, without changing the component.

k-induction (SBY ``mode prove``) starts from *any* state that satisfies the assertions
for ``depth`` cycles, reachable or not; an invariant that ties the component's internal
registers to the harness's reference state rules the unreachable ones out. The component
is elaborated here (:func:`elaborate`) and its fragment added to the harness in its place;
its registers are found by name (:func:`find_signal`) and a memory's rows are read
through extra asynchronous read ports (:func:`memory_rows`). A renamed register makes the
harness raise a clear error (the proof then reports ``error``), never prove vacuously.
"""

from __future__ import annotations

from amaranth.hdl import Const, Fragment, Shape, Signal
from amaranth.hdl._mem import MemoryInstance
from amaranth.utils import ceil_log2

__all__ = ["elaborate", "find_signal", "find_subfragment", "memory_rows"]


def elaborate(dut, platform=None):
    """The component's fragment (its signals are the component's own)."""
    return Fragment.get(dut, platform)


def _signals(frag):
    out = {}
    # a Fragment, or a Module being built (a test's mutant edits its block's own module)
    table = frag.statements if isinstance(frag, Fragment) else frag._statements
    for stmts in table.values():
        for s in stmts:
            try:
                rhs = list(s._rhs_signals())
            except NotImplementedError:     # a ResetSignal not yet lowered: its lhs only
                rhs = []
            for sig in list(s._lhs_signals()) + rhs:
                same = out.setdefault(sig.name, [])
                if not any(x is sig for x in same):
                    same.append(sig)
    return out


def find_signal(frag, name):
    """The one signal called ``name`` in ``frag``'s own statements (not its children's);
    ``frag``: a Fragment or a Module."""
    found = _signals(frag).get(name, [])
    if len(found) != 1:
        raise LookupError(f"{len(found)} signals named {name!r} in the fragment (expected 1)")
    return found[0]


def find_subfragment(frag, name):
    """The child fragment added as ``m.submodules.<name>``."""
    for sub, sub_name, *_ in frag.subfragments:
        if sub_name == name:
            return sub
    raise LookupError(f"no subfragment {name!r} (has {[s[1] for s in frag.subfragments]})")


def memory_rows(mem):
    """One signal per row of the memory instance ``mem``, driven by an added asynchronous
    read port at that row's address."""
    if not isinstance(mem, MemoryInstance):
        raise TypeError(f"expected a MemoryInstance, not {mem!r}")
    data = mem._data
    width = Shape.cast(data.shape).width
    rows = []
    for a in range(data.depth):
        row = Signal(width, name=f"row{a}")
        mem.read_port(domain="comb", addr=Const(a, ceil_log2(data.depth)), data=row,
                      en=Const(1, 1), transparent_for=())
        rows.append(row)
    return rows
