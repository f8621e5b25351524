"""Simulation helpers shared by tests, benchmarks and the host driver's simulated transport.

Testbenches are Amaranth 0.5 async functions ``async def tb(ctx)`` that use only
``ctx.set``, ``ctx.get``, ``await ctx.tick()`` and ``await ctx.tick().sample(...)``; the
helpers here are written in those terms, so a back end that offers the same operations
runs the same testbenches.

* :func:`run` -- simulate a design with a clock and testbenches (VCD on request), on
  Amaranth's simulator (``backend="pysim"``) or a compiled CXXRTL model
  (``backend="compiled"``, see :mod:`mxhw.sim.compiled`);
* :func:`stream_put` / :func:`stream_get` -- one transfer on an ``amaranth.lib.stream``
  interface, with a bounded wait that fails with a message instead of hanging;
* :func:`stream_send` / :func:`stream_recv` -- many transfers, with idle cycles before each
  (valid gaps, back-pressure): given per beat (``gaps=``/``stalls=``, e.g. drawn by a
  Hypothesis strategy) or drawn from a seeded generator;
* :func:`stream_exchange` -- send a whole block of payloads on one stream while receiving
  on another, in one call; on the compiled back end the cycle loop runs in C
  (:meth:`mxhw.sim.compiled.Model.stream`), with the same cycles and results as the
  per-cycle path.

Set ``MXHW_VCD=1`` to write a waveform of every :func:`run` under ``out/vcd/``.
Set ``MXHW_SIM_BACKEND=compiled`` to make :func:`run` use the compiled back end wherever
its caller does not choose one (pytest: ``-p mxhw.sim.pytest_plugin --sim-backend=compiled``).

Host drivers and batch runs use the compiled model directly::

    from mxhw.sim import compiled
    with compiled.build(dut) as m:          # built once per design, cached on disk
        m.set(dut.i.payload, 5); m.set(dut.i.valid, 1)
        m.step()                            # one rising edge (m.step(n): n edges, in C)
        m.get(dut.o.payload)                # ints, lib.data views, lists for port arrays
        m.reset()                           # pulse rst
        m.run([(dut.a, xs), (dut.b, ys)], [dut.y])   # per-cycle vectors, loop in C

How the back ends work, and their measurements: ``docs/sim.md``.
"""

from __future__ import annotations

import os
import random
import re
import warnings
from contextlib import nullcontext
from pathlib import Path

from amaranth.sim import Simulator

from .timeout import DEFAULT_TIMEOUT, SimTimeout

__all__ = ["run", "stream_put", "stream_get", "stream_send", "stream_recv", "stream_exchange",
           "draw_waits", "SimTimeout",
           "DEFAULT_TIMEOUT", "BACKENDS", "default_backend", "SimBackendFallback"]

BACKENDS = ("pysim", "compiled")


class SimBackendFallback(UserWarning):
    """``MXHW_SIM_BACKEND=compiled`` asked for the compiled back end, but the design needs
    pysim (several clock domains, no component signature): it ran on pysim."""


def default_backend():
    """The back end :func:`run` uses when none is given: ``$MXHW_SIM_BACKEND`` or pysim."""
    name = os.environ.get("MXHW_SIM_BACKEND") or "pysim"
    if name not in BACKENDS:
        raise ValueError(f"MXHW_SIM_BACKEND must be one of {', '.join(BACKENDS)}, not {name!r}")
    return name


def _vcd_path(dut, vcd):
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", vcd or type(dut).__name__)
    path = Path("out/vcd") / f"{name}.vcd"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def run(dut, *testbenches, processes=(), clock=1e-8, vcd=None, deadline=None, backend=None):
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
    backend : "pysim", "compiled" or None
        ``None``: :func:`default_backend`. The compiled back end runs the same testbenches
        (``ctx.set/get/tick/tick().sample``) on a CXXRTL model of designs with one ``sync``
        domain, touching top-level ports only; asked for explicitly, it raises
        :class:`~mxhw.sim.compiled.CompiledSimError` for other designs, while a default
        from ``MXHW_SIM_BACKEND`` falls back to pysim with a :class:`SimBackendFallback`
        warning.
    """
    explicit = backend is not None
    if backend is None:
        backend = default_backend()
    if backend == "compiled":
        from .compiled import CompiledSimError, build
        try:
            model = build(dut)
        except CompiledSimError as e:
            if explicit:
                raise
            # MXHW_SIM_BACKEND=compiled means "compiled where the design allows it"
            warnings.warn(f"MXHW_SIM_BACKEND=compiled: {e} -- falling back to pysim",
                          SimBackendFallback, stacklevel=2)
            backend = "pysim"
        else:
            return _run_compiled(model, dut, testbenches, processes, clock, vcd, deadline)
    if backend != "pysim":
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    sim = Simulator(dut)
    if clock is not None:
        sim.add_clock(clock)
    for tb in testbenches:
        sim.add_testbench(tb)
    for p in processes:
        sim.add_process(p)
    ctx = nullcontext()
    if os.environ.get("MXHW_VCD"):
        ctx = sim.write_vcd(str(_vcd_path(dut, vcd)))
    with ctx:
        if deadline is None:
            sim.run()
        else:
            sim.run_until(deadline)


def _run_compiled(model, dut, testbenches, processes, clock, vcd, deadline):
    from . import compiled
    try:
        if clock is None and model.has_clk:
            raise compiled.CompiledSimError("clock=None, but the design has a sync domain")
        if os.environ.get("MXHW_VCD"):
            model.open_vcd(_vcd_path(dut, vcd), period=clock or 1e-8)
        max_cycles = None
        if deadline is not None:
            max_cycles = int(deadline / (clock or 1e-8))
        compiled.simulate(model, testbenches, processes, max_cycles=max_cycles)
    finally:
        model.close_vcd()
        model.close()


# The interface members are looked up once per call (a flipped interface's attribute access
# costs microseconds, more than a compiled simulator's whole clock cycle).

async def stream_put(ctx, stream, payload, timeout=DEFAULT_TIMEOUT):
    """Offer ``payload`` on ``stream`` (a flipped stream interface) until it is taken."""
    await stream_send(ctx, stream, (payload,), timeout=timeout)


async def stream_get(ctx, stream, timeout=DEFAULT_TIMEOUT):
    """Accept one payload from ``stream``; returns its value (``ctx.get`` form)."""
    return (await stream_recv(ctx, stream, 1, timeout=timeout))[0]


def _waits(waits, rng, p, n):
    """Idle-cycle counts before each of ``n`` beats: ``waits`` as given, else drawn one beat
    at a time from ``rng`` (``None`` without either)."""
    if waits is not None:
        if len(waits) != n:
            raise ValueError(f"need one wait count per beat ({n}), got {len(waits)}")
        return iter(waits)
    if rng is None:
        return None
    return (sum(1 for _ in iter(lambda: rng.random() < p, False)) for _ in range(n))


async def stream_send(ctx, stream, payloads, rng=None, p_idle=0.0, timeout=DEFAULT_TIMEOUT,
                      gaps=None):
    """Send every payload in order. Before payload ``n``, idle ``gaps[n]`` cycles (valid
    low); without ``gaps`` but with ``rng``, idle while ``rng.random() < p_idle`` (random
    valid gaps, drawn as :func:`draw_waits` draws them)."""
    payload_sig, valid_sig, ready_sig = stream.payload, stream.valid, stream.ready
    waits = _waits(gaps, rng, p_idle, len(payloads))
    for p in payloads:
        for _ in range(next(waits) if waits is not None else 0):
            await ctx.tick()
        ctx.set(payload_sig, p)
        ctx.set(valid_sig, 1)
        for _ in range(timeout):
            # sample at the clock edge itself: another testbench may drive ready this cycle
            *_, ready = await ctx.tick().sample(ready_sig)
            if ready:
                ctx.set(valid_sig, 0)
                break
        else:
            raise SimTimeout(f"stream_put: ready never rose within {timeout} cycles")


async def stream_recv(ctx, stream, count, rng=None, p_stall=0.0, timeout=DEFAULT_TIMEOUT,
                      stalls=None):
    """Receive ``count`` payloads. Before payload ``n``, hold ready low for ``stalls[n]``
    cycles; without ``stalls`` but with ``rng``, while ``rng.random() < p_stall`` (random
    back-pressure)."""
    valid_sig, payload_sig, ready_sig = stream.valid, stream.payload, stream.ready
    waits = _waits(stalls, rng, p_stall, count)
    out = []
    for _ in range(count):
        for _ in range(next(waits) if waits is not None else 0):
            await ctx.tick()
        ctx.set(ready_sig, 1)
        for _ in range(timeout):
            *_, valid, payload = await ctx.tick().sample(valid_sig, payload_sig)
            if valid:
                ctx.set(ready_sig, 0)
                out.append(payload)
                break
        else:
            raise SimTimeout(f"stream_get: valid never rose within {timeout} cycles")
    return out


def seeded_rng(seed):
    """A ``random.Random`` for back-pressure patterns (seed from Hypothesis)."""
    return random.Random(seed)


def draw_waits(rng, p, n):
    """``n`` idle-cycle counts, one per beat: each the number of successive
    ``rng.random() < p`` draws (the pattern :func:`stream_send` draws one beat at a time)."""
    if rng is None or not p:
        return [0] * n
    return list(_waits(None, rng, p, n))


async def stream_exchange(ctx, i=None, payloads=(), o=None, count=0, *, rng=None,
                          p_idle=0.0, p_stall=0.0, gaps=None, stalls=None,
                          timeout=DEFAULT_TIMEOUT, raw=False, batch=None):
    """Send ``payloads`` on stream ``i`` while receiving ``count`` payloads from stream
    ``o``, both at up to one transfer per cycle; returns ``(received, cycles)``.

    Per cycle, as :func:`stream_send` and :func:`stream_recv` running side by side: before
    beat ``n`` the producer idles ``gaps[n]`` cycles (``valid`` left as it was), then
    offers the beat (``payload``, ``valid = 1``) until ``ready`` is sampled high at a clock
    edge, then drops ``valid``; before received beat ``n`` the consumer idles
    ``stalls[n]`` cycles (``ready`` left as it was), then holds ``ready = 1`` until
    ``valid`` is sampled high, takes ``payload`` and drops ``ready``. The call returns
    after the edge on which the last beat was sent and the last one received, having run
    ``cycles`` edges.

    Parameters
    ----------
    i, o : stream interfaces (as seen from the testbench) or None
    payloads : sequence or NumPy array
        ``ctx.set`` values for ``i.payload``; with ``raw=True``, the payload's bits as
        ints, or a NumPy array (1-D for payloads up to 64 bits, or ``(n, words)`` uint32
        rows of 32-bit words, least significant first).
    count : int
        Payloads to receive from ``o``.
    rng, p_idle, p_stall :
        Random gaps/stalls: ``gaps = draw_waits(rng, p_idle, len(payloads))``, then
        ``stalls = draw_waits(rng, p_stall, count)`` (ignored when given explicitly).
    gaps, stalls : sequences of int or None
    timeout : int
        Cycles one beat may wait for its partner; :class:`SimTimeout` after that (with
        ``.received``, ``.sent`` and ``.cycles``; the producer's timeout is reported first).
    raw : bool
        Payloads in and out as the payload's bits (ints; signed payloads sign-extended)
        instead of ``ctx.set``/``ctx.get`` values (``lib.data`` views).
    batch : bool or None
        On the compiled back end, run the cycle loop in C when this testbench is the only
        live coroutine (``None``: whenever possible; ``False``: never, the per-cycle
        Python path). On pysim, always the per-cycle path.
    """
    n_in = len(payloads) if i is not None else 0
    n_out = int(count) if o is not None else 0
    if gaps is None and n_in and rng is not None:
        gaps = draw_waits(rng, p_idle, n_in)
    if stalls is None and n_out and rng is not None:
        stalls = draw_waits(rng, p_stall, n_out)
    in_c = getattr(ctx, "stream", None)      # the compiled back end's Context
    if in_c is not None and batch is not False:
        done = in_c(i, payloads, o, n_out, gaps=gaps, stalls=stalls, timeout=timeout, raw=raw)
        if done is not None:
            return done
    return await _exchange_per_cycle(ctx, i, payloads, n_in, o, n_out, gaps, stalls,
                                     timeout, raw)


def _raw_ints(payloads):
    import numpy as np
    if isinstance(payloads, np.ndarray) and payloads.ndim == 2:
        return [sum(int(w) << (32 * k) for k, w in enumerate(row)) for row in payloads]
    if isinstance(payloads, np.ndarray):
        return [int(x) for x in payloads]
    return payloads


async def _exchange_per_cycle(ctx, i, payloads, n_in, o, n_out, gaps, stalls, timeout, raw):
    from amaranth.hdl import Value
    sample = []
    if n_in:
        ip, iv, ir = i.payload, i.valid, i.ready
        if raw:
            ip, payloads = Value.cast(ip), _raw_ints(payloads)
        sample.append(ir)
    if n_out:
        op, ov, ordy = o.payload, o.valid, o.ready
        if raw:
            op = Value.cast(op)
        sample += [ov, op]
    received = []
    put, get = _Side(n_in, gaps), _Side(n_out, stalls)
    cycles = 0
    while put.done < n_in or get.done < n_out:
        offer, accept = put.start(), get.start()
        if offer:
            ctx.set(ip, payloads[put.done])
            ctx.set(iv, 1)
        if accept:
            ctx.set(ordy, 1)
        values = (await ctx.tick().sample(*sample))[2:]
        cycles += 1
        rdy = offer and values[0]
        vld = accept and values[-2]
        if rdy:
            ctx.set(iv, 0)
        if vld:
            received.append(values[-1])
            ctx.set(ordy, 0)
        failed = None
        if offer and put.after_edge(rdy, timeout):
            failed = "stream_put: ready never rose"
        if accept and get.after_edge(vld, timeout) and failed is None:
            failed = "stream_get: valid never rose"
        if failed is not None:
            err = SimTimeout(f"{failed} within {timeout} cycles")
            err.received, err.cycles, err.sent = received, cycles, put.done
            raise err
    return received, cycles


class _Side:
    """One side of a per-cycle exchange: ``n`` beats, ``waits[k]`` idle cycles before beat
    ``k``; ``done`` beats moved, ``idle`` idle cycles left, ``waited`` cycles this beat has
    waited for its partner."""
    __slots__ = ("n", "waits", "done", "idle", "waited")

    def __init__(self, n, waits):
        self.n, self.waits, self.done, self.waited = n, waits, 0, 0
        self.idle = waits[0] if n and waits else 0

    def start(self):
        """Whether this side offers (or accepts) a beat this cycle."""
        if self.done >= self.n:
            return False
        if self.idle:
            self.idle -= 1
            return False
        return True

    def after_edge(self, moved, timeout):
        """Account the edge (``moved``: the beat was transferred); whether the beat has now
        waited ``timeout`` cycles."""
        if moved:
            self.done += 1
            self.waited = 0
            if self.done < self.n and self.waits:
                self.idle = self.waits[self.done]
            return False
        self.waited += 1
        return self.waited >= timeout
