"""The AXI4-Lite adapter (mxhw.soc.axi) in front of the accelerator core: reads and writes
of the scratchpad and the SCRATCH register against a word model, with any response
back-pressure, partial write strobes refused (SLVERR, nothing written); its parameters."""

import pytest
from amaranth import Module
from amaranth.lib import wiring
from hypothesis import given, strategies as st
from support.hyp import budget

from mxhw import sim
from mxhw.soc.axi import AXI4LiteSignature, AXI4LiteToWishbone, Resp
from mxhw.soc.core import AcceleratorCore
from mxhw.soc.top import ID_VALUE, REGS, SCRATCHPAD_BASE, SoCConfig

CFG = SoCConfig(scratch_words=16, rows=0)
ADDRS = [SCRATCHPAD_BASE + 4 * i for i in range(CFG.scratch_words)] + [REGS["SCRATCH"]]


def run_axi(ops, pipelined):
    """Run ``ops`` (``("w", addr, data, strb, delay)`` / ``("r", addr, delay)``; delay:
    cycles before the manager takes the response) through the adapter and the core;
    returns ``[(resp, data)]`` (data None for writes)."""
    m = Module()
    m.submodules.axi = axi = AXI4LiteToWishbone(pipelined=pipelined)
    m.submodules.core = core = AcceleratorCore(CFG, pipelined=pipelined)
    wiring.connect(m, axi.wb, core.bus)
    bus = axi.axi
    out = []

    async def tb(ctx):
        for op in ops:
            if op[0] == "w":
                _, addr, data, strb, delay = op
                ctx.set(bus.awaddr, addr)
                ctx.set(bus.wdata, data)
                ctx.set(bus.wstrb, strb)
                ctx.set(bus.awvalid, 1)
                ctx.set(bus.wvalid, 1)
                while True:
                    *_, awr, wr = await ctx.tick().sample(bus.awready, bus.wready)
                    if awr and wr:
                        break
                ctx.set(bus.awvalid, 0)
                ctx.set(bus.wvalid, 0)
                if delay:
                    await ctx.tick().repeat(delay)
                ctx.set(bus.bready, 1)
                while True:
                    *_, v, resp = await ctx.tick().sample(bus.bvalid, bus.bresp)
                    if v:
                        break
                ctx.set(bus.bready, 0)
                out.append((resp, None))
            else:
                _, addr, delay = op
                ctx.set(bus.araddr, addr)
                ctx.set(bus.arvalid, 1)
                while True:
                    *_, ar = await ctx.tick().sample(bus.arready)
                    if ar:
                        break
                ctx.set(bus.arvalid, 0)
                if delay:
                    await ctx.tick().repeat(delay)
                ctx.set(bus.rready, 1)
                while True:
                    *_, v, resp, data = await ctx.tick().sample(bus.rvalid, bus.rresp,
                                                                bus.rdata)
                    if v:
                        break
                ctx.set(bus.rready, 0)
                out.append((resp, data))

    sim.run(m, tb)
    return out


op = st.one_of(
    st.tuples(st.just("w"), st.sampled_from(ADDRS), st.integers(0, 2**32 - 1),
              st.sampled_from([0b1111, 0b1111, 0b0001, 0b0111, 0b0000]), st.integers(0, 3)),
    st.tuples(st.just("r"), st.sampled_from(ADDRS + [REGS["ID"], 0x40]), st.integers(0, 3)))


@budget(15)
@given(ops=st.lists(op, min_size=1, max_size=12), pipelined=st.booleans())
def test_reads_and_writes_match_a_word_model(ops, pipelined):
    model = {REGS["ID"]: ID_VALUE}
    want = []
    for o in ops:
        if o[0] == "w":
            _, addr, data, strb, _ = o
            if strb == 0b1111:
                model[addr] = data
                want.append((Resp.OKAY, None))
            else:
                want.append((Resp.SLVERR, None))
        else:
            want.append((Resp.OKAY, model.get(o[1], 0)))
    assert run_axi(ops, pipelined) == want


def test_signature_members():
    sig = AXI4LiteSignature(16)
    assert set(sig.members) == {
        "awaddr", "awprot", "awvalid", "awready", "wdata", "wstrb", "wvalid", "wready",
        "bresp", "bvalid", "bready", "araddr", "arprot", "arvalid", "arready", "rdata",
        "rresp", "rvalid", "rready"}
    assert sig.members["awaddr"].shape == 16 and sig == AXI4LiteSignature(16)


@pytest.mark.parametrize("kwargs, exc, msg", [
    (dict(addr_width=2), ValueError, r"addr_width must be in \[3, 32\], not 2"),
    (dict(addr_width=33), ValueError, r"addr_width must be in \[3, 32\], not 33"),
    (dict(addr_width=8.0), TypeError, r"addr_width must be an integer, not 8.0"),
])
def test_bad_parameters(kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        AXI4LiteToWishbone(**kwargs)
    with pytest.raises(exc, match=msg):
        AXI4LiteSignature(**kwargs)
