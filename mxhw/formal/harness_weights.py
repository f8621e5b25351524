"""``WeightMapper`` (the bit-serial PE's weight look-up) against the BitMoD and INTn
definitions written out here, not against the table the design is generated from.

Reference per type, for the low ``code_bits`` bits of a code (docs/FORMATS.md, BitMoD):

* ``bitmod_fp4_*``: the code is an OCP E2M1 code (sign, 2-bit exponent, 1-bit mantissa):
  its value from golden's fp4_e2m1 decode table as an exact integer at 2**-1
  (:func:`reference.rom`), except the -0 code (``0b1000``) which holds the type's extra
  value: ``+-5`` (``er``) or ``+-8`` (``ea``), sign by ``_pos``/``_neg``;
* ``bitmod_fp3_*``: sign bit + 2-bit magnitude index ``i`` into ``{0, 1, 2, 4}``
  (``(1 << i) >> 1``), the -0 code (``0b100``) the extra value ``+-3`` / ``+-6``;
* ``intN`` / ``mxintN``: the N-bit two's complement value ``c - 2**N * c[N-1]``.

Asserted for every ``sel`` of the mapper's types and every code of every lane: ``w`` is the
reference integer, ``bits`` the type's serial precision (golden's ``WeightType.bits``)."""

from __future__ import annotations

from amaranth.hdl import Assert, Const, Module, Mux, Signal, signed

from .base import Harness
from .reference import rom

__all__ = ["WeightMapperEquiv", "EXTRAS"]

#: The BitMoD extra values (real values, before the type's ``2**lsb_exp`` grid) by family
#: and kind (the BitMoD paper's ER and EA variants).
EXTRAS = {"fp4": {"er": 5.0, "ea": 8.0}, "fp3": {"er": 3, "ea": 6}}


def _reference(m, name, code, j):
    """(value signal, code_bits) of the type ``name`` for ``code`` (lane ``j``)."""
    v = Signal(signed(8), name=f"ref{j}_{name}")
    if name.startswith("bitmod_"):
        _, fam, kind, sign = name.split("_")
        s = -1 if sign == "neg" else +1
        if fam == "fp4":
            c = code[:4]
            val, _ = rom(m, "fp4_e2m1", c, f"e2m1_{j}_{name}")
            extra = int(EXTRAS["fp4"][kind] * 2)          # the E2M1 grid is 2**-1
            m.d.comb += v.eq(Mux(c == 0b1000, s * extra, val))
            return v, 4
        c = code[:3]
        mag = Signal(4, name=f"mag{j}_{name}")
        m.d.comb += mag.eq((Const(1, 4) << c[:2]) >> 1)
        m.d.comb += v.eq(Mux(c == 0b100, s * EXTRAS["fp3"][kind], Mux(c[2], -mag, mag)))
        return v, 3
    n = int(name.removeprefix("mx").removeprefix("int"))
    c = code[:n]
    m.d.comb += v.eq(c - (c[n - 1] << n))
    return v, n


class WeightMapperEquiv(Harness):
    """``WeightMapper(types, lanes)`` against :func:`_reference`, every sel and code."""

    def __init__(self, types, lanes=2, dut=None):
        from ..pe.bitserial import WeightMapper
        super().__init__()
        self.types = tuple(types)
        self.dut = (dut or WeightMapper)(self.types, lanes)
        self.codes = [Signal(self.dut.code_bits, name=f"code{j}") for j in range(lanes)]
        self.sel = Signal(range(max(len(self.types), 2)))

    def inputs(self):
        return [*self.codes, self.sel]

    def elaborate(self, platform):
        from ..golden.bitserial import weight_type
        m = Module()
        self.setup(m)
        m.submodules.dut = dut = self.dut
        m.d.comb += dut.sel.eq(self.sel)
        for j, c in enumerate(self.codes):
            m.d.comb += dut.code[j].eq(c)
        for i, name in enumerate(self.types):
            with m.If(self.sel == i):
                m.d.comb += Assert(dut.bits == weight_type(name).bits, f"bits {name}")
            for j, c in enumerate(self.codes):
                ref, _ = _reference(m, name, c, j)
                with m.If(self.sel == i):
                    m.d.comb += Assert(dut.w[j] == ref, f"w{j} {name}")
        return m
