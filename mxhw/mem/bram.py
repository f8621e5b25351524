"""A simple dual-port block RAM with a selectable read latency, using the block RAM's own
output register on ECP5.

Why not just ``lib.memory.Memory`` and a register after it: Yosys's ECP5 memory mapping
never enables the DP16KD's output register (``REGMODE=OUTREG``), so every read leaves the
block through its slow array output (5.6-5.8 ns clock-to-out on the LFE5U-85F -6, the
SoC's critical path at about 128 MHz); and since Amaranth's read ports define the result
of a read colliding with a write, Yosys emulates that with a delayed write and a bypass
multiplexer after the block. On ECP5 this component instantiates DP16KD blocks itself,
wired as Yosys's own ``$__DP16KD_`` mapping (``share/lattice/brams_map_16kd.v``; the
tests compare the two netlists pin by pin), with the output register on for
``read_latency=2``. Elsewhere (simulation, other FPGAs) it is a ``Memory`` read port
followed, for ``read_latency=2``, by a register.
"""

from __future__ import annotations

from amaranth.hdl import ClockSignal, Const, Instance, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .scratchpad import check_count, word_shape

__all__ = ["BlockRAM", "dp16kd_geometry"]

#: DP16KD data widths in true dual-port mode and their depths (one 18 Kbit block)
_DP16KD_MODES = ((18, 1024), (9, 2048), (4, 4096), (2, 8192), (1, 16384))


def dp16kd_geometry(width, depth):
    """How :class:`BlockRAM` builds a ``width`` x ``depth`` memory from ECP5 DP16KD blocks:
    ``(data_width, blocks)`` (the narrowest mode deep enough, one block per
    ``data_width`` bits), or ``None`` when deeper than one block (16384 words: the
    ``Memory`` form is used)."""
    for dw, dd in _DP16KD_MODES:
        if depth <= dd:
            return dw, -(-width // dw)
    return None


class BlockRAM(wiring.Component):
    """One write port and one read port on one clock domain; reads every cycle.

    Parameters
    ----------
    shape : int or Shape
        Word shape (unsigned width), >= 1 bit.
    depth : int
        Words, >= 2.
    read_latency : int
        1: ``r_data`` is the word at ``r_addr`` of the previous cycle; 2: of the cycle
        before that (on ECP5 the second stage is the block RAM's output register, whose
        clock-to-out is a flip-flop's).
    domain : str
        Clock domain of both ports.

    Members
    -------
    w_addr : In(range(depth)), w_data : In(shape), w_en : In(1)
        A word is written at the clock edge where ``w_en`` is high.
    r_addr : In(range(depth)), r_data : Out(shape)

    Reading an address in the cycle it is written gives an undefined word on ECP5 block
    RAM (the ``Memory`` form returns the old one): do not use such a read. Contents start
    at zero (in simulation; block RAM after configuration); a domain reset clears neither
    the contents nor the read stages.

    Throughput one read and one write per cycle.
    """

    def __init__(self, shape, depth, *, read_latency=2, domain="sync"):
        shape = word_shape(shape)
        check_count("depth", depth, 2)
        if read_latency not in (1, 2) or isinstance(read_latency, bool):
            raise ValueError(f"read_latency must be 1 or 2, not {read_latency!r}")
        if not isinstance(domain, str):
            raise TypeError(f"domain must be a clock domain name, not {domain!r}")
        self._shape, self._depth = shape, depth
        self._read_latency, self._domain = read_latency, domain
        super().__init__({
            "w_addr": In(range(depth)),
            "w_data": In(shape),
            "w_en": In(1),
            "r_addr": In(range(depth)),
            "r_data": Out(shape),
        })

    shape = property(lambda self: self._shape)
    depth = property(lambda self: self._depth)
    read_latency = property(lambda self: self._read_latency)
    domain = property(lambda self: self._domain)

    def elaborate(self, platform):
        if getattr(platform, "family", None) == "ecp5" and \
                dp16kd_geometry(self._shape.width, self._depth) is not None:
            return self._elaborate_dp16kd()
        m = Module()
        m.submodules.mem = mem = Memory(shape=self._shape, depth=self._depth, init=[])
        wp = mem.write_port(domain=self._domain)
        rp = mem.read_port(domain=self._domain, transparent_for=())
        m.d.comb += [wp.addr.eq(self.w_addr), wp.data.eq(self.w_data), wp.en.eq(self.w_en),
                     rp.addr.eq(self.r_addr)]
        if self._read_latency == 2:
            # no reset, like the read port before it and the DP16KD's output register
            out = Signal.like(self.r_data, reset_less=True)
            m.d[self._domain] += out.eq(rp.data)
            m.d.comb += self.r_data.eq(out)
        else:
            m.d.comb += self.r_data.eq(rp.data)
        return m

    def _elaborate_dp16kd(self):
        """DP16KD blocks side by side in true dual-port mode: port A writes, port B reads
        (``REGMODE_B=OUTREG`` for latency 2); the address sits in the top bits of ADx
        (``14 - log2(depth of the mode)`` low bits 0; in x18 mode ADA0/1 are the write's
        byte enables, both 1), data in DIA0../DOB0..."""
        m = Module()
        width = self._shape.width
        dw, blocks = dp16kd_geometry(width, self._depth)
        abits = dict(_DP16KD_MODES)[dw].bit_length() - 1    # the mode's address bits
        w_data = Signal(blocks * dw)
        r_data = Signal(blocks * dw)
        m.d.comb += [w_data.eq(self.w_data), self.r_data.eq(r_data[:width])]
        low = 14 - abits
        w_ad = [Const(int(dw == 18 and i < 2), 1) for i in range(low)] + \
            [self.w_addr[i] if i < len(self.w_addr) else Const(0, 1) for i in range(abits)]
        r_ad = [Const(0, 1)] * low + \
            [self.r_addr[i] if i < len(self.r_addr) else Const(0, 1) for i in range(abits)]
        clk = ClockSignal(self._domain)
        for n in range(blocks):
            ports = {
                "p_DATA_WIDTH_A": dw, "p_DATA_WIDTH_B": dw,
                "p_REGMODE_A": "NOREG",
                "p_REGMODE_B": "OUTREG" if self._read_latency == 2 else "NOREG",
                "p_RESETMODE": "SYNC", "p_ASYNC_RESET_RELEASE": "SYNC",
                "p_CSDECODE_A": "0b000", "p_CSDECODE_B": "0b000",
                "p_CLKAMUX": "CLKA", "p_CLKBMUX": "CLKB",
                "p_WRITEMODE_A": "NORMAL", "p_WRITEMODE_B": "NORMAL",
                "p_GSR": "AUTO",
                "i_CLKA": clk, "i_WEA": self.w_en, "i_CEA": Const(1, 1),
                "i_OCEA": Const(1, 1), "i_RSTA": Const(0, 1),
                "i_CLKB": clk, "i_WEB": Const(0, 1), "i_CEB": Const(1, 1),
                "i_OCEB": Const(1, 1), "i_RSTB": Const(0, 1),
            }
            for s in "AB":
                for i in range(3):
                    ports[f"i_CS{s}{i}"] = Const(0, 1)
            for i in range(14):
                ports[f"i_ADA{i}"] = w_ad[i]
                ports[f"i_ADB{i}"] = r_ad[i]
            for i in range(18):
                ports[f"i_DIA{i}"] = w_data[n * dw + i] if i < dw else Const(0, 1)
                ports[f"i_DIB{i}"] = Const(0, 1)
                if i < dw:
                    ports[f"o_DOB{i}"] = r_data[n * dw + i]
            m.submodules[f"bram{n}"] = Instance("DP16KD", **ports)
        return m
