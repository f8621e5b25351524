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

Parsers turn the command-line string into the parameter value and raise ``ValueError`` with
a message for a bad value. Unknown components, parameters or values exit with status 2 and a
message that lists what is allowed.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import sys
from dataclasses import dataclass
from pathlib import Path

from . import golden
from .dequant import Aligner, MXSFDecoder, Requantizer
from .golden.formats import BlockFormat, ElementFormat
from .lib.params import check_int
from .pe import ElementMultiplier, MXDotProduct

__all__ = ["COMPONENTS", "Entry", "UsageError", "parse_element_format", "parse_block_format",
           "integer", "optional_integer", "boolean", "build", "main"]


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
}


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
        if key in options:
            raise UsageError(f"{component}: {key} given twice")
        options[key] = text
    return options


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
    from amaranth.back import verilog
    text = verilog.convert(dut, name=args.top)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(f"{args.output}: {args.component} ({type(dut).__name__}), "
          f"{len(text.splitlines())} lines of Verilog")
    return 0


if __name__ == "__main__":
    sys.exit(main())
