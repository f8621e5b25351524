"""Host driver: talks to a built (or simulated) SoC through the link protocol.

>>> from mxhw.soc.driver import Accelerator
>>> acc = Accelerator.simulated()           # the real SoC gateware, in Amaranth's simulator
>>> acc.info()["id_ok"]
True

Transports move bytes (:mod:`mxhw.soc.transport`, both importable from here):
:class:`SerialTransport` (pyserial: a board's USB-UART or the virtual board) and
:class:`SimTransport` (the SoC gateware in simulation).
"""

from __future__ import annotations

import functools
import struct
import threading

from ..lib.params import check_int, check_number
from ..systolic.driver import zero_code
from . import protocol as P
from .ascale import entry_bits, pack_entries
from .regmap import (DATAFLOW_IDS, FORMAT_IDS, GEMM_BASE, GEMM_REGS, decode, lanes_log2, pack_lanes,
                     region_address, registers_for)
from .top import ID_VALUE, REGS, SCRATCHPAD_BASE
from .layers import LayerMixin
from .tilehost import TileMixin, TileTensor, is_tile_format
from .transport import SerialTransport, SimTransport

__all__ = ["Accelerator", "SimTransport", "SerialTransport", "NoResponse", "DeviceError"]


class NoResponse(TimeoutError):
    """The device did not answer in time."""


class DeviceError(RuntimeError):
    """The device answered with an error status (``status``: its code)."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


_CMD_NAMES = {P.Cmd.PING: "PING", P.Cmd.READ: "READ", P.Cmd.WRITE: "WRITE"}


def _locked(method):
    """Run ``method`` holding the Accelerator's lock (calls from threads serialise)."""
    @functools.wraps(method)
    def run(self, *args, **kwargs):
        with self._lock:
            self._check_open()
            return method(self, *args, **kwargs)
    return run


class Accelerator(LayerMixin, TileMixin):
    """The host's handle on an mxhw SoC.

    Every exchange is checked (``soc/PROTOCOL.md``, "What the driver guarantees"): each
    request carries a sequence number (a byte, one more per request sent) that its
    response echoes; responses with another number (late or duplicated answers of earlier
    requests) are read and dropped. The matching response must start with the response
    sync byte, carry a good CRC and exactly the length its request asked for (a READ of
    ``n`` bytes: ``n`` with status OK; a PING: 4; else 0); anything else raises
    :class:`~mxhw.soc.protocol.ProtocolError`, a missing or short answer
    :class:`NoResponse`. After any failed or interrupted exchange (a timeout, a bad
    response, a ``KeyboardInterrupt`` between request and response) the driver
    re-synchronises before its next request: it discards whatever the device sends until
    the line has been quiet for ``resync_time`` seconds, so a late answer is never taken
    for the next call's. Before every request it discards bytes already received (a
    duplicated answer). Idempotent requests (READ, PING) are retried ``retries`` times
    (default once) after a timeout, a bad response, or a BAD_CRC/TIMEOUT status; WRITEs
    are not (the device may have executed it). Reads and writes are split into requests
    of the ``max_payload`` the device reports in its PING answer (asked on first use).

    One lock serialises the calls: an Accelerator may be shared between threads, each
    public call (``matmul`` included) running whole before another starts. It is a
    context manager; :meth:`close` closes the transport, after which calls raise
    ``RuntimeError``.

    Parameters
    ----------
    transport : SimTransport or SerialTransport (anything with write/read; ``drain`` and
        ``close`` are used when present)
    timeout : float
        Seconds to wait for each response.
    resync_time : float
        Quiet seconds that end a re-synchronisation (longer than the device's watchdog,
        100 ms, after which it has answered a half-received packet).
    retries : int
        Extra attempts of an idempotent request (0 or more).
    """

    #: requests the driver may send twice: they change no state
    IDEMPOTENT = (P.Cmd.PING, P.Cmd.READ)
    #: device statuses worth a retry of an idempotent request (corruption on the line)
    TRANSIENT = (P.Status.BAD_CRC, P.Status.TIMEOUT)
    #: answers with another sequence number read and dropped while waiting for one
    MAX_SKIPPED = 8

    def __init__(self, transport, timeout: float = 1.0, resync_time: float = 0.2,
                 retries: int = 1):
        check_number("timeout", timeout, 0)
        check_number("resync_time", resync_time, 0)
        check_int("retries", retries, 0, 10)
        self.transport = transport
        self.timeout = timeout
        self.resync_time = resync_time
        self.retries = retries
        self._lock = threading.RLock()
        self._stale = False          # a response may still be on its way: re-synchronise
        self._closed = False
        self._scratch_words = None   # read from FEATURES on first use
        self._link = None            # the PING answer (max_payload, version): first use
        self._seq = 0                # the last sequence number sent

    @classmethod
    def simulated(cls, config=None, backend="pysim", link="bytes"):
        """An Accelerator on the SoC gateware in simulation (see :class:`SimTransport`)."""
        return cls(SimTransport(config, backend=backend, link=link))

    # ---- lifetime ----
    def close(self):
        """Close the transport (idempotent)."""
        with self._lock:
            if not self._closed:
                self._closed = True
                close = getattr(self.transport, "close", None)
                if close is not None:
                    close()

    @property
    def closed(self):
        return self._closed

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- protocol ----
    def _drain(self, quiet):
        """Discard received bytes; with ``quiet > 0`` until none came for ``quiet`` s."""
        drain = getattr(self.transport, "drain", None)
        if drain is not None:
            drain(quiet)
            return
        while self.transport.read(1 << 16, quiet):
            if quiet <= 0:
                break

    def _read(self, n, what):
        data = self.transport.read(n, self.timeout)
        if len(data) < n:
            raise NoResponse(f"the device did not answer within {self.timeout} s ({what}: "
                             f"{len(data)} of {n} bytes; is the board programmed and on "
                             f"this port?)")
        return data

    def _exchange(self, pkt, cmd, expect):
        """Send ``pkt`` and return its response: the first one carrying its sequence
        number (answers with another one, late answers of earlier requests, are read
        whole and dropped)."""
        self._drain(self.resync_time if self._stale else 0)
        self._stale = True           # until a whole, matching response has been read
        self.transport.write(pkt)
        seq = pkt[2]
        h = P.RESP_HEADER
        for _ in range(self.MAX_SKIPPED + 1):
            head = self._read(h, "response header")
            if head[0] != P.SYNC_RESP:
                raise P.ProtocolError(f"response starts with 0x{head[0]:02x}, not "
                                      f"0x{P.SYNC_RESP:02x}")
            status, rseq, length = head[1], head[2], head[3] | head[4] << 8
            if rseq == seq:
                break
            if length > P.MAX_LENGTH:
                raise P.ProtocolError(f"an answer of {length} bytes (no device sends more "
                                      f"than {P.MAX_LENGTH})")
            self._read(length + 2, "response to an earlier request")   # dropped
        else:
            raise P.ProtocolError(f"no answer with sequence number {seq} among "
                                  f"{self.MAX_SKIPPED + 1} responses")
        want = expect if status == P.Status.OK else 0
        if length != want:
            raise P.ProtocolError(f"a {length}-byte answer (status "
                                  f"{P.Status.NAMES.get(status, status)}) to a "
                                  f"{_CMD_NAMES.get(cmd, cmd)} that expects {want} bytes")
        resp, _ = P.parse_response(head + self._read(length + 2, "response payload"))
        self._stale = False
        if not resp.ok:
            name = P.Status.NAMES.get(resp.status, resp.status)
            raise DeviceError(f"device answered {name}", resp.status)
        return resp

    def _xfer(self, pkt: bytes) -> P.Response:
        """Send request ``pkt`` (its sequence byte replaced by the next one of this
        Accelerator), return its checked response (retrying an idempotent one; every
        attempt has a sequence number of its own)."""
        cmd = pkt[1]
        expect = (pkt[7] | pkt[8] << 8) if cmd == P.Cmd.READ else \
            4 if cmd == P.Cmd.PING else 0
        attempts = 1 + (self.retries if cmd in self.IDEMPOTENT else 0)
        with self._lock:
            self._check_open()
            for attempt in range(attempts):
                self._seq = (self._seq + 1) & 0xFF
                body = bytearray(pkt[1:-2])
                body[1] = self._seq
                stamped = bytes([pkt[0]]) + bytes(body) + struct.pack("<H", P.crc16(body))
                try:
                    return self._exchange(stamped, cmd, expect)
                except (NoResponse, P.ProtocolError, DeviceError) as e:
                    transient = not isinstance(e, DeviceError) or e.status in self.TRANSIENT
                    if attempt == attempts - 1 or not transient:
                        raise

    def _check_open(self):
        if self._closed:
            raise RuntimeError("this Accelerator is closed")

    def _wait(self, cycles):
        """Before polling: let a simulated device run ``cycles`` cycles, a lower bound of
        the operation's time (a transport without ``idle``, a real link, polls at once)."""
        idle = getattr(self.transport, "idle", None)
        if idle is not None:
            with self._lock:
                idle(cycles)

    @staticmethod
    def _check_span(addr, n):
        """Word address ``addr`` and ``n`` words: inside the 32-bit address space."""
        check_int("addr", addr, 0, (1 << 32) - 4)
        check_int("n", n, 0)
        if addr % 4:
            raise ValueError(f"addr must be word aligned (a multiple of 4), not 0x{addr:x}")
        if addr + 4 * n > 1 << 32:
            raise ValueError(f"{n} words from 0x{addr:08x} run past the end of the 32-bit "
                             f"address space")

    @_locked
    def ping(self) -> dict:
        """PING the device; returns what its answer reports
        (:func:`~mxhw.soc.protocol.decode_link_info`: ``max_payload``, ``version``,
        ``rx_depth``). A device of another protocol version raises ``DeviceError``."""
        info = P.decode_link_info(self._xfer(P.request(P.Cmd.PING)).words()[0])
        if info["version"] != P.PROTOCOL_VERSION:
            raise DeviceError(f"the device speaks link protocol version {info['version']}, "
                              f"this driver {P.PROTOCOL_VERSION}")
        if info["max_payload"] < 4 or info["max_payload"] % 4:
            raise DeviceError(f"the device reports max_payload = {info['max_payload']} "
                              f"(not a positive multiple of 4)")
        self._link = info
        return dict(info)

    @property
    def max_payload(self) -> int:
        """The largest READ/WRITE payload in bytes, as the device reports it (its PING
        answer, asked once): reads and writes are split into requests of at most this."""
        with self._lock:
            if self._link is None:
                self.ping()
            return self._link["max_payload"]

    @_locked
    def read_words(self, addr: int, n: int) -> list[int]:
        """``n`` words from byte address ``addr`` (word aligned; ``n = 0``: none)."""
        self._check_span(addr, n)
        out = []
        if not n:
            return out
        step = self.max_payload // 4
        for i in range(0, n, step):
            k = min(step, n - i)
            out += self._xfer(P.request(P.Cmd.READ, addr + 4 * i, 4 * k)).words()
        return out

    @_locked
    def write_words(self, addr: int, words):
        """Write ``words`` (ints in ``[0, 2**32)``) from byte address ``addr``."""
        words = P.check_words(words)
        self._check_span(addr, len(words))
        if not words:
            return
        step = self.max_payload // 4
        for i in range(0, len(words), step):
            chunk = words[i:i + step]
            self._xfer(P.request(P.Cmd.WRITE, addr + 4 * i,
                                 payload=struct.pack(f"<{len(chunk)}I", *chunk)))

    @_locked
    def read_reg(self, name: str) -> int:
        if name not in REGS:
            raise KeyError(f"unknown register {name!r}; registers: {', '.join(REGS)}")
        return self.read_words(REGS[name], 1)[0]

    @_locked
    def write_reg(self, name: str, value: int):
        if name not in REGS:
            raise KeyError(f"unknown register {name!r}; registers: {', '.join(REGS)}")
        self.write_words(REGS[name], [value])

    @property
    def scratch_words(self) -> int:
        """The scratchpad's size in words, as the device reports it (FEATURES; read once)."""
        with self._lock:
            if self._scratch_words is None:
                self._scratch_words = 1 << (self.read_reg("FEATURES") & 0xFF)
            return self._scratch_words

    def _check_scratch(self, offset_words, n):
        check_int("offset_words", offset_words, 0)
        check_int("n", n, 0)
        if offset_words + n > self.scratch_words:
            raise ValueError(f"scratch words {offset_words} .. {offset_words + n - 1} lie "
                             f"outside the device's {self.scratch_words}-word scratchpad")

    @_locked
    def write_scratch(self, offset_words: int, words):
        """Write ``words`` from scratchpad word ``offset_words`` (checked against the
        scratchpad size the device reports)."""
        words = P.check_words(words)
        self._check_scratch(offset_words, len(words))
        self.write_words(SCRATCHPAD_BASE + 4 * offset_words, words)

    @_locked
    def read_scratch(self, offset_words: int, n: int) -> list[int]:
        """``n`` words from scratchpad word ``offset_words`` (checked likewise)."""
        self._check_scratch(offset_words, n)
        return self.read_words(SCRATCHPAD_BASE + 4 * offset_words, n)

    # ---- the GEMM unit ----
    def _gemm_reg(self, name):
        return self.read_words(GEMM_BASE + 4 * GEMM_REGS[name], 1)[0]

    @_locked
    def gemm_config(self) -> dict:
        """The GEMM unit the device was built with, read from its registers
        (:data:`mxhw.soc.regmap.REGISTERS`); ``depth`` for a weight-stationary unit."""
        if not (self.read_reg("FEATURES") >> 8) & 1:
            raise DeviceError("this SoC was built without a GEMM unit (rows=0)")
        geo = decode("GEOMETRY", self._gemm_reg("GEOMETRY"))
        fmts = decode("FORMATS", self._gemm_reg("FORMATS"))
        acc = decode("ACC", self._gemm_reg("ACC"))
        names = {v: k for k, v in FORMAT_IDS.items()}
        flow = {v: k for k, v in DATAFLOW_IDS.items()}[geo["dataflow"]]
        cfg = {"rows": geo["rows"], "cols": geo["cols"], "max_k": 1 << geo["log2_max_k"],
               "a_tiles": 1 << geo["log2_a_tiles"],
               "fmt_a": names.get(fmts["fmt_a"]), "fmt_b": names.get(fmts["fmt_b"]),
               "acc_width": acc["width"], "acc_frac": acc["frac_bits"],
               "saturate": bool(acc["saturate"]), "rne": bool(acc["rne"]),
               "dataflow": flow}
        if "DEPTH" in registers_for(flow):
            cfg["depth"] = self._gemm_reg("DEPTH")
        return cfg

    @_locked
    def matmul(self, a, b, fmt_a=None, fmt_b=None, transpose_a=False, transpose_b=False,
               poll_limit=10_000):
        """``C = op(A) @ op(B)`` on the device, bit-exact to ``golden.gemm`` with the
        device's accumulation (``golden.fixed(acc_width, acc_frac)``, saturating, floor).

        ``transpose_a`` / ``transpose_b`` (``op(X) = X^T``) need a tile-format unit
        (``fmt_a = fmt_b = "mxsf_tile"``, read from the device's FORMATS register): there
        each operand, a float array or a :class:`~mxhw.soc.tilehost.TileTensor` from
        :meth:`upload_tiles`, is quantised once in its stored orientation (tiles over its
        two axes) and read transposed by the hardware; the result equals
        ``golden.gemm(op(qa), op(qb), acc)`` with ``op(q) = q.T``. Arrays are uploaded to
        slots 0 and 1. The rest of this text is about the other units.

        ``a`` (M x K) and ``b`` (K x N) are float arrays (quantised here with ``golden``
        along K) or ``golden.MXArray`` operands. ``fmt_a``/``fmt_b`` default to the device's
        formats and must equal them. K must be a multiple of the block size and at most
        the device's ``max_k``. Returns a float64 array (NaN where golden gives NaN).

        Output tiles of ``rows x cols`` (weight-stationary: ``depth x cols``); row blocks of
        A are loaded into the unit's A tiles, up to ``a_tiles`` at a time, and each column
        strip of B is then sent once per group and computed against every loaded row
        block (``a_tiles = 1``: B re-sent per row block).
        """
        import numpy as np

        cfg = self.gemm_config()
        if is_tile_format(cfg["fmt_a"]) or isinstance(a, TileTensor) or isinstance(b, TileTensor):
            return self._matmul_tiles(a, b, fmt_a, fmt_b, transpose_a, transpose_b,
                                      poll_limit)
        if transpose_a is not False or transpose_b is not False:
            raise ValueError(f"transpose_a / transpose_b need a tile-format GEMM unit "
                             f"(SoCConfig fmt_a = fmt_b = 'mxsf_tile'); this device was "
                             f"built for fmt_a={cfg['fmt_a']!r}, fmt_b={cfg['fmt_b']!r}")
        qa = self._operand(a, fmt_a, cfg["fmt_a"], 1, "a")
        qb = self._operand(b, fmt_b, cfg["fmt_b"], 0, "b")
        (M, K), (K2, N) = qa.shape, qb.shape
        if K != K2:
            raise ValueError(f"inner dimensions differ: a is {qa.shape}, b is {qb.shape}")
        kb = qa.fmt.block_size
        if K % kb or K > cfg["max_k"] or K == 0:
            raise ValueError(f"K = {K} must be a positive multiple of {kb} and at most the "
                             f"device's max_k = {cfg['max_k']}")
        ws = cfg["dataflow"] == "weight_stationary"
        R, C = cfg["rows"], cfg["cols"]
        H, T = (cfg["depth"], 1) if ws else (R, cfg["a_tiles"])
        eb, sb = qb.fmt.element.bits, qb.fmt.scale.bits
        zb = zero_code(qb.fmt)
        # a lower bound of a tile's cycles: one per array transfer, and (output-
        # stationary) the array's skew across R + C PEs
        cycles = (K // kb) * -(-kb // R) * H if ws else K + R + C
        write_a = self._write_a_ws if ws else self._write_a_os

        out = np.zeros((M, N), dtype=np.float64)
        self.write_words(region_address("regs", GEMM_REGS["K"]), [K])
        for g0 in range(0, M, H * T):
            group = list(range(g0, min(M, g0 + H * T), H))
            for t, m0 in enumerate(group):
                write_a(qa, m0, t, cfg)
            for n0 in range(0, N, C):
                bt = np.full((K, C), zb, dtype=np.int64)
                bts = np.zeros((K // kb, C), dtype=np.int64)
                bt[:, :min(C, N - n0)] = qb.elements[:, n0:n0 + C]
                bts[:, :min(C, N - n0)] = qb.scales[:, n0:n0 + C]
                self.write_words(region_address("b"), pack_lanes(bt, eb, lanes_log2(C * eb)))
                self.write_words(region_address("b_scale"),
                                 pack_lanes(bts, sb, lanes_log2(C * sb)))
                for t, m0 in enumerate(group):
                    if T > 1:
                        self.write_words(region_address("regs", GEMM_REGS["A_TILE"]), [t])
                    self._run_tile(cycles, poll_limit)
                    self._read_tile(out, m0, n0, min(H, M - m0), cfg)
        return out

    def _write_a_os(self, qa, m0, t, cfg):
        """A row block ``m0`` into A tile ``t`` of an output-stationary unit: word ``(t *
        max_k + k)`` holds the codes ``A[m0.., k]``, the scales likewise per block."""
        import numpy as np
        R, kmax, kb = cfg["rows"], cfg["max_k"], qa.fmt.block_size
        ea, sa = qa.fmt.element.bits, entry_bits(qa.fmt)
        K = qa.shape[1]
        at = np.zeros((R, K), dtype=np.int64)
        ats = np.zeros((R, K // kb), dtype=np.int64)
        at[:min(R, qa.shape[0] - m0)] = qa.elements[m0:m0 + R]
        ats[:min(R, qa.shape[0] - m0)] = pack_entries(
            qa.scales[m0:m0 + R], None if qa.modes is None else qa.modes[m0:m0 + R], qa.fmt)
        la, las = lanes_log2(R * ea), lanes_log2(R * sa)
        self.write_words(region_address("a", (t * kmax) << la), pack_lanes(at.T, ea, la))
        self.write_words(region_address("a_scale", (t * kmax // kb) << las),
                         pack_lanes(ats.T, sa, las))

    def _write_a_ws(self, qa, m0, t, cfg):
        """A row block ``m0`` of a weight-stationary unit, laid out by pass: word ``(q *
        depth + i)`` holds ``A[m0 + i, k0 .. k0 + rows - 1]`` of pass ``q`` (padding past
        the block as a code of +0); the scales one word per row and block."""
        import numpy as np
        (M, K), kb = qa.shape, qa.fmt.block_size
        R, D = cfg["rows"], cfg["depth"]
        P, nb, ea, za = -(-kb // R), K // kb, qa.fmt.element.bits, zero_code(qa.fmt)
        # K positions of every pass (block j, sub-pass p): -1 where the pass is padding
        kpos = np.full((nb * P, R), -1, dtype=np.int64)
        for j in range(nb):
            for p in range(P):
                ks = j * kb + p * R + np.arange(R)
                kpos[j * P + p] = np.where(ks < (j + 1) * kb, ks, -1)
        rows_a = np.full((D, K), za, dtype=np.int64)
        scales_a = np.zeros((D, nb), dtype=np.int64)
        rows_a[:min(D, M - m0)] = qa.elements[m0:m0 + D]
        scales_a[:min(D, M - m0)] = qa.scales[m0:m0 + D]
        passes = np.where(kpos[:, None, :] >= 0, rows_a[:, np.maximum(kpos, 0)]
                          .transpose(1, 0, 2), za).reshape(nb * P * D, R)
        self.write_words(region_address("a"), pack_lanes(passes, ea, lanes_log2(R * ea)))
        self.write_words(region_address("a_scale"), [int(s) for s in scales_a.T.ravel()])

    def _run_tile(self, cycles, poll_limit):
        """START, let a simulated device run ``cycles``, poll STATUS until done."""
        self.write_words(region_address("regs", GEMM_REGS["START"]), [1])
        self._wait(cycles)
        for _ in range(poll_limit):
            if decode("STATUS", self.read_words(region_address("regs", GEMM_REGS["STATUS"]),
                                                1)[0])["done"]:
                return
        raise NoResponse(f"the GEMM unit did not finish after {poll_limit} polls")

    def _read_tile(self, out, m0, n0, rows, cfg):
        """The tile's first ``rows`` result rows into ``out[m0.., n0..]``."""
        C = cfg["cols"]
        lw, lc = lanes_log2(cfg["acc_width"]), (C - 1).bit_length()
        words = self.read_words(region_address("c"), rows << (lc + lw))
        spec = self.read_words(region_address("c_special"), rows)
        cols = min(C, out.shape[1] - n0)
        out[m0:m0 + rows, n0:n0 + cols] = self._c_values(words, spec, 0, rows, cols, cfg)

    @staticmethod
    def _c_values(words, spec, row0, rows, cols, cfg):
        """Results of C rows ``row0 ..`` (``rows`` of them), columns ``0 .. cols - 1``, as
        float64 from the C region's words (``words``, from its word 0) and special flags
        (``spec``, one word a row): each result sign-extended over ``2**LW`` words, scaled
        by ``2**-acc_frac``, NaN where its special flag is set."""
        import numpy as np
        C, width, frac = cfg["cols"], cfg["acc_width"], cfg["acc_frac"]
        lw, lc = lanes_log2(width), (C - 1).bit_length()
        out = np.empty((rows, cols))
        for i in range(rows):
            row = row0 + i
            for j in range(cols):
                base = ((row << lc) | j) << lw
                v = sum(words[base + w] << (32 * w) for w in range(1 << lw))
                v &= (1 << width) - 1
                v -= (v >> (width - 1)) << width
                out[i, j] = (np.nan if spec[row] >> j & 1
                             else float(np.ldexp(float(v), -frac)))
        return out

    @staticmethod
    def _operand(x, fmt, built, axis, name):
        from .. import golden
        if fmt is not None and golden.formats.get(fmt).name != built:
            raise ValueError(f"fmt_{name}={fmt!r}, but the device was built for {built!r}")
        if isinstance(x, golden.MXArray):
            if x.fmt.name != built:
                raise ValueError(f"{name} is quantised as {x.fmt.name!r}, but the device was "
                                 f"built for {built!r}")
            if len(x.shape) != 2 or x.axis != axis:
                raise ValueError(f"{name} must be a 2-D MXArray quantised along axis {axis}")
            return x
        from ..golden.quantize import to_numpy
        arr = to_numpy(x)
        if arr.ndim != 2:
            raise ValueError(f"{name} must be 2-D, not of shape {arr.shape}")
        if 0 in arr.shape:
            raise ValueError(f"matmul needs non-empty operands (M, N and K >= 1): {name} has "
                             f"shape {arr.shape}")
        return golden.quantize(arr, built, axis=axis)

    @_locked
    def info(self) -> dict:
        """ID, version, feature and clock registers, decoded."""
        ident = self.read_reg("ID")
        ver = self.read_reg("VERSION")
        feat = self.read_reg("FEATURES")
        return {"id_ok": ident == ID_VALUE, "id": ident,
                "version": (ver >> 16, (ver >> 8) & 0xFF, ver & 0xFF),
                "scratch_words": 1 << (feat & 0xFF), "clk_hz": self.read_reg("CLK_HZ")}

