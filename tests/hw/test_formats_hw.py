"""mxhw.formats against the golden descriptors: every code of every registered element
format (and a test-made value table) through ElementDecoder and fixed_point, layouts
generated from descriptors, the registered decoder, constructor errors."""

import math

import numpy as np
import pytest
from amaranth.hdl import Module, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from hypothesis import given
from hypothesis import strategies as st

from mxhw import golden
from mxhw.formats import (ElementDecoder, Unpacked, fixed_point, fixed_shape, layout_of,
                          signed_width)
from mxhw.sim import run
from support.hyp import budget

TABLE = golden.formats.table_format(
    "test_table_dec",
    # odd magnitudes, a negative zero, an unused code (NaN), values on different grids
    [0, 0.25, 0.75, 1, 1.5, 3, 5, 64, -0.0, -0.25, -0.75, -1, -1.5, -3, float("nan"), -24])


def formats():
    """Every element format; FP16's 65536 codes only in `make test` (slow)."""
    return [pytest.param(n, marks=pytest.mark.slow) if n == "fp16" else n
            for n in golden.formats.element_names()] + [TABLE]


class Harness(wiring.Component):
    """ElementDecoder plus fixed_point on the same code."""

    def __init__(self, fmt):
        self.fmt = golden.formats.get(fmt)
        super().__init__({"code": In(layout_of(self.fmt)), "unpacked": Out(Unpacked(self.fmt)),
                          "fixed": Out(fixed_shape(self.fmt))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.dec = dec = ElementDecoder(self.fmt)
        m.d.comb += [dec.code.eq(self.code), self.unpacked.eq(dec.unpacked),
                     self.fixed.eq(fixed_point(m, self.fmt, self.code))]
        return m


def decode_all(fmt):
    dut = Harness(fmt)
    names = list(dict(iter(dut.unpacked.shape())))
    rows = []

    async def tb(ctx):
        for code in range(dut.fmt.n_codes):
            ctx.set(dut.code.as_value(), code)
            u = ctx.get(dut.unpacked)
            rows.append(({n: int(getattr(u, n)) for n in names}, ctx.get(dut.fixed)))

    run(dut, tb, clock=None)
    return dut, rows


@pytest.mark.parametrize("fmt", formats(), ids=lambda f: getattr(f, "name", f))
def test_every_code(fmt):
    fmt = golden.formats.get(fmt)
    dut, rows = decode_all(fmt)
    layout = dut.unpacked.shape()
    W = layout.sig_bits
    assert len(rows) == fmt.n_codes
    for code, (u, fixed) in enumerate(rows):
        v = fmt.table[code]
        where = f"{fmt.name}[{code:#x}]"
        assert bool(u.get("is_nan", 0)) == math.isnan(v), where
        assert bool(u.get("is_inf", 0)) == math.isinf(v), where
        assert fixed == int(fmt.int_table[code]), where
        if math.isnan(v):
            continue
        assert u["sign"] == int(np.signbit(v)), where
        assert u["is_zero"] == (v == 0), where
        if math.isinf(v):
            continue
        # the reading rule reproduces the golden value exactly (Python ints: no rounding)
        mag = u["significand"] * 2**(u["exponent"] - (W - 1) - fmt.lsb_exp)
        assert mag == abs(int(fmt.int_table[code])), where
        assert layout.value(u) == v, where
        assert layout.exp_range[0] <= u["exponent"] <= layout.exp_range[1], where
        if fmt.kind == "fp":
            # the usual meaning: hidden bit and unbiased exponent
            man = code & ((1 << fmt.man_bits) - 1)
            e = (code >> fmt.man_bits) & ((1 << fmt.exp_bits) - 1)
            assert u["significand"] == man | ((e != 0) << fmt.man_bits), where
            assert u["exponent"] == max(e, 1) - fmt.bias, where
    # NaN / Inf fields exist exactly where the format has such codes
    assert ("is_nan" in dict(iter(layout))) == bool(np.isnan(fmt.table).any())
    assert ("is_inf" in dict(iter(layout))) == bool(np.isinf(fmt.table).any())


def test_layouts_from_descriptors():
    for name in golden.formats.element_names():
        f = golden.formats.get(name)
        lay = layout_of(f)
        assert lay.size == f.bits
        if f.kind == "fp":
            assert dict(iter(lay)).keys() == {"mantissa", "exponent", "sign"}
            assert (lay["mantissa"].offset, lay["mantissa"].shape) == (0, unsigned(f.man_bits))
            assert (lay["exponent"].offset, lay["exponent"].shape) == (f.man_bits,
                                                                       unsigned(f.exp_bits))
            assert lay["sign"].offset == f.bits - 1
            assert Unpacked(f)["significand"].shape == unsigned(f.man_bits + 1)
        elif f.kind == "int":
            assert lay["value"].shape == signed(f.bits)
        else:
            assert lay["code"].shape == unsigned(f.bits)
    e4m3 = Unpacked("fp8_e4m3")
    # exponents -6..8 need 5 signed bits
    assert e4m3["exponent"].shape == signed(5)
    assert fixed_shape("int8") == signed(8)
    assert fixed_shape("fp4_e2m1") == signed(5)  # +-12 at 2**-1
    assert signed_width(-8, 7) == 4 and signed_width(0, 8) == 5 and signed_width(0, 0) == 1


@budget(10)
@given(fmt=st.sampled_from(["fp8_e5m2", "int8", "fp4_e2m1", "e8m0"]), data=st.data())
def test_registered_decoder(fmt, data):
    f = golden.formats.get(fmt)
    codes = data.draw(st.lists(st.integers(0, f.n_codes - 1), min_size=1, max_size=50))
    dut = ElementDecoder(f, pipeline=1)
    assert dut.latency == 1
    comb = decode_all(f)[1]
    got = []

    async def tb(ctx):
        for i in range(len(codes) + 1):
            if i < len(codes):
                ctx.set(dut.code.as_value(), codes[i])
            *_, u = await ctx.tick().sample(dut.unpacked)
            if i:
                got.append(u.as_value().value)

    run(dut, tb)
    lay = dut.unpacked.shape()
    exp = []
    for c in codes:
        fields = comb[c][0]
        v = 0
        for n, x in fields.items():
            fld = lay[n]
            v |= (x & ((1 << fld.width) - 1)) << fld.offset
        exp.append(v)
    assert got == exp


def test_init_wrong_fmt():
    with pytest.raises(ValueError, match=r"^fmt must be an element format name, one of "
                                         r".*int8.*; not 'int9'$"):
        ElementDecoder("int9")
    with pytest.raises(TypeError, match=r"^fmt must be an element format \(a name or an "
                                        r"ElementFormat\), not None$"):
        ElementDecoder(None)
    with pytest.raises(TypeError, match=r"^fmt must be an element format \(a name or an "
                                        r"ElementFormat\), not BlockFormat\('mxfp4_e2m1'\)$"):
        Unpacked("mxfp4")


@pytest.mark.parametrize("pipeline, exc, msg", [
    (2, ValueError, r"^pipeline must be in \[0, 1\], not 2$"),
    (-1, ValueError, r"^pipeline must be in \[0, 1\], not -1$"),
    ("0", TypeError, r"^pipeline must be an integer, not '0'$"),
    (None, TypeError, r"^pipeline must be an integer, not None$"),
])
def test_init_wrong_pipeline(pipeline, exc, msg):
    with pytest.raises(exc, match=msg):
        ElementDecoder("fp4_e2m1", pipeline=pipeline)
