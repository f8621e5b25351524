"""The output-stationary PE grid: PEs in rows and columns, each row's operands passing
right and each column's down through one register per PE (the arrays' systolic wiring;
:class:`~mxhw.systolic.os.OutputStationaryCore`, :class:`~mxhw.systolic.ScalableArray`)."""

from __future__ import annotations

from ..lib.signals import delay_line

__all__ = ["pe_grid"]


def pe_grid(m, a_in, b_in, make_pe, ports=None, keep=()):
    """Build ``len(a_in) x len(b_in)`` PEs ``make_pe()`` in ``m`` (submodules
    ``pe_<i>_<j>``) and wire them systolically: ``a_in[i]`` (``(name, signal)`` pairs) drive
    row ``i``'s first PE and pass to the right, ``b_in[j]`` drive column ``j``'s top PE and
    pass down, one register per PE (``h<i>_<j>_<name>``, ``w<i>_<j>_<name>``; those of the
    names in ``keep`` with the ``keep`` attribute, :func:`~mxhw.lib.signals.delay_line`).
    A name drives the PE port ``ports.get(name, name)``. Returns the PEs, ``[i][j]``."""
    ports = ports or {}
    R, C = len(a_in), len(b_in)
    pes = [[None] * C for _ in range(R)]
    b_out = {}
    for i in range(R):
        ah = a_in[i]
        for j in range(C):
            bv = b_in[j] if i == 0 else b_out[i - 1, j]
            m.submodules[f"pe_{i}_{j}"] = pes[i][j] = pe = make_pe()
            m.d.comb += [getattr(pe, ports.get(n, n)).eq(s) for n, s in ah + bv]
            ah = tuple((n, delay_line(m, s, 1, f"h{i}_{j}_{n}", n in keep)) for n, s in ah)
            b_out[i, j] = tuple((n, delay_line(m, s, 1, f"w{i}_{j}_{n}")) for n, s in bv)
    return pes
