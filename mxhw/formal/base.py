"""What every proof harness shares: the reset-less ``sync`` domain, cycle counting, block
formats of k elements, an exact sum."""

from __future__ import annotations

from amaranth.hdl import ClockDomain, Elaboratable, Signal

__all__ = ["Harness", "cycles_since_start", "block_format", "balanced_sum"]


class Harness(Elaboratable):
    """Base: a reset-less ``sync`` domain whose clock is a port (else it is tied off)."""

    def __init__(self):
        self.cd = ClockDomain("sync", reset_less=True)

    def inputs(self):
        return []

    def ports(self):
        return [self.cd.clk, *self.inputs()]

    def setup(self, m):
        m.domains.sync = self.cd

    def submodule(self):
        """What a harness adds as its block ``self.dut`` (an induction harness: the
        block's elaborated fragment, whose registers it reads: harness_induct)."""
        return self.dut

    def invariants(self, m, **state):
        """Extra assertions tying the block's registers to the harness's ``state`` (for
        k-induction: harness_induct); none by default."""


def cycles_since_start(m, limit):
    """A 1-bit signal high once ``limit`` cycles have passed since the first one."""
    if limit == 0:
        return 1
    count = Signal(range(limit + 1), name="cycles")
    with m.If(count != limit):
        m.d.sync += count.eq(count + 1)
    return count == limit


def block_format(name, k):
    """The golden block format ``name`` with ``k`` elements per block (k < 32: a
    sub-block used by a decomposed proof)."""
    import dataclasses
    from ..formats import lookup_format
    fmt = lookup_format(name, "fmt", "block")
    return fmt if k == fmt.block else dataclasses.replace(fmt, name=f"{fmt.name}_k{k}",
                                                          block=k)


def balanced_sum(terms):
    """Exact integer sum as a balanced tree of ``+`` (Amaranth widens every sum)."""
    terms = list(terms)
    while len(terms) > 1:
        terms = [terms[i] + terms[i + 1] if i + 1 < len(terms) else terms[i]
                 for i in range(0, len(terms), 2)]
    return terms[0]
