"""Textual patches of the C++ that ``write_cxxrtl`` generates (why: ``docs/sim.md``)."""

import re

__all__ = ["patch_edges", "flatten_eval"]

_EDGE_TEST = re.compile(r"(bool (pos|neg)edge_(\w+)\(\) const \{\n\s*return )([^;\n]*);")


def patch_edges(cc):
    """``(cc, fast)``: the generated C++ with its clock-edge tests routed through the glue's
    ``mx_edge`` override, if the only edge test anywhere is the rising edge of ``clk`` (one
    clock, no negative edges, no asynchronous resets) and no module has buffered
    combinatorial outputs (``bool converged = false;``: their evaluation takes several
    delta cycles); then ``fast`` is true and the model can run a clock cycle as one
    evaluation (``mx_pre_edge`` in ``glue.cc``). Otherwise ``cc`` unchanged and ``fast``
    false."""
    tests = _EDGE_TEST.findall(cc)
    if not tests or any((kind, name) != ("pos", "p_clk") for _, kind, name, _ in tests) \
            or "bool converged = false;" in cc:
        return cc, False
    cc = _EDGE_TEST.sub(lambda mt: f"{mt[1]}mx_edge >= 0 ? mx_edge != 0 : ({mt[4]});", cc)
    return "#define MX_FAST_EDGE 1\n" + cc, True


_EVAL_DEF = re.compile(r"^bool (p_\w+)::eval\(performer \*performer\) \{", re.M)


def flatten_eval(cc):
    """The generated C++ with each module's ``eval`` marked ``flatten`` (g++ then inlines
    every call in it, down to the runtime's arithmetic). For flattened designs only: in a
    hierarchical one it would inline every submodule's evaluation into its parent's."""
    return _EVAL_DEF.sub(r"__attribute__((flatten)) bool \1::eval(performer *performer) {", cc)
