"""Balanced reduction trees: the one adder tree, maximum tree and OR/AND reduction every
datapath uses.

A tree pairs neighbouring operands level by level (an odd operand passes up unchanged), so
``n`` operands take ``ceil(log2(n))`` levels. :func:`reduce_levels` builds some of the
levels (a pipelined datapath registers between them); the others build all of them.
"""

import functools
import itertools
import operator

from amaranth.hdl import Const, Mux, Signal, signed, unsigned

__all__ = ["reduce_levels", "reduce_tree", "sum_tree", "max_levels", "max_tree",
           "or_tree", "any_of", "all_of"]


def reduce_levels(values, op, levels=None):
    """``levels`` levels (all of them for ``None``) of a balanced tree of ``op`` (a function
    of two operands returning their node) over ``values``: the list of what is left (one
    value once every level is built)."""
    level = list(values)
    while len(level) > 1 and (levels is None or levels > 0):
        level = [op(level[j], level[j + 1]) if j + 1 < len(level) else level[j]
                 for j in range(0, len(level), 2)]
        levels = None if levels is None else levels - 1
    return level


def reduce_tree(values, op):
    """The root of a balanced tree of ``op`` over ``values`` (at least one)."""
    return reduce_levels(values, op)[0]


def _named_nodes(m, name, shape_of, fn):
    """``op`` for :func:`reduce_levels`: each node a combinational ``Signal`` in ``m`` of
    ``shape_of(a, b)``, named ``{name}_{n}`` in creation order, driven by ``fn(a, b)``."""
    count = itertools.count()

    def op(a, b):
        s = Signal(shape_of(a, b), name=f"{name}_{next(count)}")
        m.d.comb += s.eq(fn(a, b))
        return s
    return op


def sum_tree(m, values, name, width=None):
    """Balanced adder tree over ``values`` (combinational, in ``m``); returns the root.

    ``width=None``: signed nodes one bit wider than their wider operand (exact for signed
    operands); otherwise unsigned nodes of ``width`` bits (the caller bounds the sum).
    """
    def shape_of(a, b):
        return signed(max(len(a), len(b)) + 1) if width is None else unsigned(width)
    return reduce_tree(values, _named_nodes(m, name, shape_of, operator.add))


def max_levels(m, values, shape, name, levels=None):
    """``levels`` levels (all for ``None``) of a combinational balanced maximum tree over
    ``values`` (signals of ``shape``): the list of what is left."""
    return reduce_levels(values, _named_nodes(m, name, lambda a, b: shape,
                                              lambda a, b: Mux(a > b, a, b)), levels)


def max_tree(m, values, shape, name):
    """Combinational balanced maximum of ``values`` (signals of ``shape``)."""
    return max_levels(m, values, shape, name)[0]


def or_tree(values):
    """Bitwise OR of ``values`` as a balanced tree of expressions."""
    return reduce_tree(values, operator.or_)


def any_of(bits):
    """1 if any of the 1-bit values ``bits`` is set (0 for none): a chain of ORs (synthesis
    balances it)."""
    return functools.reduce(operator.or_, bits) if bits else Const(0, 1)


def all_of(bits):
    """1 if all of the 1-bit values ``bits`` are set (1 for none): a chain of ANDs."""
    return functools.reduce(operator.and_, bits) if bits else Const(1, 1)
