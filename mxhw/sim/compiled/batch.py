"""The :class:`~.model.Model`'s batch runs: many clock cycles in one foreign call
(``mx_run``: per-cycle input vectors; ``mx_stream``: a valid/ready exchange)."""

import ctypes

import numpy as np

from ...lib.params import check_int
from .beats import pack_beats, unpack_beats
from .errors import CompiledSimError
from .library import u32p as _u32p

__all__ = ["BatchRuns"]


class BatchRuns:
    """:meth:`run` and :meth:`stream` of :class:`~.model.Model` (a base class of it)."""

    def run(self, inputs, outputs=(), cycles=None):
        """Batch: drive ``inputs`` for ``cycles`` cycles, sampling ``outputs`` each cycle just
        before the clock edge.

        ``inputs`` is a sequence of ``(port, values)`` pairs, or a dict keyed by port name
        (signals are not hashable), ``values`` one integer per cycle, all the same length;
        ``outputs`` is a sequence of ports. Returns a list with one list of integers per
        output. Runs at C speed (one foreign call).
        """
        pairs = inputs.items() if isinstance(inputs, dict) else inputs
        ins = [(self._plain_port(k), list(v)) for k, v in pairs]
        outs = [self._plain_port(k) for k in outputs]
        if cycles is None:
            if not ins:
                raise ValueError("cycles is required when there are no inputs")
            cycles = len(ins[0][1])
        for p, v in ins:
            if not p.input:
                raise self._not_settable(p)
            if len(v) != cycles:
                raise ValueError(f"Input {p.name!r} has {len(v)} values for {cycles} cycles")
        in_words = sum(p.words for p, _ in ins)
        in_data = np.zeros((cycles, max(in_words, 1)), dtype=np.uint32)
        col = 0
        for p, vals in ins:
            try:   # fast path: values that fit an int64 (negative ones wrap)
                vals = np.asarray(vals, dtype=np.int64)
            except (OverflowError, ValueError, TypeError):
                pass
            in_data[:, col:col + p.words] = pack_beats(vals, p, raw=True)
            col += p.words
        out_words = sum(p.words for p in outs)
        out_data = np.zeros((cycles, max(out_words, 1)), dtype=np.uint32)
        in_ptrs = (_u32p * max(len(ins), 1))(*[ctypes.cast(p.next, _u32p) for p, _ in ins])
        in_w = (ctypes.c_size_t * max(len(ins), 1))(*[p.words for p, _ in ins])
        out_ptrs = (_u32p * max(len(outs), 1))(*[ctypes.cast(p.curr, _u32p) for p in outs])
        out_w = (ctypes.c_size_t * max(len(outs), 1))(*[p.words for p in outs])
        failed = self._lib.mx_run(self._h, cycles, len(ins), in_ptrs, in_w,
                                  in_data.ctypes.data_as(_u32p), len(outs), out_ptrs, out_w,
                                  out_data.ctypes.data_as(_u32p))
        self._dirty = True
        if failed:
            self._assertion_failed()
        result, col = [], 0
        for p in outs:
            result.append(unpack_beats(out_data[:, col:col + p.words], p, raw=True))
            col += p.words
        return result

    def stream(self, i=None, payloads=(), o=None, count=0, *, gaps=None, stalls=None,
               timeout=None, raw=False):
        """Batch stream exchange, the cycle loop in C: offer ``payloads`` on stream ``i``
        and accept ``count`` payloads from stream ``o`` (either may be ``None``), with the
        exact per-cycle behaviour of :func:`mxhw.sim.stream_exchange` (see there for
        ``gaps``, ``stalls``, ``timeout`` and ``raw``). Both streams' members must be
        top-level ports. Returns ``(received payloads, cycles)``; a timeout raises
        :class:`mxhw.sim.SimTimeout` with ``.received``, ``.sent`` (beats taken) and
        ``.cycles`` set.
        """
        from ..timeout import DEFAULT_TIMEOUT, SimTimeout
        if timeout is None:
            timeout = DEFAULT_TIMEOUT
        n_in = len(payloads) if i is not None else 0
        n_out = int(count) if o is not None else 0
        null = ctypes.c_void_p(0)

        def port(expr, want_input):
            p = self._plain_port(expr)
            if p.internal or p.outline is not None:
                raise CompiledSimError(f"{p.name!r} is not a top-level port")
            if want_input and not p.input:
                raise self._not_settable(p)
            return p

        def addr(arr):
            return ctypes.c_void_p(ctypes.addressof(arr))

        def resolved(stream, inward):
            # a stream's payload port and C addresses (payload, words, valid, ready), cached
            # per interface: a host driver calls this once per packet, and the lookups would
            # cost more than a short exchange
            got = self._stream_ports.get(id(stream))
            if got is None or got[0] is not stream:
                p, v, r = (port(stream.payload, inward), port(stream.valid, inward),
                           port(stream.ready, not inward))
                side = "next" if inward else "curr"
                got = self._stream_ports[id(stream)] = (stream, p, (
                    addr(getattr(p, side)), p.words, addr(getattr(v, side)),
                    addr(r.curr if inward else r.next)))
            return got[1], got[2]

        if n_in:
            ip, in_args = resolved(i, True)
            in_data = pack_beats(payloads, ip, raw)
        else:
            in_data = np.zeros((1, 1), dtype=np.uint32)
            in_args = (null, 1, null, null)
        if n_out:
            op, out_args = resolved(o, False)
            out_data = np.zeros((n_out, op.words), dtype=np.uint32)
        else:
            out_data = np.zeros((1, 1), dtype=np.uint32)
            out_args = (null, 1, null, null)

        def schedule(seq, n):
            if seq is None or n == 0:
                return None, null
            a = np.ascontiguousarray(np.asarray(seq, dtype=np.uint32))
            if a.shape != (n,):
                raise ValueError(f"need one gap/stall count per beat ({n}), got {a.shape}")
            return a, ctypes.c_void_p(a.ctypes.data)

        g_keep, g_ptr = schedule(gaps, n_in)
        s_keep, s_ptr = schedule(stalls, n_out)
        stats = (ctypes.c_uint64 * 3)()
        rc = self._lib.mx_stream(
            self._h, *in_args, ctypes.c_void_p(in_data.ctypes.data), g_ptr, n_in,
            *out_args, ctypes.c_void_p(out_data.ctypes.data), s_ptr, n_out,
            max(1, int(timeout)), int(self._dirty), stats)
        self._dirty = True
        cycles, sent, got = stats
        received = (unpack_beats(out_data[:got], op, raw) if n_out else [])
        if rc == 1:
            self._assertion_failed()
        if rc in (2, 3):
            what = ("stream_put: ready never rose" if rc == 2
                    else "stream_get: valid never rose")
            err = SimTimeout(f"{what} within {timeout} cycles")
            err.received, err.cycles, err.sent = received, cycles, sent
            raise err
        return received, cycles

    def exchange(self, i, o, data=b"", want=0, max_cycles=1_000_000, linger=16):
        """A byte link in bulk, the cycle loop in C: offer the bytes of ``data`` on the
        8-bit stream ``i`` (one per cycle while ``i.ready``) and collect every byte stream
        ``o`` presents (its ``ready`` held high) until all of ``data`` is taken, at least
        ``want`` bytes are received and none came for ``linger`` cycles, so a whole
        response arrives in one call whatever its format; or until ``max_cycles`` cycles.
        Returns ``(received bytes, cycles, bytes of data taken)``; stopping at
        ``max_cycles`` is not an error (the caller sees what is missing).
        """
        check_int("want", want, 0, 1 << 24)
        check_int("max_cycles", max_cycles, 0, 1 << 62)
        check_int("linger", linger, 0, 1 << 20)
        ports = self._exchange_ports(i, o)
        data = bytes(data)
        cap = max(int(want), 1) + 65536
        buf = self.__dict__.get("_exchange_buf")
        if buf is None or len(buf) < cap:
            buf = self._exchange_buf = ctypes.create_string_buffer(cap)
        stats = (ctypes.c_uint64 * 3)()
        ip, iv, ir, op, ov, ordy = ports
        rc = self._lib.mx_exchange(self._h, ip, iv, ir, data, len(data), op, ov, ordy, buf,
                                   cap, int(want), int(linger), int(max_cycles), stats)
        self._dirty = True
        cycles, sent, got = stats
        if rc == 1:
            self._assertion_failed()
        return ctypes.string_at(buf, got), cycles, sent

    def _exchange_ports(self, i, o):
        """The six port addresses :meth:`exchange` hands to C, checked once per pair of
        streams (cached by identity; the model keeps the streams alive)."""
        cache = self.__dict__.setdefault("_exchange_cache", {})
        hit = cache.get((id(i), id(o)))
        if hit is not None and hit[0] is i and hit[1] is o:
            return hit[2]
        ip, iv, ir = (self._plain_port(x) for x in (i.payload, i.valid, i.ready))
        op, ov, ordy = (self._plain_port(x) for x in (o.payload, o.valid, o.ready))
        for p, inward in ((ip, True), (iv, True), (ir, False), (op, False), (ov, False),
                          (ordy, True)):
            if p.internal or p.input != inward or p.width > 32:
                raise CompiledSimError(f"exchange needs top-level byte streams; {p.name!r} "
                                       f"is not a suitable {'input' if inward else 'output'}")
        if ip.width != 8 or op.width != 8:
            raise CompiledSimError(f"exchange moves bytes: stream payloads must be 8 bits wide, "
                                   f"not {ip.width} and {op.width}")

        def a(arr):
            return ctypes.c_void_p(ctypes.addressof(arr))
        ports = (a(ip.next), a(iv.next), a(ir.curr), a(op.curr), a(ov.curr), a(ordy.next))
        cache[(id(i), id(o))] = (i, o, ports)
        return ports
