"""``python -m mxhw.export COMPONENT [--param value ...] -o FILE.v``: any component to Verilog.

For flows that do not use Amaranth: the component is built from command-line parameters and
written with :func:`amaranth.back.verilog.convert` (its ports become the top-level ports).

Components are entries of :data:`COMPONENTS`: a name, the constructor, and a parser per
parameter (``--fmt-a`` fills the parameter ``fmt_a``). Adding a component is one entry::

    COMPONENTS["decoder"] = Entry(ElementDecoder, {"fmt": parse_element_format,
                                                   "pipeline": integer})

Formats are named as golden names them, aliases included (``--fmt-a mxfp4``). Components
that take block formats also take ``--k``: the block size, for blocks other than the
formats' own (``dot --fmt-a mxfp4 --fmt-b mxint8 --k 4``).

Drop-in blocks: ``array_os``/``array_ws`` (the systolic arrays), ``array_tile``
(``mxsf_tile`` operands stored once, read in either orientation), ``array_scalable`` (the
precision-scalable array), ``bitserial_pe``, ``gemv``
(the bit-serial GEMV engine), ``bram``, ``scratchpad``, ``fifo`` and ``core`` (the accelerator
core on Wishbone B4: ``core --config rows=4 --config dataflow=weight_stationary ...``, the
:class:`~mxhw.soc.top.SoCConfig` fields; ``--pipelined false`` for classic B4). Every file
starts with a header comment naming the configuration and every port, with the bit layout
of each packed one; ``src`` attributes carry paths relative to the project or the installed
package, not the build machine's absolute paths.

Parsers turn the command-line string into the parameter value and raise ``ValueError`` with
a message for a bad value. Unknown components, parameters or values exit with status 2 and a
message that lists what is allowed.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import itertools
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from . import golden
from .dequant import Aligner, MXSFDecoder, Requantizer
from .golden.formats import BlockFormat, ElementFormat
from .lib.params import check_int
from .pe import ElementMultiplier, MXDotProduct

__all__ = ["COMPONENTS", "Entry", "UsageError", "parse_element_format", "parse_block_format",
           "integer", "optional_integer", "boolean", "build", "port_layout",
           "header", "relativise_src", "to_verilog", "main"]


# ---- parameter parsers -----------------------------------------------------------------

def _parse_format(text, cls, kind, names):
    try:
        fmt = golden.formats.get(text)
    except KeyError:
        fmt = None
    if not isinstance(fmt, cls):
        raise ValueError(f"unknown {kind} format {text!r}; one of: {', '.join(names())}")
    return fmt


def parse_element_format(text):
    """An element format name or alias (see ``golden.formats.element_names()``)."""
    return _parse_format(text, ElementFormat, "element", golden.formats.element_names)


def parse_block_format(text):
    """A block format name or alias (see ``golden.formats.block_names()``)."""
    return _parse_format(text, BlockFormat, "block", golden.formats.block_names)


def integer(text):
    """A decimal (or 0x-prefixed) integer."""
    try:
        return int(text, 0)
    except ValueError:
        raise ValueError(f"expected an integer, not {text!r}") from None


def optional_integer(text):
    """An integer, or ``none`` for the component's default."""
    return None if text.lower() == "none" else integer(text)


def boolean(text):
    """``true``/``false`` (also ``1``/``0``, ``yes``/``no``)."""
    t = text.lower()
    if t in ("1", "true", "yes"):
        return True
    if t in ("0", "false", "no"):
        return False
    raise ValueError(f"expected true or false, not {text!r}")


@dataclass(frozen=True)
class Entry:
    """A component the exporter can build: ``constructor(**params)``.

    ``params`` maps each parameter name (as the constructor spells it) to the parser of its
    command-line value. Parameters left out on the command line take the constructor's
    defaults; those without a default are required.
    """

    constructor: object
    params: dict


def _resized(fmt, k):
    """The block format ``fmt`` with blocks of ``k`` elements (``None``: its own)."""
    if k is None or k == fmt.block:
        return fmt
    check_int("k", k, 1)
    return dataclasses.replace(fmt, name=f"{fmt.name}_k{k}", block=k)


def _dot(fmt_a, fmt_b, k=None, pipeline=None):
    return MXDotProduct(_resized(fmt_a, k), _resized(fmt_b, k), pipeline)


# --format names the dequant blocks' format (their constructors call it fmt)
def _aligner(format, k=None, **kw):
    return Aligner(_resized(format, k), **kw)


def _requantizer(format, k=None, **kw):
    return Requantizer(_resized(format, k), **kw)


def _acc(acc_width, acc_frac):
    return golden.fixed(acc_width, acc_frac, overflow="saturate", rounding="floor")


def _array(rows, cols, fmt_a, fmt_b, dataflow="output_stationary", acc_width=32,
           acc_frac=16, depth=None):
    from .systolic import SystolicArray
    return SystolicArray(rows, cols, fmt_a, fmt_b, dataflow=dataflow,
                         acc=_acc(acc_width, acc_frac), depth=depth)


def _os_array(rows, cols, fmt_a, fmt_b, acc_width=32, acc_frac=16):
    return _array(rows, cols, fmt_a, fmt_b, "output_stationary", acc_width, acc_frac)


def _ws_array(rows, cols, fmt_a, fmt_b, acc_width=32, acc_frac=16, depth=None):
    return _array(rows, cols, fmt_a, fmt_b, "weight_stationary", acc_width, acc_frac, depth)


def _tile_array(rows, cols, fmt_a, fmt_b, acc_width=32, acc_frac=16, transpose_a=False,
                transpose_b=False, tiles_a=(1, 1), tiles_b=(1, 1)):
    from .systolic import TileArray
    return TileArray(rows, cols, fmt_a, fmt_b, _acc(acc_width, acc_frac),
                     transpose_a=transpose_a, transpose_b=transpose_b, tiles_a=tiles_a,
                     tiles_b=tiles_b)


def _scalable_array(rows, cols, modes=None, acc_width=32, acc_frac=16):
    from .systolic import DEFAULT_MODES, ScalableArray
    return ScalableArray(rows, cols, DEFAULT_MODES if modes is None else modes,
                         acc=_acc(acc_width, acc_frac))


def format_list(text):
    """Comma-separated block format names or aliases (``mxint8,mxfp4``)."""
    return [parse_block_format(t.strip()) for t in text.split(",") if t.strip()]


def grid(text):
    """``RxC``: a grid of R rows and C columns (``2x2``)."""
    try:
        r, c = (int(t) for t in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"expected ROWSxCOLS (e.g. 2x2), not {text!r}") from None
    return r, c


def _bitserial_pe(**kw):
    from .pe.bitserial import BitSerialPE
    return BitSerialPE(**kw)


def _gemv(**kw):
    from .pe.bitserial_engine import BitSerialGEMV
    return BitSerialGEMV(**kw)


def _bram(width, depth, read_latency=2):
    from .mem import BlockRAM
    check_int("width", width, 1, 4096)
    return BlockRAM(width, depth, read_latency=read_latency)


def _scratchpad(width, depth, banks=1):
    from .mem import Scratchpad
    check_int("width", width, 1, 4096)
    return Scratchpad(width, depth, banks)


def _fifo(width, depth):
    from .mem import StreamFIFO
    check_int("width", width, 1, 4096)
    return StreamFIFO(width, depth)


def _core(config=(), pipelined=True):
    from .soc.core import AcceleratorCore
    from .soc.top import SoCConfig, config_overrides
    return AcceleratorCore(config_overrides(config, SoCConfig()),
                           pipelined=pipelined)


_ARRAY = {"rows": integer, "cols": integer, "fmt_a": parse_block_format,
          "fmt_b": parse_block_format, "acc_width": integer, "acc_frac": integer}

#: Component name -> :class:`Entry`. Other modules' components are added here.
COMPONENTS: dict[str, Entry] = {
    "multiplier": Entry(ElementMultiplier, {"fmt_a": parse_element_format,
                                            "fmt_b": parse_element_format,
                                            "pipeline": integer}),
    "dot": Entry(_dot, {"fmt_a": parse_block_format, "fmt_b": parse_block_format,
                        "k": optional_integer, "pipeline": optional_integer}),
    "aligner": Entry(_aligner, {"format": parse_block_format, "k": optional_integer,
                                "out_width": optional_integer, "rounding": str,
                                "pipeline": integer}),
    # --format mxsf: the MXSF mode switch's quantising side (mode select); --in-kind fp32
    "requantizer": Entry(_requantizer, {"format": parse_block_format, "k": optional_integer,
                                        "in_kind": str, "in_width": optional_integer,
                                        "in_frac": optional_integer,
                                        "pipeline": optional_integer}),
    # the MXSF mode switch's decoding side
    "mode_switch": Entry(MXSFDecoder, {"k": integer}),
    "array_os": Entry(_os_array, dict(_ARRAY)),
    "array_ws": Entry(_ws_array, dict(_ARRAY, depth=optional_integer)),
    # mxsf_tile operands, each stored once in a TileStore of tiles_a / tiles_b tiles
    "array_tile": Entry(_tile_array, dict(_ARRAY, transpose_a=boolean, transpose_b=boolean,
                                          tiles_a=grid, tiles_b=grid)),
    # the precision-scalable array: --modes mxint8,mxfp8_e4m3,mxfp6_e2m3,mxfp4 (default)
    "array_scalable": Entry(_scalable_array, {"rows": integer, "cols": integer,
                                              "modes": format_list, "acc_width": integer,
                                              "acc_frac": integer}),
    "bitserial_pe": Entry(_bitserial_pe, {"act_width": integer, "max_wbits": integer,
                                          "lanes": integer, "msb_first": boolean,
                                          "acc_width": optional_integer}),
    "gemv": Entry(_gemv, {"pes": integer, "lanes": integer, "group": integer,
                          "cols": integer, "act_width": integer, "scale_width": integer,
                          "msb_first": boolean}),
    "bram": Entry(_bram, {"width": integer, "depth": integer, "read_latency": integer}),
    "scratchpad": Entry(_scratchpad, {"width": integer, "depth": integer, "banks": integer}),
    "fifo": Entry(_fifo, {"width": integer, "depth": integer}),
    # --config KEY=VALUE (repeated): the SoCConfig fields; --pipelined false: classic B4
    "core": Entry(_core, {"config": lambda items: list(items), "pipelined": boolean}),
}

#: parameters that may be given more than once (their parser gets the list of values)
REPEATED = {"config"}


class UsageError(Exception):
    """A bad command line (exit status 2)."""


def _required(entry):
    try:
        sig = inspect.signature(entry.constructor)
    except (TypeError, ValueError):
        return []
    params = sig.parameters
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        # a thin wrapper: the wrapped component decides (its errors are reported as usage)
        return []
    return [n for n in entry.params
            if n in params and params[n].default is inspect.Parameter.empty]


def build(component, options):
    """Build ``component`` from ``options`` (``{"--fmt-a": "fp8_e4m3", ...}`` or
    ``{"fmt_a": ...}``); raises :class:`UsageError` with the message to show."""
    if component not in COMPONENTS:
        raise UsageError(f"unknown component {component!r}; components: "
                         f"{', '.join(sorted(COMPONENTS))}")
    entry = COMPONENTS[component]
    allowed = ", ".join("--" + n.replace("_", "-") for n in entry.params) or "(none)"
    kwargs = {}
    for key, text in options.items():
        name = key.lstrip("-").replace("-", "_")
        if name not in entry.params:
            raise UsageError(f"{component}: unknown parameter {key!r}; parameters: {allowed}")
        try:
            kwargs[name] = entry.params[name](text)
        except ValueError as e:
            raise UsageError(f"{component}: bad value for --{name.replace('_', '-')}: {e}") \
                from None
    missing = [n for n in _required(entry) if n not in kwargs]
    if missing:
        raise UsageError(f"{component}: missing parameter(s) "
                         f"{', '.join('--' + n.replace('_', '-') for n in missing)}; "
                         f"parameters: {allowed}")
    try:
        return entry.constructor(**kwargs)
    except (TypeError, ValueError) as e:
        raise UsageError(f"{component}: {e}") from None


def _parse_options(component, rest):
    options = {}
    i = 0
    while i < len(rest):
        key = rest[i]
        if not key.startswith("--") or len(key) == 2:
            raise UsageError(f"{component}: expected --parameter value, not {key!r}")
        if "=" in key:
            key, text = key.split("=", 1)
            i += 1
        elif i + 1 < len(rest):
            text = rest[i + 1]
            i += 2
        else:
            raise UsageError(f"{component}: {key} needs a value")
        if key.lstrip("-").replace("-", "_") in REPEATED:
            options.setdefault(key, []).append(text)
            continue
        if key in options:
            raise UsageError(f"{component}: {key} given twice")
        options[key] = text
    return options


# ---- the Verilog and its header --------------------------------------------------------

def _layout_lines(name, shape, lo, indent="//     "):
    """Which bits of a packed port (a ``data.Layout``) are which field: one line per field,
    arrays as their element's stride."""
    from amaranth import Shape
    from amaranth.lib import data
    out = []
    if isinstance(shape, data.ArrayLayout):
        elem = shape.elem_shape
        v = "ijklmn"[min(5, name.count("["))]
        w = elem.size if isinstance(elem, data.Layout) else Shape.cast(elem).width
        out.append(f"{indent}{name}[{v}], {v} = 0..{shape.length - 1}: bits "
                   f"[{lo} + {w}*{v} + {w - 1} : {lo} + {w}*{v}]"
                   + (" (fields below: bits within the element)"
                      if isinstance(elem, data.Layout) else f" ({elem!r})"))
        if isinstance(elem, data.Layout):
            out += _layout_lines(f"{name}[{v}]", elem, 0, indent + "  ")
        return out
    if isinstance(shape, data.Layout):
        for n, f in shape:
            hi = lo + f.offset + f.width - 1
            if isinstance(f.shape, data.Layout):
                out.append(f"{indent}{name}.{n}: bits [{hi}:{lo + f.offset}]")
                out += _layout_lines(f"{name}.{n}", f.shape, lo + f.offset, indent + "  ")
            else:
                out.append(f"{indent}{name}.{n}: bits [{lo + f.offset + f.width - 1}:"
                           f"{lo + f.offset}] ({f.shape!r})")
    return out


def port_layout(component):
    """The component's ports as ``(name, direction, width, layout lines)``, named as
    :func:`amaranth.back.verilog.convert` names them (``path__member``)."""
    from amaranth import Shape
    from amaranth.lib import data, wiring

    ports = []

    # a member's signature is already flipped for an In member: its flows are the
    # component's
    def walk(members, path):
        for name, m in members.items():
            # arrays of members (``In(...).array(n)``) are named path__name__index
            for idx in itertools.product(*(range(d) for d in m.dimensions)):
                here = path + (name,) + tuple(str(i) for i in idx)
                if m.is_signature:
                    walk(m.signature.members, here)
                    continue
                pname = "__".join(here)
                shape = m.shape
                width = (shape.size if isinstance(shape, data.Layout)
                         else Shape.cast(shape).width)
                lines = (_layout_lines(pname, shape, 0) if isinstance(shape, data.Layout)
                         else [])
                ports.append((pname, "input" if m.flow == wiring.In else "output", width,
                              lines))

    walk(component.signature.members, ())
    return ports


def header(component_name, options, component):
    """The header comment: the component, its configuration, every port and the bit
    layout of every packed one."""
    lines = [f"// mxhw {component_name}: {type(component).__name__}, generated by "
             f"python -m mxhw.export", "// configuration:"]
    cfg = getattr(component, "config", None)
    if dataclasses.is_dataclass(cfg):
        lines += [f"//   {f.name} = {getattr(cfg, f.name)!r}" for f in dataclasses.fields(cfg)]
    for k, v in options.items():
        if dataclasses.is_dataclass(cfg) and k.lstrip("-") == "config":
            continue
        lines.append(f"//   {k.lstrip('-')} = {v}")
    if len(lines) == 2:
        lines.append("//   (defaults)")
    lines.append("// ports (clk, rst: the sync domain):")
    for name, direction, width, layout in port_layout(component):
        lines.append(f"//   {direction} [{width - 1}:0] {name}")
        lines += layout
    return "\n".join(lines) + "\n"


_SRC = re.compile(r'src = "([^"]*)"')


def relativise_src(text, roots=None):
    """``src`` attributes without the build machine's absolute paths: paths under the
    project (or an installed package folder) become relative to it; other absolute paths
    keep their file name only."""
    import amaranth
    if roots is None:
        here = Path(__file__).resolve()
        roots = [Path(amaranth.__file__).resolve().parents[1], here.parents[1]]
    roots = [str(r).rstrip("/") + "/" for r in roots]

    def fix(path):
        if not path.startswith("/"):
            return path
        for r in roots:
            if path.startswith(r):
                return path[len(r):]
        return path.rsplit("/", 1)[-1]

    def attr(match):
        parts = match.group(1).split("|")
        return 'src = "' + "|".join(fix(p) for p in parts) + '"'

    return _SRC.sub(attr, text)


def to_verilog(component_name, options, component, top="top"):
    """The component as Verilog: header, then the module(s), ``src`` paths relative."""
    from amaranth.back import verilog
    text = verilog.convert(component, name=top)
    return header(component_name, options, component) + relativise_src(text)


def main(argv=None):
    components = ", ".join(sorted(COMPONENTS))
    parser = argparse.ArgumentParser(
        prog="python -m mxhw.export",
        description="Write an mxhw component as Verilog.", allow_abbrev=False,
        epilog=f"components: {components}. Component parameters are given as "
               f"--name value (e.g. --fmt-a fp8_e4m3); run with a component and no "
               f"parameters to list them.")
    parser.add_argument("component", help=f"one of: {components}")
    parser.add_argument("-o", "--output", required=True, type=Path,
                        help="Verilog file to write")
    parser.add_argument("--top", default="top", help="top module name (default: top)")
    args, rest = parser.parse_known_args(argv)
    try:
        dut = build(args.component, _parse_options(args.component, rest))
    except UsageError as e:
        parser.error(str(e))  # exit status 2
    options = _parse_options(args.component, rest)
    text = to_verilog(args.component, options, dut, args.top)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(f"{args.output}: {args.component} ({type(dut).__name__}), "
          f"{len(text.splitlines())} lines of Verilog")
    return 0


if __name__ == "__main__":
    sys.exit(main())
