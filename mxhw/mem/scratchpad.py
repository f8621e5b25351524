"""Banked scratchpads for element codes and scales (block-RAM friendly)."""

from __future__ import annotations

from amaranth.hdl import Module, Shape, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .. import golden

__all__ = ["Scratchpad", "code_shape", "scale_shape"]


def word_shape(shape):
    """A memory's word ``shape`` (a width >= 1, or a shape-castable) as a :class:`Shape`;
    TypeError / ValueError with the message the memories' tests expect."""
    if isinstance(shape, int) and not isinstance(shape, bool):
        if shape < 1:
            raise ValueError(f"shape must be a width >= 1, not {shape!r}")
        shape = unsigned(shape)
    try:
        return Shape.cast(shape)
    except TypeError:
        raise TypeError(f"shape must be a width or a Shape, not {shape!r}") from None


def check_count(name, value, lo):
    """``value`` must be an integer >= ``lo`` (TypeError / ValueError naming ``name``)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if value < lo:
        raise ValueError(f"{name} must be >= {lo}, not {value!r}")


def code_shape(fmt, lanes=1):
    """Width of ``lanes`` packed element codes of block format ``fmt``."""
    f = golden.formats.get(fmt) if isinstance(fmt, str) else fmt
    return unsigned(f.element.bits * lanes)


def scale_shape(fmt, lanes=1):
    """Width of ``lanes`` packed scale codes of block format ``fmt``."""
    f = golden.formats.get(fmt) if isinstance(fmt, str) else fmt
    return unsigned(f.scale.bits * lanes)


class Scratchpad(wiring.Component):
    """``banks`` independent simple dual-port memories of ``depth`` words each.

    Each bank has one write port and one synchronous read port (the portable form that
    maps to block RAM: ECP5 DP16KD, Xilinx 7-series RAMB18E1/RAMB36E1). Widths come from
    the formats: use :func:`code_shape` / :func:`scale_shape`.

    Parameters
    ----------
    shape : int or Shape
        Word shape (unsigned width), >= 1 bit.
    depth : int
        Words per bank, >= 2.
    banks : int
        Number of banks, >= 1.

    Members
    -------
    w_addr : In(range(depth)).array(banks), w_data : In(shape).array(banks),
    w_en : In(1).array(banks)
    r_addr : In(range(depth)).array(banks), r_data : Out(shape).array(banks)
        ``r_data`` is the word at ``r_addr`` of the previous cycle (latency 1); a read of
        an address written in the same cycle returns the old word.

    Throughput one read and one write per bank per cycle.
    """

    def __init__(self, shape, depth, banks=1):
        shape = word_shape(shape)
        check_count("depth", depth, 2)
        check_count("banks", banks, 1)
        self._shape, self._depth, self._banks = shape, depth, banks
        super().__init__({
            "w_addr": In(range(depth)).array(banks),
            "w_data": In(shape).array(banks),
            "w_en": In(1).array(banks),
            "r_addr": In(range(depth)).array(banks),
            "r_data": Out(shape).array(banks),
        })

    shape = property(lambda self: self._shape)
    depth = property(lambda self: self._depth)
    banks = property(lambda self: self._banks)

    def elaborate(self, platform):
        m = Module()
        for n in range(self._banks):
            mem = Memory(shape=self._shape, depth=self._depth, init=[])
            m.submodules[f"bank{n}"] = mem
            wp = mem.write_port()
            rp = mem.read_port(transparent_for=())
            m.d.comb += [wp.addr.eq(self.w_addr[n]), wp.data.eq(self.w_data[n]),
                         wp.en.eq(self.w_en[n]), rp.addr.eq(self.r_addr[n]),
                         self.r_data[n].eq(rp.data)]
        return m
