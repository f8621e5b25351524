"""The :class:`Model`: a compiled design loaded in this process, its ports mapped onto the
model's memory (32-bit words, little-endian), so ``set``/``get`` cost no foreign call; a
clock cycle is one foreign call, ``run``/``stream`` many cycles in C (``glue.cc``).
How a cycle is evaluated (fast clocking) and why: ``docs/sim.md``.
"""

import ctypes
import os

from amaranth.hdl import Const, ShapeCastable, Signal, Value, ValueCastable
from amaranth.lib import data, wiring

from . import _amaranth
from .batch import BatchRuns
from .errors import CompiledSimError
from .library import u32p as _u32p
from .rtlil import PortInfo

__all__ = ["Model"]


def _plain_struct_fields(shape):
    """``{name: (offset, mask)}`` for a struct layout whose fields are all plain integer
    shapes, else None."""
    try:
        layout = data.Layout.cast(shape)
    except TypeError:
        return None
    if not isinstance(layout, data.StructLayout):
        return None
    fields = {}
    for name, field in layout:
        if isinstance(field.shape, ShapeCastable):
            return None
        fields[name] = (field.offset, (1 << field.width) - 1)
    return fields


def _is_interface(expr):
    return isinstance(expr, wiring.PureInterface) or (
        hasattr(expr, "signature") and isinstance(expr.signature, wiring.Signature)
        and not isinstance(expr, (Value, ValueCastable)))


class _Closed:
    def __getattr__(self, name):
        raise CompiledSimError("This compiled model has been closed")


class _Slot:
    """What amaranth.sim._pyeval expects of a signal slot, backed by a model port."""
    __slots__ = ("model", "port", "is_comb")

    def __init__(self, model, port):
        self.model, self.port = model, port
        self.is_comb = not port.input

    @property
    def curr(self):
        return self.model._read(self.port)

    @property
    def next(self):
        return self.model._read(self.port)

    def update(self, value):
        self.model._write(self.port, value)


class Model(BatchRuns):
    """A compiled design, loaded in this process (made by :func:`build`).

    Values are set and read (``set``/``get``, with Amaranth's ``ctx.set``/``ctx.get``
    conversions) by port: a signature member (``Signal``, ``lib.data`` view, expression over
    ports), a port array (nested lists), an interface (dict by member name), or a port name
    string (``"a__0"``). Named internal signals can be read, not set. ``step(n)`` clocks ``n``
    rising edges; ``reset()`` pulses ``rst``; ``run()`` drives per-cycle vectors from C;
    ``open_vcd()`` records a waveform. Use it as a context manager, or call ``close()``.

    Attributes
    ----------
    compiled : bool
        Whether building this model compiled C++ (``False``: taken from the cache).
    engine : str
        ``"cxxrtl"`` or ``"verilator"`` (:func:`~mxhw.sim.compiled.build`).
    key, path :
        Cache key and shared-library path.
    """

    def __init__(self, lib, infos, *, has_clk, has_rst, key, path, compiled, names_map=None,
                 engine="cxxrtl"):
        self._lib = lib
        self.engine = engine
        self._names_map = names_map if names_map is not None else {}
        self._h = ctypes.c_void_p(lib.mx_create())
        self.key, self.path, self.compiled = key, path, compiled
        if os.environ.get("MXHW_SIM_FAST", "1") == "0":
            lib.mx_set_fast(self._h, 0)
        self.has_clk, self.has_rst = has_clk, has_rst
        self._ports = {}
        self._by_id = {}
        self._slots = []
        names = [p.name for p in infos]
        if has_clk:
            infos = infos + [PortInfo("clk", Signal(name="clk"), True)]
        if has_rst:
            infos = infos + [PortInfo("rst", Signal(name="rst"), True)]
        for p in infos:
            found = self._lookup(p.name)
            if found is None:
                if p.width == 0:
                    continue
                raise CompiledSimError(f"Port {p.name!r} not found in the compiled model")
            _, curr, nxt, _ = found
            arr_t = ctypes.c_uint32 * p.words
            p.curr = arr_t.from_address(ctypes.addressof(curr.contents))
            if p.input:
                if not nxt:
                    raise CompiledSimError(f"Input port {p.name!r} is not writable in the model")
                p.next = arr_t.from_address(ctypes.addressof(nxt.contents))
            self._ports[p.name] = p
            self._by_id[id(p.signal)] = len(self._slots)
            self._slots.append(_Slot(self, p))
        self._names = names
        self._rst = self._ports.get("rst")
        self._vcd = False
        for p in self._ports.values():   # inputs start at their init value, as on pysim
            if p.input and p.signal.init:
                self._write(p, p.signal.init)
        self._stream_ports = {}
        self._dirty = True
        self._vcd = False
        self._settle = lib.mx_settle
        self._tick = lib.mx_tick1
        # id(port object) -> reader / writer closures (the model keeps the objects alive,
        # so their ids stay unique)
        self._readers, self._writers, self._keep = {}, {}, []
        for p in self._ports.values():
            self._make_accessors(p)
        self._make_fast_api()

    def _make_fast_api(self):
        """Shadow ``get``/``set`` with closures that serve single-word ports of plain
        signals straight from model memory (the per-cycle hot path of a testbench)."""
        model, settle, h = self, self._settle, self._h
        rtab, wtab = {}, {}
        for p in self._ports.values():
            if p.words == 1 and not p.signed:
                rtab[id(p.signal)] = memoryview(p.curr).cast("B").cast("I")
                if p.input:
                    wtab[id(p.signal)] = (memoryview(p.next).cast("B").cast("I"),
                                          (1 << p.width) - 1)
        slow_get, slow_set = self._get, self._set
        # struct views of plain-integer fields: dicts of ints packed here (Layout.const is
        # tens of microseconds)
        vtab = {}
        for p in self._ports.values():
            fields = _plain_struct_fields(p.shape) if p.input and p.view is not None else None
            if fields is not None:
                vtab[id(p.view)] = (fields, p)

        def set_view(entry, expr, value):
            fields, p = entry
            if type(value) is dict:
                bits = 0
                for name, v in value.items():
                    f = fields.get(name)
                    if f is None or (type(v) is not int and type(v) is not bool):
                        return slow_set(expr, value)
                    bits |= (v & f[1]) << f[0]
                return model._write(p, bits)
            return slow_set(expr, value)

        def get(expr):
            mv = rtab.get(id(expr))
            if mv is None:
                return slow_get(expr)
            if model._dirty:
                if settle(h):
                    model._assertion_failed()
                model._dirty = False
            return mv[0]

        def set(expr, value):
            entry = wtab.get(id(expr))
            if entry is None or type(value) is not int:
                view = vtab.get(id(expr))
                if view is not None:
                    return set_view(view, expr, value)
                return slow_set(expr, value)
            mv, mask = entry
            mv[0] = value & mask
            model._dirty = True

        get.__doc__, set.__doc__ = Model.get.__doc__, Model.set.__doc__
        self.get, self.set = get, set

    def _make_accessors(self, p):
        model, arr, width = self, p.curr, p.width
        settle, h = self._settle, self._h
        if p.words == 1 and not p.signed:
            def read():
                if model._dirty:
                    if settle(h):
                        model._assertion_failed()
                    model._dirty = False
                return arr[0]
        else:
            def read():
                return model._read(p)
        self._readers[id(p.signal)] = read
        if p.view is not None and isinstance(p.shape, ShapeCastable):
            from_bits = p.shape.from_bits
            self._readers[id(p.view)] = lambda: from_bits(read())
            self._keep.append(p.view)
        if p.input:
            nxt, mask = p.next, (1 << width) - 1
            if p.words == 1:
                def write(value):
                    nxt[0] = value & mask
                    model._dirty = True
            else:
                def write(value):
                    model._write(p, value)
            self._writers[id(p.signal)] = write

    # lifetime
    def close(self):
        """Free the model; any later access raises :class:`CompiledSimError`."""
        if self._h is not None:
            if self._vcd:
                self.close_vcd()
            self._lib.mx_destroy(self._h)
            self._h = None

            def closed(*args, **kwargs):
                raise CompiledSimError("This compiled model has been closed")
            self.get = self.set = self._settle = self._tick = closed
            self._readers.clear()
            self._writers.clear()
            self._lib = _Closed()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def ports(self):
        """Port names in signature order (``clk``/``rst`` excluded)."""
        return list(self._names)

    @property
    def cycle(self):
        """Rising clock edges simulated so far."""
        return self._lib.mx_cycle(self._h)

    @property
    def deltas(self):
        """CXXRTL delta cycles run so far (a speed diagnostic: one per clock cycle with
        :attr:`fast` clocking, else two or more)."""
        return self._lib.mx_deltas(self._h)

    @property
    def fast(self):
        """Whether clock cycles run as one evaluation each instead of two (fast clocking,
        ``docs/sim.md``): when the design has one clock, no other edge tests, and settles
        in one delta cycle; off while a waveform is recorded, and when
        ``MXHW_SIM_FAST=0``. Both ways give the same values."""
        return bool(self._lib.mx_get_fast(self._h))

    # raw access
    def _read(self, p):
        if self._dirty:
            if self._lib.mx_settle(self._h):
                self._assertion_failed()
            self._dirty = False
        if p.outline is not None:
            self._lib.mx_outline_eval(p.outline)
        if p.words == 1:
            v = p.curr[0]
        else:
            v = int.from_bytes(bytes(p.curr), "little")
        if p.signed and v >> (p.width - 1):
            v -= 1 << p.width
        return v

    def _write(self, p, value):
        if not p.input:
            raise self._not_settable(p)
        value &= (1 << p.width) - 1
        if p.words == 1:
            p.next[0] = value
        else:
            ctypes.memmove(p.next, value.to_bytes(4 * p.words, "little"), 4 * p.words)
        self._dirty = True

    # amaranth.sim._pyeval protocol
    @property
    def slots(self):
        return self._slots

    def get_signal(self, signal):
        idx = self._by_id.get(id(signal))
        if idx is None:
            idx = self._internal(signal)
        return idx

    def _assertion_failed(self):
        msg = self._lib.mx_failure(self._h)
        text = msg.decode(errors="replace").strip() if msg else ""
        raise AssertionError(f"Assertion violated: {text}" if text else "Assertion violated")

    def _not_settable(self, p):
        if p.internal:
            return CompiledSimError(
                f"Internal signal {p.name!r} can be read but not set on the compiled back end "
                f"(only top-level inputs can be driven; use backend='pysim')")
        return CompiledSimError(f"Port {p.name!r} is an output of the design and cannot be set")

    def _internal(self, signal):
        """Map an internal (non-port) signal onto the model's debug information, read-only."""
        if self.engine != "cxxrtl":
            raise CompiledSimError(
                f"{signal!r}: the {self.engine} engine reads top-level ports only; set "
                f"MXHW_COMPILED_ENGINE=cxxrtl (or backend='pysim') to probe internal signals")
        path = self._names_map.get(signal) if isinstance(signal, Signal) else None
        if path is None:
            raise CompiledSimError(
                f"{signal!r} is not a signal of this design; the compiled back end reads "
                f"top-level ports and the design's named internal signals")
        name = " ".join(path[1:])
        found = self._lookup(name)
        width, curr, _, outline = found if found is not None else (None, None, None, None)
        if width != len(signal) or not curr:
            raise CompiledSimError(
                f"{signal!r} ({name!r}) is not visible in the compiled model (optimised away or "
                f"split); use backend='pysim' to probe it")
        p = PortInfo(name, signal, False)
        p.internal = True
        p.curr = (ctypes.c_uint32 * p.words).from_address(ctypes.addressof(curr.contents))
        p.outline = outline
        idx = len(self._slots)
        self._by_id[id(signal)] = idx
        self._slots.append(_Slot(self, p))
        self._keep.append(signal)
        self._readers[id(signal)] = lambda: self._read(p)
        return idx

    def _lookup(self, name):
        """``(width, curr, next, outline)`` of a CXXRTL object by name, or ``None``."""
        width, flags, typ = ctypes.c_size_t(), ctypes.c_uint32(), ctypes.c_uint32()
        curr, nxt, outline = _u32p(), _u32p(), ctypes.c_void_p()
        if not self._lib.mx_port(self._h, name.encode(), ctypes.byref(width),
                                 ctypes.byref(flags), ctypes.byref(typ), ctypes.byref(curr),
                                 ctypes.byref(nxt), ctypes.byref(outline)):
            return None
        return width.value, curr, nxt, outline.value

    def get_memory(self, memory):
        raise CompiledSimError("Memories cannot be accessed from the compiled back end")

    def _port_of(self, expr):
        if isinstance(expr, str):
            try:
                return self._ports[expr]
            except KeyError:
                raise CompiledSimError(f"No port named {expr!r}; ports: {self._names}") from None
        return None

    # value-level access (Amaranth ctx.get / ctx.set semantics)
    def get_value(self, expr):
        idx = self._by_id.get(id(expr))
        if idx is not None:
            return self._read(self._slots[idx].port)
        try:
            value = Value.cast(expr)
        except TypeError:
            raise TypeError(f"Cannot get {expr!r}: not a value") from None
        if isinstance(value, Signal):
            self.get_signal(value)  # raises the not-a-port error
        v = _amaranth.eval_value(self, value)
        width = len(value)
        v &= (1 << width) - 1
        if value.shape().signed and width and v >> (width - 1):
            v -= 1 << width
        return v

    def set_value(self, expr, value):
        idx = self._by_id.get(id(expr))
        if idx is not None:
            return self._write(self._slots[idx].port, value)
        target = Value.cast(expr)
        for sig in _amaranth.assignable_signals(target):
            p = self._slots[self.get_signal(sig)].port
            if not p.input:
                raise self._not_settable(p)
        _amaranth.eval_assign(self, target, value)

    def get(self, expr):
        """The value of a port or expression (``ctx.get`` form); lists for port arrays,
        dicts for interfaces, names for strings."""
        return self._get(expr)

    def set(self, expr, value):
        """Set an input port or expression over input ports (``ctx.set`` form); lists for
        port arrays, dicts for interfaces, names for strings."""
        return self._set(expr, value)

    def _get(self, expr):
        read = self._readers.get(id(expr))
        if read is not None:
            return read()
        p = self._port_of(expr)
        if p is not None:
            v = self._read(p)
            return p.shape.from_bits(v) if isinstance(p.shape, ShapeCastable) else v
        if isinstance(expr, (list, tuple)):
            return [self.get(e) for e in expr]
        if _is_interface(expr):
            return {name: self.get(getattr(expr, name)) for name in expr.signature.members}
        v = self.get_value(expr)
        if isinstance(expr, ValueCastable):
            shape = expr.shape()
            if isinstance(shape, ShapeCastable):
                return shape.from_bits(v)
        return v

    def _set(self, expr, value):
        if type(value) is int:
            write = self._writers.get(id(expr))
            if write is not None:
                return write(value)
        p = self._port_of(expr)
        if p is not None:
            if isinstance(p.shape, ShapeCastable):
                value = Const.cast(p.shape.const(value)).value
            return self._write(p, value)
        if isinstance(expr, (list, tuple)):
            if len(value) != len(expr):
                raise ValueError(f"Port array has {len(expr)} elements, value has {len(value)}")
            for e, v in zip(expr, value):
                self.set(e, v)
            return
        if _is_interface(expr):
            for name, v in value.items():
                self.set(getattr(expr, name), v)
            return
        if isinstance(expr, ValueCastable):
            shape = expr.shape()
            if isinstance(shape, ShapeCastable):
                value = shape.const(value)
        self.set_value(expr, Const.cast(value).value)

    # time
    def settle(self):
        """Propagate input changes through combinational logic (``get`` does this itself)."""
        if self._dirty:
            if self._lib.mx_settle(self._h):
                self._assertion_failed()
            self._dirty = False

    def step(self, cycles=1):
        """Simulate ``cycles`` rising clock edges."""
        if not self.has_clk:
            raise CompiledSimError("This design has no clock domain; it cannot be stepped")
        if cycles == 1:
            failed = self._tick(self._h, int(self._dirty))
        else:
            failed = self._lib.mx_tick(self._h, cycles, int(self._dirty))
        if failed:
            self._dirty = True
            self._assertion_failed()
        self._dirty = True   # logic fed by the new state settles on the next read

    def reset(self, cycles=1):
        """Hold ``rst`` high for ``cycles`` clock edges, then release it."""
        if self._rst is None:
            raise CompiledSimError("This design has no reset (no sync domain with rst)")
        self._write(self._rst, 1)
        self.step(cycles)
        self._write(self._rst, 0)
        self.settle()

    def _plain_port(self, expr):
        p = self._port_of(expr)
        if p is not None:
            return p
        if isinstance(expr, ValueCastable):
            expr = expr.as_value()
        idx = self._by_id.get(id(expr))
        if idx is None:
            raise CompiledSimError(f"{expr!r} is not a top-level port (batch runs take whole "
                                   f"ports)")
        return self._slots[idx].port

    # waveforms
    def open_vcd(self, path, period=1e-8):
        """Write every sample from now on to a VCD file at ``path``."""
        if self.engine != "cxxrtl":
            raise CompiledSimError(f"Waveforms need the CXXRTL engine, not {self.engine} "
                                   f"(MXHW_COMPILED_ENGINE=cxxrtl)")
        half_ps = max(1, round(period * 1e12 / 2))
        if not self._lib.mx_vcd_open(self._h, str(path).encode(), half_ps):
            raise CompiledSimError(f"Cannot open VCD file {path} (or one is already open)")
        self._vcd = True

    def close_vcd(self):
        if self._vcd:
            self._lib.mx_vcd_close(self._h)
            self._vcd = False


