"""A signed multiplier with its operands and product registered, placed in a DSP block's own
registers where the target has them.

Yosys' ECP5 flow maps ``*`` to a ``MULT18X18D`` with every register bypassed and leaves the
operand and product registers in the fabric, so a register-to-register path runs through
the DSP's whole combinational delay plus the routing to and from it. :func:`dsp_product`
instead instantiates the ``MULT18X18D`` with its input registers (A, B) and output
register (P) on (``REG_INPUTA_CLK``/``REG_INPUTB_CLK``/``REG_OUTPUT_CLK`` = ``CLK0``); the
multiplier itself is then a register-to-register path inside the block. Elsewhere (the
simulator, other vendors, a LUT-only synthesis) it is the same circuit written in
Amaranth: two operand registers, ``*``, a product register: the same values with the same
latency (:data:`DSP_LATENCY`).
"""

from amaranth.hdl import ClockSignal, Const, Instance, Signal, signed

from .params import check_choice

__all__ = ["DSP_LATENCY", "DSP_KINDS", "ECP5_MULT_BITS", "check_dsp", "platform_dsp",
           "dsp_product"]

#: Cycles from the operands to the product: the operand registers, then the product's.
DSP_LATENCY = 2
#: ``dsp`` values: ``"fabric"`` (Amaranth registers and ``*``, any target, simulation),
#: ``"ecp5"`` (a ``MULT18X18D`` with its own registers).
DSP_KINDS = ("fabric", "ecp5")
#: Operand width of the ECP5 ``MULT18X18D`` (signed 18 x 18 -> 36 bits).
ECP5_MULT_BITS = 18


def check_dsp(dsp, name="dsp"):
    """``dsp``: ``None`` (chosen by the platform, :func:`platform_dsp`) or one of
    :data:`DSP_KINDS`."""
    if dsp is None:
        return None
    return check_choice(name, dsp, DSP_KINDS)


def platform_dsp(platform):
    """The ``dsp`` kind an elaboration for ``platform`` uses: ``"ecp5"`` for an Amaranth
    platform of the ECP5 family (``platform.family == "ecp5"``, as :mod:`mxhw.mem.bram`
    tells it), else ``"fabric"`` (``None``: simulation)."""
    return "ecp5" if getattr(platform, "family", None) == "ecp5" else "fabric"


def dsp_product(m, x, y, dsp, name="mul", domain="sync"):
    """``x * y`` (signed signals, ``x``'s and ``y``'s values as two's complement)
    :data:`DSP_LATENCY` cycles later, in ``m``: a ``signed(len(x) + len(y))`` signal.

    ``dsp="fabric"``: ``x`` and ``y`` registered, multiplied, the product registered.
    ``dsp="ecp5"``: one ``MULT18X18D`` (submodule ``name``) with its input and output
    registers clocked by ``domain`` (CLK0, CE0 high, RST0 low: the registers never reset,
    as the fabric ones have no reset); operands at most :data:`ECP5_MULT_BITS` bits."""
    check_choice("dsp", dsp, DSP_KINDS)
    if not (x.shape().signed and y.shape().signed):
        raise TypeError(f"dsp_product multiplies signed signals, not {x.shape()!r} and "
                        f"{y.shape()!r}")
    width = len(x) + len(y)
    p = Signal(signed(width), name=f"{name}_p")
    if dsp == "fabric":
        xq = Signal(x.shape(), name=f"{name}_a", reset_less=True)
        yq = Signal(y.shape(), name=f"{name}_b", reset_less=True)
        m.d[domain] += [xq.eq(x), yq.eq(y), p.eq(xq * yq)]
        return p
    if max(len(x), len(y)) > ECP5_MULT_BITS:
        raise ValueError(f"a MULT18X18D takes operands of at most {ECP5_MULT_BITS} bits, "
                         f"not {len(x)} and {len(y)}")
    a, b = Signal(ECP5_MULT_BITS, name=f"{name}_a"), Signal(ECP5_MULT_BITS, name=f"{name}_b")
    prod = Signal(2 * ECP5_MULT_BITS, name=f"{name}_prod")
    m.d.comb += [a.eq(x), b.eq(y), p.eq(prod[:width])]   # a, b: x, y sign-extended
    ports = {f"i_A{i}": a[i] for i in range(ECP5_MULT_BITS)}
    ports.update({f"i_B{i}": b[i] for i in range(ECP5_MULT_BITS)})
    ports.update({f"i_C{i}": Const(0) for i in range(ECP5_MULT_BITS)})
    ports.update({f"o_P{i}": prod[i] for i in range(2 * ECP5_MULT_BITS)})
    m.submodules[name] = Instance(
        "MULT18X18D",
        p_REG_INPUTA_CLK="CLK0", p_REG_INPUTA_CE="CE0", p_REG_INPUTA_RST="RST0",
        p_REG_INPUTB_CLK="CLK0", p_REG_INPUTB_CE="CE0", p_REG_INPUTB_RST="RST0",
        p_REG_INPUTC_CLK="NONE", p_REG_PIPELINE_CLK="NONE",
        p_REG_OUTPUT_CLK="CLK0", p_REG_OUTPUT_CE="CE0", p_REG_OUTPUT_RST="RST0",
        p_GSR="DISABLED", p_RESETMODE="SYNC", p_MULT_BYPASS="DISABLED",
        p_SOURCEB_MODE="B_SHIFT", p_CAS_MATCH_REG="FALSE",
        i_SIGNEDA=Const(1), i_SIGNEDB=Const(1), i_SOURCEA=Const(0), i_SOURCEB=Const(0),
        i_CLK0=ClockSignal(domain), i_CE0=Const(1), i_RST0=Const(0),
        **ports)
    return p
