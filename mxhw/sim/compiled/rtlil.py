"""Design -> RTLIL for the compiled back end: port discovery, the one-``sync``-domain check,
and the merging of identical modules in large designs (see ``docs/sim.md``)."""

import hashlib
import re

from amaranth.hdl import ClockDomain, Signal, ValueCastable
from amaranth.lib import wiring

from . import _amaranth
from .errors import CompiledSimError

__all__ = ["PortInfo", "convert", "dedup_modules", "is_large", "LARGE_RTLIL_LINES"]

#: RTLIL size (lines) from which a design counts as large: its identical modules are merged
#: (:func:`dedup_modules`), CXXRTL keeps their hierarchy and g++ builds it at ``-O1``
#: (measurements in ``docs/sim.md``).
LARGE_RTLIL_LINES = 20_000


def is_large(rtlil_text):
    """Whether a design is built the large-design way (:data:`LARGE_RTLIL_LINES`)."""
    return rtlil_text.count("\n") >= LARGE_RTLIL_LINES


class PortInfo:
    """One model port (or internal signal): its name in the model, signal, direction,
    width, words of 32 bits, ``lib.data`` shape and view, and (once the model is loaded)
    its ``curr``/``next`` memory."""
    __slots__ = ("name", "signal", "input", "width", "signed", "words", "curr", "next", "shape",
                 "view", "internal", "outline")

    def __init__(self, name, signal, is_input, shape=None, view=None):
        self.name = name
        self.view = view
        self.internal = False
        self.outline = None
        self.signal = signal
        self.input = is_input
        self.width = len(signal)
        self.signed = signal.shape().signed
        self.words = max(1, (self.width + 31) // 32)
        self.shape = shape
        self.curr = self.next = None


def _undriven_inputs(dut):
    """Ports for a design without a signature (a test harness ``Module``): every signal the
    design uses but nothing in it drives becomes an input, so testbenches can drive it as
    on pysim. Outputs are read through the model's debug information."""
    try:
        design = _amaranth.prepare(dut)
    except Exception as e:
        raise CompiledSimError(f"Cannot elaborate {dut!r} for the compiled back end: {e}") from e
    ports, infos = {}, []
    for signal in _amaranth.undriven_signals(design):
        name = f"in{len(infos)}__{signal.name}"
        ports[name] = (signal, _amaranth.PortDirection.Input)
        infos.append(PortInfo(name, signal, True))
    return ports, infos


def _collect_ports(dut):
    sig = getattr(dut, "signature", None)
    if not isinstance(sig, wiring.Signature):
        if isinstance(dut, wiring.Component) or hasattr(dut, "signature"):
            raise CompiledSimError(
                f"The compiled back end needs {dut!r}'s signature to be a wiring.Signature")
        return _undriven_inputs(dut)
    ports, infos = {}, []
    for path, member, value in sig.flatten(dut):
        name = "__".join(map(str, path))
        shape = view = None
        if isinstance(value, ValueCastable):
            shape, view = value.shape(), value
            value = value.as_value()
        if not isinstance(value, Signal):
            raise CompiledSimError(f"Port {name!r} is {value!r}, not a plain signal; the "
                                   f"compiled back end needs one signal per port")
        is_input = member.flow == wiring.In
        direction = _amaranth.PortDirection.Input if is_input else _amaranth.PortDirection.Output
        ports[name] = (value, direction)
        infos.append(PortInfo(name, value, is_input, shape, view))
    return ports, infos


_RTLIL_PORT = re.compile(r"^  wire (?:width \d+ )?(input|output|inout) \d+ +(?:signed +)?\\(\S+)")


def _top_ports(text):
    """``{name: direction}`` of the RTLIL ``top`` module's ports."""
    top_ports, in_top = {}, False
    for line in text.splitlines():
        if line == "module \\top":
            in_top = True
        elif line == "end":
            in_top = False
        elif in_top:
            m = _RTLIL_PORT.match(line)
            if m:
                top_ports[m.group(2)] = m.group(1)
    return top_ports


def convert(dut):
    """``(rtlil_text, ports, has_clk, has_rst, names_map)`` for ``dut``: ``ports`` the
    :class:`PortInfo` of its top-level ports (signature order), ``names_map`` every named
    signal's hierarchical name. Raises :class:`CompiledSimError` unless the design has at
    most one clock domain, ``sync``, driven from outside."""
    ports, infos = _collect_ports(dut)
    created = []

    def missing_domain(name):
        created.append(name)
        return ClockDomain(name)

    design = _amaranth.prepare(dut, ports, missing_domain)
    domains = _amaranth.domains(design)
    if not domains <= {"sync"} or (domains and created != ["sync"]):
        where = ("defined inside the design" if "sync" in domains and "sync" not in created
                 else "")
        raise CompiledSimError(
            f"The compiled back end supports one clock domain, 'sync', driven from outside "
            f"the design; this design has clock domains {sorted(domains)}"
            f"{' (sync ' + where + ')' if where else ''}. Use backend='pysim'.")
    text, names_map = _amaranth.convert_prepared(design)
    extra = sorted(set(_top_ports(text)) - set(ports))
    if not set(extra) <= {"clk", "rst"}:  # pragma: no cover (domains are checked above)
        raise CompiledSimError(f"Unexpected top-level ports {extra}")
    return text, infos, "clk" in extra, "rst" in extra, names_map


# --- merging identical modules (large designs) -----------------------------------------------

_RTLIL_PORT_INDEX = re.compile(r" (input|output|inout) \d+ ")


def _canonical_paragraph(p):
    """One RTLIL statement with its port numbers dropped and a cell's connections sorted
    (both are by name, so neither order matters)."""
    lines = _RTLIL_PORT_INDEX.sub(r" \1 ", p).split("\n")
    at = [i for i, ln in enumerate(lines) if ln.startswith("    connect ")]
    for i, ln in zip(at, sorted(lines[i] for i in at)):
        lines[i] = ln
    return "\n".join(lines)


def _split_modules(rtlil_text):
    """``([(module name, its lines)], trailing lines)``."""
    chunks, cur, name = [], [], None
    for line in rtlil_text.split("\n"):
        cur.append(line)
        if line.startswith("module "):
            name = line.split()[1]
        elif line == "end" and name is not None:
            chunks.append((name, cur))
            cur, name = [], None
    return chunks, cur


def _is_wire(paragraph):
    return paragraph.lstrip("\n").split("\n")[-1].startswith("  wire ")


def dedup_modules(rtlil_text):
    """Merge identical modules of an RTLIL design (Amaranth emits one module per instance)
    and mark those instantiated more than once ``keep_hierarchy`` (CXXRTL flattens the
    rest). Two modules are equal when their bodies are, up to the order of the wire
    declarations, the port numbers and the order of a cell's connections, after their own
    submodules are merged. Returns the new text and the number of modules before and
    after."""
    chunks, tail = _split_modules(rtlil_text)
    bodies = dict(chunks)
    canon, seen = {}, {}

    def submodule(line):
        return line.split(" ")[3] if line.startswith("  cell ") else None

    def resolve(n):
        if n in canon:
            return canon[n]
        body = []
        for line in bodies[n]:
            if submodule(line) in bodies:
                parts = line.split(" ")      # "", "", "cell", type, name
                parts[3] = resolve(parts[3])
                line = " ".join(parts)
            body.append(line)
        bodies[n] = body
        paras = "\n".join(ln for ln in body if not ln.startswith("module ")).split("\n\n")
        paras = [_canonical_paragraph(p) for p in paras]
        wires = sorted(p for p in paras if _is_wire(p))
        rest = [p for p in paras if not _is_wire(p)]
        key = hashlib.sha256("\0".join(wires + ["\1"] + rest).encode()).hexdigest()
        canon[n] = seen.setdefault(key, n)
        return canon[n]

    uses = {}
    for n, _ in chunks:
        if resolve(n) == n:
            for line in bodies[n]:
                sub = submodule(line)
                if sub in bodies:
                    uses[sub] = uses.get(sub, 0) + 1
    out = []
    for n, _ in chunks:
        if resolve(n) == n:
            if uses.get(n, 0) > 1:      # a shared module: not flattened
                out.append("attribute \\keep_hierarchy 1")
            out.extend(bodies[n])
    out.extend(tail)
    return "\n".join(out), len(chunks), len(seen)
