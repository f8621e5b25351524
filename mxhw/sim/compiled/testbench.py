"""Amaranth testbenches (``async def tb(ctx)``) on a compiled :class:`~.model.Model`: the
``ctx`` they get (:class:`Context`, the Amaranth 0.5 subset ``get``, ``set``, ``tick`` with
``sample``/``until``/``repeat``, ``critical``) and the lock-step scheduler
(:func:`simulate`)."""

from contextlib import nullcontext

from amaranth.hdl import Shape, ValueCastable
from amaranth.sim import DomainReset

from .errors import CompiledSimError

__all__ = ["Context", "simulate"]


class _Tick:
    """``ctx.tick()`` on the compiled back end: awaitable, with ``sample``, ``until``,
    ``repeat`` and ``async for`` as in Amaranth 0.5."""
    __slots__ = ("_sampled",)

    def __init__(self, sampled=()):
        self._sampled = sampled

    def sample(self, *exprs):
        return _Tick(self._sampled + exprs)

    def __await__(self):
        return (yield self)

    async def until(self, condition):
        if isinstance(condition, ValueCastable) and not isinstance(condition.shape(), Shape):
            raise TypeError(f"The shape of a condition may only be `signed` or `unsigned`, "
                            f"not {condition.shape()!r}")
        trig = self.sample(condition)
        while True:
            _, rst, *values, done = await trig
            if rst:
                raise DomainReset
            if done:
                return tuple(values)

    async def repeat(self, count):
        if count <= 0:
            raise ValueError(f"Repeat count must be a positive integer, not {count!r}")
        for _ in range(count):
            _, rst, *values = await self
            if rst:
                raise DomainReset
        return tuple(values)

    def __aiter__(self):
        return self

    async def __anext__(self):
        return await self


_TICK = _Tick()


class Context:
    """The ``ctx`` handed to testbenches by the compiled back end (Amaranth 0.5 subset:
    ``get``, ``set``, ``tick`` with ``sample``/``until``/``repeat``, ``critical``), plus
    the :class:`Model` as ``ctx.model``."""

    def __init__(self, model):
        self.model = model
        self.get = model.get    # get(expr) -> value, as TestbenchContext.get
        self.set = model.set    # set(expr, value), as TestbenchContext.set
        self._has_clk = model.has_clk
        self._live = 1            # coroutines not yet finished (set by simulate)
        self._batch_cycles = 0    # cycles run by batch calls inside a testbench

    def stream(self, i, payloads, o, count, **kwargs):
        """:meth:`Model.stream <.model.Model.stream>` (the cycle loop in C) if the calling
        testbench is the only live coroutine (so cycles run in C cannot be observed out of
        lock-step), counting its cycles; else ``None`` (run the cycles one by one)."""
        if self._live != 1:
            return None
        received, cycles = self.model.stream(i, payloads, o, count, **kwargs)
        self._batch_cycles += cycles
        return received, cycles

    def tick(self, domain="sync", *, context=None):
        if domain == "sync" and context is None and self._has_clk:
            return _TICK
        if domain != "sync" or context is not None:
            raise CompiledSimError(f"The compiled back end has only the 'sync' clock domain, "
                                   f"not {domain!r}")
        if not self.model.has_clk:
            raise CompiledSimError("This design has no clock; ctx.tick() cannot be awaited")
        return _TICK

    def delay(self, interval):
        raise CompiledSimError("ctx.delay() is not supported by the compiled back end; "
                               "use ctx.tick()")

    def changed(self, *signals):
        raise CompiledSimError("ctx.changed() is not supported by the compiled back end")

    edge = posedge = negedge = changed

    def critical(self):
        return nullcontext()


def simulate(model, testbenches, processes=(), max_cycles=None):
    """Run async testbenches (critical) and processes (background) on ``model`` in lock-step.

    Every coroutine runs until it awaits ``ctx.tick()``; then the values each waiter asked to
    sample are read (after all of this cycle's sets), the clock edge is simulated, and every
    waiter resumes with ``(clk_hit, rst_active, *samples)``. Returns when every testbench has
    returned, or after ``max_cycles`` edges.
    """
    ctx = Context(model)
    # processes first: in Amaranth they observe an edge before testbenches do
    runnable = [(p(ctx), False) for p in processes] + [(tb(ctx), True) for tb in testbenches]
    # (coroutine, critical, value to send)
    ready = [(coro, crit, None) for coro, crit in runnable]
    everything = [coro for coro, _ in runnable]
    critical_left = sum(1 for _, c in runnable if c)
    ctx._live = len(runnable)
    get = model.get
    # rst is an input: its memory holds what was written, no settling needed
    rst_read = (memoryview(model._rst.next).cast("B").cast("I").__getitem__
                if model._rst is not None else None)
    tick, h = model._tick, model._h
    cycles = 0
    try:
        while critical_left:
            waiting = []
            for coro, crit, val in ready:
                try:
                    trig = coro.send(val)
                except StopIteration:
                    ctx._live -= 1
                    if crit:
                        critical_left -= 1
                    continue
                if type(trig) is not _Tick:
                    coro.close()
                    raise CompiledSimError(
                        f"A testbench awaited {trig!r}; the compiled back end supports only "
                        f"ctx.tick() (with .sample/.until/.repeat)")
                waiting.append((coro, crit, trig))
            if not critical_left:
                break
            if max_cycles is not None and cycles >= max_cycles:
                break
            ready = []
            rst = rst_read(0) == 1 if rst_read is not None else False
            for coro, crit, trig in waiting:
                samples = trig._sampled
                if samples:
                    ready.append((coro, crit, (True, rst, *map(get, samples))))
                else:
                    ready.append((coro, crit, (True, rst)))
            if tick(h, model._dirty):
                model._dirty = True
                model._assertion_failed()
            model._dirty = True   # settle lazily: on the first read, or in the next tick
            cycles += 1
    finally:
        for coro in everything:
            coro.close()
    return cycles + ctx._batch_cycles
