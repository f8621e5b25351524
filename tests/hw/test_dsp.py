"""lib.dsp.dsp_product: the fabric form's values and latency against Python's integer
product (Hypothesis operand streams), the ECP5 form's MULT18X18D (its registers on, the
operands sign-extended into A/B, the product out of P), parameter errors."""

import pytest
from amaranth.hdl import Const, Elaboratable, Module, Signal, signed, unsigned
from hypothesis import given
from hypothesis import strategies as st

from mxhw.lib.dsp import DSP_LATENCY, ECP5_MULT_BITS, check_dsp, dsp_product, platform_dsp
from mxhw.sim import run
from support.hyp import budget


class _Wrap(Elaboratable):
    """A module with ``x``, ``y`` in and ``p`` out around one dsp_product."""

    def __init__(self, wx, wy, dsp):
        self.x, self.y = Signal(signed(wx)), Signal(signed(wy))
        self.dsp = dsp

    def elaborate(self, platform):
        m = Module()
        self.p = dsp_product(m, self.x, self.y, self.dsp)
        return m


def operands(wx, wy):
    return st.lists(st.tuples(st.integers(-(1 << (wx - 1)), (1 << (wx - 1)) - 1),
                              st.integers(-(1 << (wy - 1)), (1 << (wy - 1)) - 1)),
                    min_size=1, max_size=20)


@pytest.mark.parametrize("wx, wy", [(8, 8), (1, 5), (18, 18), (9, 3)])
@budget(10)
@given(data=st.data())
def test_fabric_product(wx, wy, data):
    """The product of the operands set before edge c is read after edge c + DSP_LATENCY,
    every cycle (a new pair each cycle)."""
    pairs = data.draw(operands(wx, wy))
    dut = _Wrap(wx, wy, "fabric")
    got = []

    async def tb(ctx):
        for c in range(len(pairs) + DSP_LATENCY):
            if c < len(pairs):
                ctx.set(dut.x, pairs[c][0])
                ctx.set(dut.y, pairs[c][1])
            await ctx.tick()
            if c >= DSP_LATENCY - 1 and len(got) < len(pairs):
                got.append(ctx.get(dut.p))

    run(dut, tb)
    assert got == [a * b for a, b in pairs]
    assert dut.p.shape() == signed(wx + wy)


def test_ecp5_instance():
    m = Module()
    x, y = Signal(signed(8), name="x"), Signal(signed(6), name="y")
    p = dsp_product(m, x, y, "ecp5", name="mul0")
    inst = m.submodules["mul0"]
    assert inst.type == "MULT18X18D"
    par = inst.parameters
    for reg in ("REG_INPUTA_CLK", "REG_INPUTB_CLK", "REG_OUTPUT_CLK"):
        assert par[reg] == "CLK0", reg
    assert par["REG_PIPELINE_CLK"] == "NONE" and par["REG_INPUTC_CLK"] == "NONE"
    ports = inst.ports
    assert ports["SIGNEDA"][0].value == 1 and ports["SIGNEDB"][0].value == 1
    assert ports["CE0"][0].value == 1 and ports["RST0"][0].value == 0
    # A/B: the 18-bit sign extensions of x and y (a_i driven from x's top bit above 8)
    a_bits = [ports[f"A{i}"][0] for i in range(ECP5_MULT_BITS)]
    a_sig = a_bits[0].value
    assert all(b.value is a_sig and b.start == i for i, b in enumerate(a_bits))
    stmts = [repr(s) for s in m._statements["comb"]]
    assert any("(eq (sig mul0_a) (sig x))" in s for s in stmts), stmts
    assert any("(eq (sig mul0_b) (sig y))" in s for s in stmts), stmts
    assert a_sig.shape() == unsigned(ECP5_MULT_BITS)
    assert p.shape() == signed(14)
    assert {d for _, d in (ports[f"P{i}"] for i in range(36))} == {"o"}


def test_platform_dsp():
    from types import SimpleNamespace
    assert platform_dsp(None) == "fabric"
    assert platform_dsp(SimpleNamespace(family="ecp5")) == "ecp5"
    assert platform_dsp(SimpleNamespace(family="ice40")) == "fabric"


def test_wrong_parameters():
    m = Module()
    with pytest.raises(ValueError, match=r"^dsp must be one of 'fabric', 'ecp5', not 'x'$"):
        dsp_product(m, Signal(signed(4)), Signal(signed(4)), "x")
    with pytest.raises(ValueError, match=r"^dsp must be one of 'fabric', 'ecp5', not 1$"):
        check_dsp(1)
    assert check_dsp(None) is None
    with pytest.raises(TypeError, match=r"^dsp_product multiplies signed signals, not "
                                        r"unsigned\(4\) and signed\(4\)$"):
        dsp_product(m, Signal(4), Signal(signed(4)), "fabric")
    with pytest.raises(ValueError, match=r"^a MULT18X18D takes operands of at most 18 bits, "
                                         r"not 19 and 4$"):
        dsp_product(m, Signal(signed(19)), Signal(signed(4)), "ecp5")
    assert Const(0).shape() == unsigned(1)
