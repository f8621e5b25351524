"""The PPA harness: a block with every port registered, reached through two pins, and
its RTLIL."""

from __future__ import annotations

import re

from amaranth.hdl import Cat, Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Harness", "harness_rtlil", "strip_src", "TOP", "DUT"]

#: The harness's module name in the RTLIL, and the block's (kept as one module through
#: synthesis, so the block's cells are counted apart from the harness's).
TOP = "ppa_top"
DUT = f"{TOP}.dut"


class Harness(wiring.Component):
    """A block with every port registered, reached through two pins.

    The block's inputs (stream ``valid``/``ready`` included) are bits of one shift register
    loaded serially from ``sin``; its outputs are captured in a register whose bits an XOR
    tree (4 inputs per level, a register after each level) reduces to ``sout``. Every
    output bit reaches ``sout`` and every input bit comes from ``sin``, so synthesis keeps
    all of the block's logic, and the block's paths are register to register. The harness
    registers have no reset.

    Parameters
    ----------
    make : callable
        Returns the block (a ``wiring.Component``); it becomes submodule ``dut``.

    Members
    -------
    sin : In(1)
    sout : Out(1)
    """

    def __init__(self, make):
        self._make = make
        super().__init__({"sin": In(1), "sout": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self._make()
        ins, outs = [], []
        for _, member, value in dut.signature.flatten(dut):
            (ins if member.flow == In else outs).append(Value.cast(value))
        width_in = sum(len(v) for v in ins)
        sreg = Signal(max(width_in, 1), reset_less=True)
        m.d.sync += sreg.eq(Cat(self.sin, sreg[:-1]))
        off = 0
        for v in ins:
            m.d.comb += v.eq(sreg[off:off + len(v)])
            off += len(v)
        level = Signal(sum(len(v) for v in outs), reset_less=True)
        m.d.sync += level.eq(Cat(*outs))
        while len(level) > 1:
            nxt = Signal((len(level) + 3) // 4, reset_less=True)
            m.d.sync += [nxt[i].eq(level[4 * i:4 * i + 4].xor()) for i in range(len(nxt))]
            level = nxt
        m.d.comb += self.sout.eq(level)
        return m


def harness_rtlil(cfg):
    """The RTLIL text of ``cfg``'s block (a :class:`~.configs.Config`) in :class:`Harness`
    (top module ``ppa_top``; the block is module ``ppa_top.dut``)."""
    from amaranth.back import rtlil
    return rtlil.convert(Harness(cfg.make), name=TOP)


_SRC = re.compile(r'^\s*attribute \\src "[^"\n]*"\n|\(\* src = "[^"\n]*" \*\)\s*', re.M)


def strip_src(text):
    """``text`` (RTLIL or Verilog) without source-location attributes (file paths and line
    numbers change nothing in the netlist)."""
    return _SRC.sub("", text)
