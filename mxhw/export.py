"""``python -m mxhw.export COMPONENT [--param value ...] -o FILE.v``: any component to Verilog.

For flows that do not use Amaranth: the component is built from command-line parameters and
written with :func:`amaranth.back.verilog.convert` (its ports become the top-level ports).

Components are entries of :data:`COMPONENTS`: a name, the constructor, and a parser per
parameter (``--fmt-a`` fills the parameter ``fmt_a``). Adding a component is one entry::

    COMPONENTS["aligner"] = Entry(Aligner, {"fmt": element_format, "k": integer})

Parsers turn the command-line string into the parameter value and raise ``ValueError`` with
a message for a bad value. Unknown components, parameters or values exit with status 2 and a
message that lists what is allowed.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from dataclasses import dataclass
from pathlib import Path

from . import golden
from .dequant import Aligner, MXSFDecoder, Requantizer
from .pe import ElementMultiplier, MXDotProduct

__all__ = ["COMPONENTS", "Entry", "UsageError", "element_format", "block_format", "integer",
           "optional_integer", "boolean", "build", "main"]


# ---- parameter parsers -----------------------------------------------------------------

def element_format(text):
    """An element format name (see ``golden.formats.element_names()``)."""
    allowed = golden.formats.element_names()
    if text not in allowed:
        raise ValueError(f"unknown element format {text!r}; one of: {', '.join(allowed)}")
    return golden.formats.get(text)


def block_format(text):
    """A block format name (see ``golden.formats.block_names()``)."""
    allowed = golden.formats.block_names()
    if text not in allowed:
        raise ValueError(f"unknown block format {text!r}; one of: {', '.join(allowed)}")
    return golden.formats.get(text)


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


#: Component name -> :class:`Entry`. Other modules' components are added here.
COMPONENTS: dict[str, Entry] = {
    "multiplier": Entry(ElementMultiplier, {"fmt_a": element_format, "fmt_b": element_format,
                                            "pipeline": integer}),
    "dot": Entry(MXDotProduct, {"fmt_a": element_format, "fmt_b": element_format,
                                "k": integer, "pipeline": optional_integer}),
    # --format names the dequant blocks' format (their constructors call it fmt)
    "aligner": Entry(lambda format, **kw: Aligner(format, **kw),
                     {"format": block_format, "k": integer, "out_width": optional_integer,
                      "rounding": str, "pipeline": integer}),
    # --format mxsf: the MXSF mode switch's quantising side (mode select); --in-kind fp32
    "requantizer": Entry(lambda format, **kw: Requantizer(format, **kw),
                         {"format": block_format, "k": integer, "in_kind": str,
                          "in_width": optional_integer, "in_frac": optional_integer,
                          "pipeline": integer}),
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
