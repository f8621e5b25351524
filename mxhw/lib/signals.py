"""Small signal-level building blocks shared by the hardware generators: register delays
(:func:`delay_line`, :func:`stage`), signed range tests and clamps (:func:`fits_signed`,
:func:`saturate`), a compare with a constant as logic (:func:`ge_const`) and a one-hot
AND-OR multiplexer (:func:`one_hot_select`)."""

from __future__ import annotations

import functools
import operator

from amaranth.hdl import Const, Mux, Signal

__all__ = ["delay_line", "stage", "fits_signed", "saturate", "ge_const", "one_hot_select"]


def delay_line(m, sig, n, name, keep=False):
    """``sig`` delayed by ``n`` registers in ``m``'s sync domain (``sig`` itself for 0).

    ``keep``: the registers carry the ``keep`` attribute. The arrays set it on the control
    bits that travel beside each row's or column's operands: every row gets the same
    control, one cycle later per step, so synthesis would merge the equal registers of
    all rows into one per anti-diagonal, whose fan-out then crosses the whole array.
    Vivado honours ``keep`` on a register; Yosys flows need :data:`mxhw.build.KEEP_FLOPS`
    (which the builds and the PPA harness run) to carry it over to the flip-flop."""
    for t in range(n):
        r = Signal.like(sig, name=f"{name}_d{t}", attrs={"keep": 1} if keep else {})
        m.d.sync += r.eq(sig)
        sig = r
    return sig


def stage(m, sig, on, name):
    """``sig`` through one register when ``on`` (else ``sig`` itself)."""
    if not on:
        return sig
    r = Signal.like(sig, name=f"{name}_{getattr(sig, 'name', 'q')}")
    m.d.sync += r.eq(sig)
    return r


def fits_signed(x, width):
    """``x`` (signed) lies in ``signed(width)``: its bits from ``width - 1`` up are equal."""
    top = x[width - 1:]
    return top.all() | ~top.any()


def saturate(x, width):
    """``x`` (signed) clamped to ``signed(width)``."""
    return Mux(fits_signed(x, width), x, Mux(x[-1], -(1 << (width - 1)),
                                             (1 << (width - 1)) - 1))


def ge_const(x, c):
    """``x >= c`` for an unsigned value ``x`` and an integer constant ``c``, as AND/OR
    logic on ``x``'s bits (synthesis maps it to a few LUTs, where a compare operator
    becomes a carry chain)."""
    n = len(x)
    if c <= 0:
        return Const(1, 1)
    if c >= 1 << n:
        return Const(0, 1)
    top = 1 << (n - 1)
    if c & top:
        return x[n - 1] & ge_const(x[:n - 1], c - top)
    return x[n - 1] | ge_const(x[:n - 1], c)


def one_hot_select(valid, values, shape, name, idle_zero=False):
    """``values[j]`` for the one ``j`` with ``valid[j]`` high (0 when none is): an AND-OR
    multiplexer, no priority chain; with ``idle_zero`` (every ``values[j]`` is 0 while
    its ``valid[j]`` is low) only the OR. Returns ``(out, statement)``: the caller adds
    the statement to its comb domain."""
    out = Signal(shape, name=name)
    terms = values if idle_zero else [Mux(v, x, 0) for v, x in zip(valid, values)]
    out_eq = functools.reduce(operator.or_, terms)
    return out, out.eq(out_eq)
