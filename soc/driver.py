"""Host driver: talks to a built (or simulated) SoC through the link protocol.

>>> from mxhw.soc.driver import Accelerator
>>> acc = Accelerator.simulated()           # the real SoC gateware, in Amaranth's simulator
>>> acc.info()["id_ok"]
True

Transports move bytes: :class:`SerialTransport` (pyserial, a real board's USB-UART) and
:class:`SimTransport` (the SoC gateware in simulation, fed the byte stream directly: the
UART's bit timing is skipped, everything from the byte stream inward is the real design).
"""

from __future__ import annotations

import struct
import time

from ..systolic.driver import zero_code
from . import protocol as P
from .regmap import (DATAFLOW_IDS, FORMAT_IDS, GEMM_BASE, GEMM_REGS, decode, lanes_log2,
                     region_address, registers_for)
from .top import ID_VALUE, REGS, SCRATCHPAD_BASE, BoardSoC, SoC, SoCConfig

__all__ = ["Accelerator", "SimTransport", "SerialTransport", "NoResponse", "DeviceError"]


class NoResponse(TimeoutError):
    """The device did not answer in time."""


class DeviceError(RuntimeError):
    """The device answered with an error status."""


class SimTransport:
    """The SoC gateware in simulation.

    With ``link="bytes"`` the SoC core is fed one byte per cycle (the UART is skipped; it
    has its own tests). On the compiled back end each ``read`` then runs as one batch in C
    (:meth:`mxhw.sim.compiled.Model.stream`): queued request bytes go in, response bytes
    come out, with the cycle-by-cycle valid/ready behaviour of the per-cycle pump.

    With ``link="uart"`` the board-level SoC (:class:`~mxhw.soc.top.BoardSoC`: UART
    receiver and transmitter included) is driven on its serial lines: request bytes become
    8N1 frames at ``config.clk_hz / config.baud`` cycles per bit, and the ``tx`` line is
    decoded the same way (pysim only; choose a small ratio such as
    ``SoCConfig(clk_hz=4_000_000, baud=1_000_000)``, or it is slow).

    Parameters
    ----------
    config : SoCConfig or None
    backend : str
        ``"pysim"`` (Amaranth's simulator) or ``"compiled"`` (CXXRTL through
        :mod:`mxhw.sim.compiled`: built once per configuration and cached on disk).
    link : str
        ``"bytes"`` or ``"uart"``.
    """

    BACKENDS = ("pysim", "compiled")
    LINKS = ("bytes", "uart")

    def __init__(self, config=None, backend="pysim", link="bytes"):
        if backend not in self.BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(map(repr, self.BACKENDS))}, "
                             f"not {backend!r}")
        if link not in self.LINKS:
            raise ValueError(f"link must be one of {', '.join(map(repr, self.LINKS))}, "
                             f"not {link!r}")
        if link == "uart" and backend != "pysim":
            raise ValueError("link='uart' runs on the pysim back end only")
        self.config = config or SoCConfig()
        self.backend = backend
        self.link = link
        self._out = bytearray()
        self._in = bytearray()
        self.cycles = 0
        if link == "uart":
            from .uart import divisor_for
            self._div = divisor_for(self.config.clk_hz, self.config.baud)
            self._dut = BoardSoC(self.config)
        else:
            # watchdog and quiet gap scaled to a byte per cycle
            self._dut = SoC(self.config, timeout_cycles=20_000, quiet_cycles=64)
        if backend == "pysim":
            from amaranth.sim import Simulator
            self._sim = Simulator(self._dut)
            self._sim.add_clock(1e-8)
            self._sim.add_testbench(self._pump_uart if link == "uart" else self._pump,
                                    background=True)
        else:
            from ..sim import compiled
            self._model = compiled.build(self._dut)
            self._model.reset()
            self._model.set(self._dut.tx.ready, 1)

    async def _pump(self, ctx):
        dut = self._dut
        ctx.set(dut.tx.ready, 1)
        while True:
            offered = bool(self._out)  # bytes may be queued while we wait for the edge
            if offered:
                ctx.set(dut.rx.payload, self._out[0])
            ctx.set(dut.rx.valid, offered)
            *_, rxr, txv, txp = await ctx.tick().sample(dut.rx.ready, dut.tx.valid,
                                                         dut.tx.payload)
            self.cycles += 1
            if offered and rxr:
                del self._out[0]
            if txv:
                self._in.append(txp)

    async def _pump_uart(self, ctx):
        dut, div = self._dut, self._div
        line = []                 # levels to drive on rx, one per cycle (reversed)
        rx_at = None              # cycle of the current tx frame's start edge
        frame = []
        prev = 1
        while True:
            if not line and self._out:
                b = self._out.pop(0)
                bits = [0] + [(b >> i) & 1 for i in range(8)] + [1]
                line = [v for v in reversed(bits) for _ in range(div)]
            ctx.set(dut.rx, line.pop() if line else 1)
            *_, tx = await ctx.tick().sample(dut.tx)
            self.cycles += 1
            if rx_at is None:
                if prev == 1 and tx == 0:
                    rx_at, frame = self.cycles, []
            else:
                t = self.cycles - rx_at
                if t % div == div // 2 and t // div >= 1:
                    frame.append(tx)
                    if len(frame) == 9:          # 8 data bits and the stop bit
                        if frame[8] != 1:
                            raise RuntimeError("SimTransport: framing error on tx")
                        self._in.append(sum(v << i for i, v in enumerate(frame[:8])))
                        rx_at = None
            prev = tx

    def _step_compiled(self, max_cycles, n):
        """Push every queued request byte and take response bytes until ``n`` are held:
        one :meth:`~mxhw.sim.compiled.Model.stream` call (the cycle loop in C; at most one
        byte each way per cycle, as the per-cycle pump)."""
        import numpy as np
        from ..sim import SimTimeout
        m, dut = self._model, self._dut
        beats = np.frombuffer(bytes(self._out), dtype=np.uint8).astype(np.uint32)
        try:
            got, cycles = m.stream(dut.rx, beats.reshape(-1, 1), dut.tx, n - len(self._in),
                                   timeout=max(1, max_cycles), raw=True)
            sent = len(beats)
        except SimTimeout as e:       # the caller reports the missing bytes
            got, cycles, sent = e.received, e.cycles, e.sent
        del self._out[:sent]
        self._in += bytes(got)
        self.cycles += cycles

    def write(self, data: bytes):
        self._out += data

    def idle(self, cycles: int):
        """Let the device run ``cycles`` clock cycles while the host sends nothing (a host
        that knows an operation takes at least that long waits before polling)."""
        if cycles <= 0:
            return
        if self.backend == "pysim":
            end = self.cycles + cycles
            while self.cycles < end:
                self._sim.advance()
        else:
            self._model.step(cycles)
            self.cycles += cycles

    def read(self, n: int, timeout: float = 1.0) -> bytes:
        """``n`` bytes, simulating up to ``timeout`` seconds of device time (at the
        configured clock)."""
        if self.backend == "pysim":
            end = self.cycles + int(timeout * self.config.clk_hz)
            while len(self._in) < n and self.cycles < end:
                self._sim.advance()
        elif len(self._in) < n:
            self._step_compiled(int(timeout * self.config.clk_hz), n)
        data, self._in = bytes(self._in[:n]), self._in[n:]
        return data

    def close(self):
        if self.backend == "compiled":
            self._model.close()


class SerialTransport:
    """A board's serial port (needs ``pyserial``)."""

    def __init__(self, port: str, baud: int = 1_000_000):
        try:
            import serial
        except ImportError:
            raise ImportError("SerialTransport needs pyserial: pip install pyserial") from None
        self._ser = serial.Serial(port, baud, timeout=0.1)

    def write(self, data: bytes):
        self._ser.write(data)

    def read(self, n: int, timeout: float = 1.0) -> bytes:
        end = time.monotonic() + timeout
        buf = b""
        while len(buf) < n and time.monotonic() < end:
            buf += self._ser.read(n - len(buf))
        return buf

    def close(self):
        self._ser.close()


class Accelerator:
    """The host's handle on an mxhw SoC.

    Parameters
    ----------
    transport : SimTransport or SerialTransport (anything with write/read)
    timeout : float
        Seconds to wait for each response.
    """

    def __init__(self, transport, timeout: float = 1.0):
        self.transport = transport
        self.timeout = timeout

    @classmethod
    def simulated(cls, config=None, backend="pysim", link="bytes"):
        """An Accelerator on the SoC gateware in simulation (see :class:`SimTransport`)."""
        return cls(SimTransport(config, backend=backend, link=link))

    # ---- protocol ----
    def _xfer(self, pkt: bytes) -> P.Response:
        self.transport.write(pkt)
        head = self.transport.read(4, self.timeout)
        if len(head) < 4:
            raise NoResponse(f"the device did not answer within {self.timeout} s "
                             f"(is the board programmed and on this port?)")
        length = head[2] | head[3] << 8
        rest = self.transport.read(length + 2, self.timeout)
        resp, _ = P.parse_response(head + rest)
        if not resp.ok:
            raise DeviceError(f"device answered {P.Status.NAMES.get(resp.status, resp.status)}")
        return resp

    def _wait(self, cycles):
        """Before polling: let a simulated device run ``cycles`` cycles, a lower bound of
        the operation's time (a transport without ``idle``, a real link, polls at once)."""
        idle = getattr(self.transport, "idle", None)
        if idle is not None:
            idle(cycles)

    def ping(self):
        self._xfer(P.request(P.Cmd.PING))

    def read_words(self, addr: int, n: int) -> list[int]:
        out = []
        step = P.MAX_PAYLOAD // 4
        for i in range(0, n, step):
            k = min(step, n - i)
            out += self._xfer(P.request(P.Cmd.READ, addr + 4 * i, 4 * k)).words()
        return out

    def write_words(self, addr: int, words):
        words = list(words)
        step = P.MAX_PAYLOAD // 4
        for i in range(0, len(words), step):
            chunk = words[i:i + step]
            self._xfer(P.request(P.Cmd.WRITE, addr + 4 * i,
                                 payload=struct.pack(f"<{len(chunk)}I", *chunk)))

    def read_reg(self, name: str) -> int:
        if name not in REGS:
            raise KeyError(f"unknown register {name!r}; registers: {', '.join(REGS)}")
        return self.read_words(REGS[name], 1)[0]

    def write_reg(self, name: str, value: int):
        if name not in REGS:
            raise KeyError(f"unknown register {name!r}; registers: {', '.join(REGS)}")
        self.write_words(REGS[name], [value])

    def write_scratch(self, offset_words: int, words):
        self.write_words(SCRATCHPAD_BASE + 4 * offset_words, words)

    def read_scratch(self, offset_words: int, n: int) -> list[int]:
        return self.read_words(SCRATCHPAD_BASE + 4 * offset_words, n)

    # ---- the GEMM unit ----
    def _gemm_reg(self, name):
        return self.read_words(GEMM_BASE + 4 * GEMM_REGS[name], 1)[0]

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

    def matmul(self, a, b, fmt_a=None, fmt_b=None, poll_limit=10_000):
        """``C = A @ B`` on the device, bit-exact to ``golden.gemm`` with the device's
        accumulation (``golden.fixed(acc_width, acc_frac)``, saturating, floor).

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
                self.write_words(region_address("b"), _pack_lanes(bt, eb, lanes_log2(C * eb)))
                self.write_words(region_address("b_scale"),
                                 _pack_lanes(bts, sb, lanes_log2(C * sb)))
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
        ea, sa = qa.fmt.element.bits, qa.fmt.scale.bits
        K = qa.shape[1]
        at = np.zeros((R, K), dtype=np.int64)
        ats = np.zeros((R, K // kb), dtype=np.int64)
        at[:min(R, qa.shape[0] - m0)] = qa.elements[m0:m0 + R]
        ats[:min(R, qa.shape[0] - m0)] = qa.scales[m0:m0 + R]
        la, las = lanes_log2(R * ea), lanes_log2(R * sa)
        self.write_words(region_address("a", (t * kmax) << la), _pack_lanes(at.T, ea, la))
        self.write_words(region_address("a_scale", (t * kmax // kb) << las),
                         _pack_lanes(ats.T, sa, las))

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
        self.write_words(region_address("a"), _pack_lanes(passes, ea, lanes_log2(R * ea)))
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
        """The tile's first ``rows`` result rows into ``out[m0.., n0..]``: each result
        sign-extended over ``2**LW`` words, NaN where its special flag is set."""
        import numpy as np
        C, width, frac = cfg["cols"], cfg["acc_width"], cfg["acc_frac"]
        lw, lc = lanes_log2(width), (C - 1).bit_length()
        words = self.read_words(region_address("c"), rows << (lc + lw))
        spec = self.read_words(region_address("c_special"), rows)
        for i in range(rows):
            for j in range(min(C, out.shape[1] - n0)):
                base = ((i << lc) | j) << lw
                v = sum(words[base + w] << (32 * w) for w in range(1 << lw))
                v &= (1 << width) - 1
                v -= (v >> (width - 1)) << width
                out[m0 + i, n0 + j] = (np.nan if spec[i] >> j & 1
                                       else float(np.ldexp(float(v), -frac)))

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
        return golden.quantize(arr, built, axis=axis)

    def info(self) -> dict:
        """ID, version, feature and clock registers, decoded."""
        ident = self.read_reg("ID")
        ver = self.read_reg("VERSION")
        feat = self.read_reg("FEATURES")
        return {"id_ok": ident == ID_VALUE, "id": ident,
                "version": (ver >> 16, (ver >> 8) & 0xFF, ver & 0xFF),
                "scratch_words": 1 << (feat & 0xFF), "clk_hz": self.read_reg("CLK_HZ")}


def _pack_lanes(codes, bits, lanes_log):
    """Words for a lane-banked operand region: ``codes`` (steps, n) -> ``steps * 2**lanes_log``
    words, step-major, element 0 in the low bits of lane 0 (a code may straddle two lanes)."""
    import numpy as np
    steps, n = codes.shape
    words = np.zeros((steps, (1 << lanes_log) + 1), dtype=np.uint64)
    for i in range(n):
        pos = i * bits
        v = codes[:, i].astype(np.uint64) << np.uint64(pos % 32)
        words[:, pos // 32] |= v & np.uint64(0xFFFFFFFF)
        words[:, pos // 32 + 1] |= v >> np.uint64(32)
    return [int(w) for w in words[:, :1 << lanes_log].ravel()]

