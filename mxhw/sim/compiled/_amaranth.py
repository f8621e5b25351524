"""Every private Amaranth name the compiled back end uses, in one place.

The back end needs Amaranth internals that have no public API: preparing a design for
RTLIL with chosen ports (``Fragment.prepare``, ``hdl._ir.PortDirection``), the statements'
driven signals (``_lhs_signals``, ``hdl._ast.SignalSet``, ``hdl._mem.MemoryInstance``),
the expression evaluator of Amaranth's simulator (``sim._pyeval``), its Yosys
(``_toolchain.yosys``) and its RTLIL -> Verilog step (``back.verilog._convert_rtlil_text``,
for the Verilator engine). They change between Amaranth releases, so importing this module
checks ``amaranth.__version__`` against :data:`SUPPORTED` first and raises
:class:`UnsupportedAmaranth` naming the installed version otherwise;
``tests/sim/test_amaranth_private.py`` fails loudly on an upgrade. To port the back end
to a new Amaranth, adapt this module (and only this one), then widen :data:`SUPPORTED`.
"""

import re

import amaranth

from .errors import CompiledSimError

__all__ = ["SUPPORTED", "UnsupportedAmaranth", "check_version", "PortDirection", "prepare",
           "convert_prepared", "domains", "undriven_signals", "eval_value", "eval_assign",
           "assignable_signals", "find_yosys", "verilog_from_rtlil", "PRIVATE_NAMES"]

#: Amaranth versions (major, minor) this module was written and tested against
SUPPORTED = ((0, 5),)


class UnsupportedAmaranth(CompiledSimError, ImportError):
    """The installed Amaranth is not a version the compiled back end was written for."""


def check_version(version=None):
    """Raise :class:`UnsupportedAmaranth` unless ``version`` (default: the installed
    ``amaranth.__version__``) is one of :data:`SUPPORTED`; returns ``(major, minor)``."""
    version = amaranth.__version__ if version is None else version
    m = re.match(r"(\d+)\.(\d+)", str(version))
    got = (int(m[1]), int(m[2])) if m else None
    if got not in SUPPORTED:
        want = ", ".join(f"{a}.{b}.x" for a, b in SUPPORTED)
        raise UnsupportedAmaranth(
            f"mxhw.sim.compiled uses private Amaranth APIs written for Amaranth {want}; "
            f"Amaranth {version} is installed. Use backend='pysim', install a supported "
            f"Amaranth, or port mxhw/sim/compiled/_amaranth.py")
    return got


check_version()

from amaranth.hdl import Fragment, Instance                          # noqa: E402
from amaranth.hdl._ast import Concat, Operator, Part, SignalSet, Slice   # noqa: E402
from amaranth.hdl._ir import PortDirection                          # noqa: E402
from amaranth.hdl._mem import MemoryInstance                        # noqa: E402
from amaranth.back import rtlil as _rtlil                           # noqa: E402
from amaranth.sim._pyeval import eval_assign, eval_value            # noqa: E402
from amaranth._toolchain.yosys import find_yosys                    # noqa: E402
from amaranth.back.verilog import _convert_rtlil_text as verilog_from_rtlil  # noqa: E402

#: the private modules and names imported above (the upgrade test checks each resolves)
PRIVATE_NAMES = {
    "amaranth.hdl._ast": ("Concat", "Operator", "Part", "SignalSet", "Slice"),
    "amaranth.hdl._ir": ("PortDirection",),
    "amaranth.hdl._mem": ("MemoryInstance",),
    "amaranth.sim._pyeval": ("eval_assign", "eval_value"),
    "amaranth._toolchain.yosys": ("find_yosys",),
    "amaranth.back.verilog": ("_convert_rtlil_text",),
}


def prepare(dut, ports=(), missing_domain=None):
    """``dut`` elaborated and prepared for conversion (hierarchy ``("top",)``), with
    ``ports`` (``{name: (signal, PortDirection)}``); ``missing_domain(name)`` creates the
    domains the design uses but does not define (default: Amaranth's)."""
    kwargs = {} if missing_domain is None else {"missing_domain": missing_domain}
    return Fragment.get(dut, None).prepare(ports=ports, hierarchy=("top",), **kwargs)


def convert_prepared(design):
    """``(rtlil_text, names_map)`` of a prepared design (``names_map``: signal -> its
    hierarchical name, for reading internal signals)."""
    return _rtlil.convert_fragment(design, name="top", emit_src=False)


def domains(design):
    """The names of every clock domain defined anywhere in a prepared design."""
    def walk(fragment):
        names = set(fragment.domains)
        for sub, _, _ in fragment.subfragments:
            names |= walk(sub)
        return names
    return walk(design.fragment)


def undriven_signals(design):
    """The signals a prepared design uses (with a width) but nothing in it drives,
    in the design's order (``signal_lca``); clock and reset signals count as driven."""
    driven = SignalSet()
    for fragment in design.fragments:
        for stmts in fragment.statements.values():
            for stmt in stmts:
                driven |= stmt._lhs_signals()
        if isinstance(fragment, Instance):
            for value, kind in fragment.ports.values():
                if kind == "o":
                    driven |= value._lhs_signals()
        elif isinstance(fragment, MemoryInstance):
            for port in fragment._read_ports:
                driven |= port._data._lhs_signals()
    for domain in design.fragment.domains.values():
        driven.add(domain.clk)
        if domain.rst is not None:
            driven.add(domain.rst)
    return [s for s in design.signal_lca if s not in driven and len(s)]


def assignable_signals(value):
    """The signals an assignment to ``value`` (a signal, slice, part, concatenation or
    sign cast of them) writes."""
    from amaranth.hdl import Signal
    if isinstance(value, Signal):
        yield value
    elif isinstance(value, (Slice, Part)):
        yield from assignable_signals(value.value)
    elif isinstance(value, Concat):
        for part in value.parts:
            yield from assignable_signals(part)
    elif isinstance(value, Operator) and value.operator in ("u", "s"):
        yield from assignable_signals(value.operands[0])
