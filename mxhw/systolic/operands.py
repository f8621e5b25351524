"""MX+ operands at the arrays' edges: each block's extended element found by its stored
index (``golden.mxplus``) and flagged beside its code, so the PEs decode it
(:func:`~mxhw.formats.operand_element` of an MX+ format: ``ext << bits | code``).

The edge knows each element's position ``pos`` in its block (the output-stationary block
counter; the weight-stationary pass offset plus the row) and flags the element when ``pos
== index`` and the block's scale code is not 0 (a block with scale code 0 is a plain MX
block: golden's ``bm_mask``).

Golden twin: :func:`mxhw.golden.mxplus.bm_mask` and :func:`~mxhw.golden.mxplus.element_values`.
"""

from __future__ import annotations

from amaranth.hdl import unsigned

from ..formats import operand_code

__all__ = ["index_port", "index_fields", "edge_code"]


def index_port(fmt):
    """Shape of the per-block index port of ``fmt`` (``fmt.index_bits`` wide), or None for
    a format without one (all but MX+)."""
    return unsigned(fmt.index_bits) if fmt.index_bits else None


def index_fields(fmt, name, n=None):
    """``{name: shape}`` (an array of ``n`` when ``n`` is given) for a layout, or ``{}``
    for a format without an index."""
    from amaranth.lib import data
    shape = index_port(fmt)
    if shape is None:
        return {}
    return {name: shape if n is None else data.ArrayLayout(shape, n)}


def edge_code(fmt, code, mode=None, pos=None, index=None, scale=None):
    """The PE-side code of an element of the block format ``fmt``
    (:func:`~mxhw.formats.operand_code`): MX+ adds the extended flag ``pos == index`` and
    ``scale != 0``; MXSF the block's ``mode`` when given (else the mode travels apart, to
    the PEs' mode ports, and ``code`` is returned as it is)."""
    if fmt.index_bits:
        return operand_code(fmt, code, ext=(pos == index) & (scale != 0))
    return code if mode is None else operand_code(fmt, code, mode)
