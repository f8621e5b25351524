"""Wishbone B4 initiators for testbenches (written from the B4 specification, not from the
core's adapter), and the host driver's word accesses carried over them."""

import queue
import threading
from collections import deque

from amaranth.sim import Simulator

from mxhw.soc.driver import Accelerator
from mxhw.soc.top import VERSION

__all__ = ["classic_ops", "pipelined_ops", "run_ops", "run_driver", "MEMBERS", "core_regs"]


def core_regs(cfg, link_errors=0):
    """The core's read-only registers as docs/core.md describes them (byte address ->
    value): ID ("MXHW"), VERSION, FEATURES (log2 of the scratchpad words; ``cfg`` has no
    compute unit), CLK_HZ, LINK_ERRORS. CYCLES and SCRATCH are left to the caller."""
    major, minor, patch = VERSION
    return {0x00: 0x4D584857, 0x04: major << 16 | minor << 8 | patch,
            0x08: cfg.scratch_words.bit_length() - 1, 0x0C: cfg.clk_hz, 0x14: link_errors}

#: amaranth-soc's ``wishbone.Signature`` members (name: direction seen from the initiator)
MEMBERS = {"adr": "out", "dat_w": "out", "dat_r": "in", "sel": "out", "cyc": "out",
           "stb": "out", "we": "out", "ack": "in"}

LIMIT = 200  # cycles an access may wait for its ack


def _drive(ctx, bus, op):
    we, adr, dat = op
    ctx.set(bus.stb, 1)
    ctx.set(bus.adr, adr)
    ctx.set(bus.we, we)
    ctx.set(bus.dat_w, dat if we else 0)
    ctx.set(bus.sel, (1 << len(bus.sel)) - 1)


async def classic_ops(ctx, bus, ops, gaps=None):
    """Classic cycles, one per op ``(we, word address, data)``: ``stb`` held until ``ack``
    is seen at a clock edge, the next cycle starts right after (``gaps[i]`` idle cycles
    before op ``i``). Returns the read data (None for writes)."""
    out = []
    for i, op in enumerate(ops):
        for _ in range(gaps[i] if gaps else 0):
            await ctx.tick()
        ctx.set(bus.cyc, 1)
        _drive(ctx, bus, op)
        for _ in range(LIMIT):
            ack, dat = ctx.get(bus.ack), ctx.get(bus.dat_r)
            await ctx.tick()
            if ack:
                break
        else:
            raise AssertionError(f"no ack for {op}")
        out.append(None if op[0] else dat)
        ctx.set(bus.stb, 0)
        if gaps and i + 1 < len(ops) and gaps[i + 1]:
            ctx.set(bus.cyc, 0)
    ctx.set(bus.cyc, 0)
    return out


async def pipelined_ops(ctx, bus, ops, gaps=None):
    """Pipelined cycles: ``cyc`` held over all ``ops``, a request offered every cycle
    (``gaps[i]`` cycles with ``stb`` low before op ``i``), taken at an edge where ``stall``
    is low; acks matched to requests in order. Returns the read data (None for writes)."""
    results = [None] * len(ops)
    pending = deque()
    i, gap, idle = 0, (gaps[0] if gaps else 0), 0
    ctx.set(bus.cyc, 1)
    while i < len(ops) or pending:
        offer = i < len(ops) and gap == 0
        if offer:
            _drive(ctx, bus, ops[i])
        else:
            ctx.set(bus.stb, 0)
            gap = max(0, gap - 1)
        stall = ctx.get(bus.stall) if hasattr(bus, "stall") else 0
        ack, dat = ctx.get(bus.ack), ctx.get(bus.dat_r)
        if ack:
            assert pending, "ack without a request"
            j = pending.popleft()
            results[j] = None if ops[j][0] else dat
            idle = 0
        if offer and not stall:
            pending.append(i)
            i += 1
            gap = gaps[i] if gaps and i < len(ops) else 0
        await ctx.tick()
        idle += 1
        assert idle < LIMIT, "no ack"
    ctx.set(bus.stb, 0)
    ctx.set(bus.cyc, 0)
    return results


def run_ops(core, ops, pipelined, gaps=None):
    """Run ``ops`` on ``core`` (its ``bus``) in a fresh simulation; the read data."""
    sim = Simulator(core)
    sim.add_clock(1e-6)
    out = {}

    async def tb(ctx):
        f = pipelined_ops if pipelined else classic_ops
        out["r"] = await f(ctx, core.bus, ops, gaps)

    sim.add_testbench(tb)
    sim.run()
    return out["r"]


def run_driver(core, fn, pipelined, timeout=300):
    """``fn(acc)`` with ``acc`` an :class:`Accelerator` whose word reads and writes are
    Wishbone cycles on ``core`` (the driver runs in a thread, the simulation serves its
    accesses); returns ``fn``'s result."""
    req, resp = queue.Queue(), queue.Queue()

    class Dev(Accelerator):
        def __init__(self):
            super().__init__(transport=None)

        def _call(self, item):
            req.put(item)
            got = resp.get(timeout=timeout)
            if isinstance(got, BaseException):
                raise got
            return got

        def read_words(self, addr, n):
            return self._call(("r", addr, n))

        def write_words(self, addr, words):
            self._call(("w", addr, [int(w) for w in words]))

    result = {}

    def worker():
        try:
            result["value"] = fn(Dev())
        except BaseException as e:  # noqa: BLE001 - re-raised below
            result["error"] = e
        finally:
            req.put(None)

    sim = Simulator(core)
    sim.add_clock(1e-6)

    async def tb(ctx):
        thread = threading.Thread(target=worker, daemon=True)
        thread.start()
        f = pipelined_ops if pipelined else classic_ops
        while (item := req.get(timeout=timeout)) is not None:
            kind, addr, arg = item
            assert addr % 4 == 0
            if kind == "r":
                ops = [(0, addr // 4 + i, 0) for i in range(arg)]
            else:
                ops = [(1, addr // 4 + i, w) for i, w in enumerate(arg)]
            try:
                out = await f(ctx, core.bus, ops)
            except BaseException as e:  # noqa: BLE001 - handed to the driver
                resp.put(e)
                raise
            resp.put(out if kind == "r" else None)
        thread.join()

    sim.add_testbench(tb)
    sim.run()
    if "error" in result:
        raise result["error"]
    return result["value"]
