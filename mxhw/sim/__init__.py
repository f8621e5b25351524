"""Simulation helpers shared by tests, benchmarks and the host driver's simulated transport.

Testbenches are Amaranth 0.5 async functions ``async def tb(ctx)`` that use only
``ctx.set``, ``ctx.get``, ``await ctx.tick()`` and ``await ctx.tick().sample(...)``; the
helpers here are written in those terms, so a back end that offers the same operations
runs the same testbenches.

* :func:`run` -- simulate a design with a clock and testbenches (VCD on request);
* :func:`stream_put` / :func:`stream_get` -- one transfer on an ``amaranth.lib.stream``
  interface, with a bounded wait that fails with a message instead of hanging;
* :func:`stream_send` / :func:`stream_recv` -- many transfers, with optional random
  valid/ready toggling (back-pressure) from a seeded generator.

Set ``MXHW_VCD=1`` to write a waveform of every :func:`run` under ``out/vcd/``.
"""

from __future__ import annotations

import os
import random
import re
from contextlib import nullcontext
from pathlib import Path

from amaranth.sim import Simulator

__all__ = ["run", "stream_put", "stream_get", "stream_send", "stream_recv", "SimTimeout",
           "DEFAULT_TIMEOUT"]

DEFAULT_TIMEOUT = 10_000


class SimTimeout(AssertionError):
    """A bounded wait in a testbench ran out: the design under test did not respond."""


def run(dut, *testbenches, processes=(), clock=1e-8, vcd=None, deadline=None):
    """Simulate ``dut`` (its ``sync`` domain clocked) until every testbench returns.

    Parameters
    ----------
    dut : Elaboratable
    testbenches : async callables ``tb(ctx)``
    processes : async callables added with ``add_process`` (run forever, e.g. monitors)
    clock : float or None
        Clock period in seconds; ``None`` for a purely combinational design.
    vcd : str or None
        Waveform name; written under ``out/vcd/<name>.vcd`` when ``MXHW_VCD`` is set.
    deadline : float or None
        Stop after this much simulated time (seconds) even if testbenches still wait.
    """
    sim = Simulator(dut)
    if clock is not None:
        sim.add_clock(clock)
    for tb in testbenches:
        sim.add_testbench(tb)
    for p in processes:
        sim.add_process(p)
    ctx = nullcontext()
    if os.environ.get("MXHW_VCD"):
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", vcd or type(dut).__name__)
        path = Path("out/vcd") / f"{name}.vcd"
        path.parent.mkdir(parents=True, exist_ok=True)
        ctx = sim.write_vcd(str(path))
    with ctx:
        if deadline is None:
            sim.run()
        else:
            sim.run_until(deadline)


async def stream_put(ctx, stream, payload, timeout=DEFAULT_TIMEOUT):
    """Offer ``payload`` on ``stream`` (a flipped stream interface) until it is taken."""
    ctx.set(stream.payload, payload)
    ctx.set(stream.valid, 1)
    for _ in range(timeout):
        # sample at the clock edge itself: another testbench may drive ready this cycle
        *_, ready = await ctx.tick().sample(stream.ready)
        if ready:
            ctx.set(stream.valid, 0)
            return
    raise SimTimeout(f"stream_put: ready never rose within {timeout} cycles")


async def stream_get(ctx, stream, timeout=DEFAULT_TIMEOUT):
    """Accept one payload from ``stream``; returns its value (``ctx.get`` form)."""
    ctx.set(stream.ready, 1)
    for _ in range(timeout):
        *_, valid, payload = await ctx.tick().sample(stream.valid, stream.payload)
        if valid:
            ctx.set(stream.ready, 0)
            return payload
    raise SimTimeout(f"stream_get: valid never rose within {timeout} cycles")


async def stream_send(ctx, stream, payloads, rng=None, p_idle=0.0, timeout=DEFAULT_TIMEOUT):
    """Send every payload in order; with ``rng``, idle a cycle with probability ``p_idle``
    before each transfer (random valid gaps)."""
    for p in payloads:
        while rng is not None and rng.random() < p_idle:
            await ctx.tick()
        await stream_put(ctx, stream, p, timeout=timeout)


async def stream_recv(ctx, stream, count, rng=None, p_stall=0.0, timeout=DEFAULT_TIMEOUT):
    """Receive ``count`` payloads; with ``rng``, hold ready low for a cycle with
    probability ``p_stall`` before each transfer (random back-pressure)."""
    out = []
    for _ in range(count):
        while rng is not None and rng.random() < p_stall:
            await ctx.tick()
        out.append(await stream_get(ctx, stream, timeout=timeout))
    return out


def seeded_rng(seed):
    """A ``random.Random`` for back-pressure patterns (seed from Hypothesis)."""
    return random.Random(seed)
