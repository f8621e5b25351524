"""The driver's layer API: tensors stay on the device and layers follow one another there.

>>> acc = Accelerator.simulated(config)            # a config with prog_words and out_fmt
>>> x = acc.upload(X, fmt="mxfp8_e4m3")            # quantised here, stored in A tiles
>>> w1 = acc.upload_weights(W1, fmt="mxfp4")       # (K, N): B tiles, blocks along K
>>> h = acc.linear(x, w1, out_fmt="mxfp8_e4m3")    # GEMM + on-chip re-quantisation
>>> y = acc.linear(h, w2, out_fmt=None)            # fixed-point results, C tiles
>>> Y = acc.download(y)                            # equals golden.chain bit for bit

``with acc.program(): ...`` records the ``linear`` calls inside it and runs them as one
program (:mod:`mxhw.soc.isa`) with one start when the block ends. :class:`LayerMixin` is
a base class of :class:`mxhw.soc.driver.Accelerator`; it uses the device's registers
(FEATURES, GEOMETRY, FORMATS, ACC, CAPS) to refuse what the device was not built with.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from . import isa
from .ascale import entry_bits, unpack_entries
from .regmap import FORMAT_IDS, GEMM_REGS, decode, lanes_log2, pack_lanes, region_address
from .unit import pow2

__all__ = ["LayerMixin", "DeviceTensor", "ProgramError"]


class ProgramError(RuntimeError):
    """A program stopped with an error status: ``error`` (a key of
    :data:`mxhw.soc.isa.ERRORS`) at instruction ``pc``."""

    def __init__(self, message, error, pc):
        super().__init__(message)
        self.error, self.pc = error, pc


@dataclass(eq=False)
class DeviceTensor:
    """A tensor on the device. ``kind``: ``"act"`` (MX codes in A tiles ``tile ..
    tile + tiles - 1``, blocked along axis 1), ``"weights"`` (B tiles, blocked along
    axis 0), ``"result"`` (fixed-point values in C tiles from 0, ``n_tiles`` per row
    tile), ``"gemv_weights"`` (BitMoD weights in the GEMV unit) or ``"gemv_result"`` (a
    GEMV layer's fixed-point results, read back). ``ready``: its data is on the device (False while its program is recorded)."""
    kind: str
    shape: tuple
    fmt: str | None
    tile: int
    tiles: int
    n_tiles: int = 0
    ready: bool = True
    freed: bool = False
    gen: int = 0
    owner: object = field(default=None, repr=False)
    #: ``"gemv_weights"``: the GEMV unit's handle (:class:`~mxhw.soc.gemv_host.GemvWeights`);
    #: ``"gemv_result"``: the values the GEMV unit returned (NumPy, read back already)
    payload: object = field(default=None, repr=False)


def _alloc(free, n, what):
    """The first ``n`` consecutive free entries of ``free`` (marked used): their start."""
    run = 0
    for i, f in enumerate(free):
        run = run + 1 if f else 0
        if run == n:
            start = i - n + 1
            free[start:i + 1] = [False] * n
            return start
    raise MemoryError(f"the device has no {n} consecutive free {what} tiles left (it holds "
                      f"{len(free)}, {sum(free)} free): free() tensors or build it with more")


class LayerMixin:
    """The layer API (see the module doc) on an object with ``read_words``,
    ``write_words``, ``gemm_config``, ``_write_a_os`` and ``_wait``."""

    _layer_caps = None
    _recording = None

    # ---- what the device has ----
    def layer_caps(self) -> dict:
        """The device's GEMM unit with its memories, program sequencer and activation
        path (read once): :meth:`gemm_config` plus ``b_tiles``, ``c_tiles``,
        ``prog_words`` (0: none) and ``out_fmt`` (None: no activation path)."""
        if self._layer_caps is None:
            cfg = self.gemm_config()
            if cfg["dataflow"] != "output_stationary":
                raise RuntimeError("the layer API needs an output-stationary GEMM unit; "
                                   "this device's is weight-stationary")
            caps = decode("CAPS", self.read_words(region_address("regs", GEMM_REGS["CAPS"]),
                                                  1)[0])
            names = {v: k for k, v in FORMAT_IDS.items()}
            cfg.update(b_tiles=1 << caps["log2_b_tiles"], c_tiles=1 << caps["log2_c_tiles"],
                       prog_words=1 << caps["log2_prog_words"] if caps["log2_prog_words"]
                       else 0, out_fmt=names.get(caps["out_fmt"]), out_id=caps["out_fmt"],
                       gemv_blocks=0, gemv_max_k=0, gemv=None)
            if caps["gemv"]:
                from .gemv_host import gemv_config
                g = gemv_config(self)
                cfg.update(gemv=g, gemv_blocks=g["max_rows"] // isa.BLOCK,
                           gemv_max_k=g["max_cols"])
                self._v_free = [True] * cfg["gemv_blocks"]
            if not cfg["prog_words"]:
                raise RuntimeError("this device was built without a program sequencer "
                                   "(SoCConfig prog_words=0): the layer API needs one; "
                                   "use matmul()")
            self._layer_caps = cfg
            self._a_free = [True] * cfg["a_tiles"]
            self._b_free = [True] * cfg["b_tiles"]
            self._c_gen = 0
        return self._layer_caps

    @staticmethod
    def _fmt(fmt, built, what):
        from .. import golden
        name = golden.formats.get(fmt).name if fmt is not None else built
        if name != built:
            raise ValueError(f"{what} format {fmt!r} is not built on this device: it takes "
                             f"{built!r}")
        return name

    def _quantised(self, x, fmt, axis, name):
        from .. import golden
        from ..golden.quantize import to_numpy
        import numpy as np
        if isinstance(x, golden.MXArray):
            if x.fmt.name != fmt or len(x.shape) != 2 or x.axis != axis:
                raise ValueError(f"{name} must be a 2-D {fmt} MXArray blocked along axis "
                                 f"{axis}, not {x.fmt.name} {x.shape} axis {x.axis}")
            if not np.isfinite(x.dequantize()).all():
                raise ValueError(f"{name} holds NaN or Inf codes: the device's fixed-point "
                                 f"accumulators take finite values only")
            return x
        arr = to_numpy(x)
        if arr.ndim != 2 or 0 in arr.shape:
            raise ValueError(f"{name} must be a non-empty 2-D array, not of shape {arr.shape}")
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} holds NaN or Inf: the device's fixed-point "
                             f"accumulators take finite values only")
        return golden.quantize(arr, fmt, axis=axis)

    def _check_k(self, K, what):
        cfg = self.layer_caps()
        if K % isa.BLOCK or not 0 < K <= cfg["max_k"]:
            raise ValueError(f"{what} has K = {K}: it must be a positive multiple of "
                             f"{isa.BLOCK} and at most the device's max_k = {cfg['max_k']}")

    def _live(self, h, kinds, name):
        if not isinstance(h, DeviceTensor) or h.owner is not self:
            raise TypeError(f"{name} must be a tensor of this Accelerator (from upload, "
                            f"upload_weights or linear), not {h!r}")
        if h.kind not in kinds:
            raise ValueError(f"{name} is a {h.kind!r} tensor; this needs {' or '.join(kinds)}")
        if h.freed:
            raise ValueError(f"{name} was freed")
        if h.kind == "result" and h.gen != self._c_gen:
            raise ValueError(f"{name}'s results were overwritten by a later linear(..., "
                             f"out_fmt=None): the C tiles hold one result at a time")

    # ---- uploads ----
    def upload(self, x, fmt=None) -> DeviceTensor:
        """Quantise ``x`` (M, K) along K (unless an MXArray) and store it in A tiles
        (``rows`` rows each)."""
        with self._lock:
            cfg = self.layer_caps()
            fmt = self._fmt(fmt, cfg["fmt_a"], "activation")
            qa = self._quantised(x, fmt, 1, "x")
            M, K = qa.shape
            self._check_k(K, "x")
            mt = -(-M // cfg["rows"])
            t0 = _alloc(self._a_free, mt, "A")
            for r in range(mt):
                self._write_a_os(qa, r * cfg["rows"], t0 + r, cfg)
            return DeviceTensor("act", (M, K), fmt, t0, mt, owner=self)

    def upload_weights(self, w, fmt=None) -> DeviceTensor:
        """Quantise ``w`` (K, N) along K (unless an MXArray) and store it in B tiles
        (``cols`` columns each; padding columns hold weights of 0). A BitMoD/INT weight
        family (``fmt`` in :data:`mxhw.golden.gemv_unit.FAMILIES`: ``"bitmod_fp4"``,
        ``"bitmod_fp3"``, ``"int4"``, ``"int3"``) goes to the GEMV unit instead, quantised
        per group of 32 along K (:func:`mxhw.soc.gemv_host.gemv_upload_weights`)."""
        import numpy as np
        from ..golden.gemv_unit import FAMILIES
        from ..systolic.driver import zero_code
        from ..golden.bitserial import BitModInt
        if fmt in FAMILIES or isinstance(w, BitModInt):
            return self._upload_gemv_weights(w, fmt)
        with self._lock:
            cfg = self.layer_caps()
            fmt = self._fmt(fmt, cfg["fmt_b"], "weight")
            qb = self._quantised(w, fmt, 0, "w")
            K, N = qb.shape
            self._check_k(K, "w")
            C, kmax = cfg["cols"], cfg["max_k"]
            nt = -(-N // C)
            t0 = _alloc(self._b_free, nt, "B")
            eb, sb = qb.fmt.element.bits, qb.fmt.scale.bits
            lb, lbs = lanes_log2(C * eb), lanes_log2(C * sb)
            for c in range(nt):
                n0, t = c * C, t0 + c
                bt = np.full((K, C), zero_code(qb.fmt), dtype=np.int64)
                bts = np.zeros((K // isa.BLOCK, C), dtype=np.int64)
                bt[:, :min(C, N - n0)] = qb.elements[:, n0:n0 + C]
                bts[:, :min(C, N - n0)] = qb.scales[:, n0:n0 + C]
                self.write_words(region_address("b", (t * kmax) << lb), pack_lanes(bt, eb, lb))
                self.write_words(region_address("b_scale", (t * kmax // isa.BLOCK) << lbs),
                                 pack_lanes(bts, sb, lbs))
            return DeviceTensor("weights", (K, N), fmt, t0, nt, owner=self)

    def _gemv_linked(self):
        """The layer caps when the device's GEMV unit is driven by programs, else None."""
        feat = self.read_reg("FEATURES")
        if not (feat >> 8 & 1 and feat >> 10 & 1):
            return None
        cfg = self.layer_caps()
        return cfg if cfg["gemv"] else None

    def _upload_gemv_weights(self, w, fmt):
        from ..golden.quantize import to_numpy
        from .gemv_host import gemv_upload_weights, gemv_write_weights
        from ..golden.bitserial import BitModInt
        with self._lock:
            if isinstance(w, BitModInt):      # quantised already, in the unit's (N, K) rows
                arr, wt = w.codes.T, w
            else:
                arr = to_numpy(w)
                if arr.ndim != 2:
                    raise ValueError(f"w must be 2-D (K, N), not of shape {arr.shape}")
                wt = arr.T
            cfg = self._gemv_linked()
            if cfg is None:
                h = gemv_upload_weights(self, wt, fmt)    # the unit's rows are N
                return DeviceTensor("gemv_weights", arr.shape, fmt, 0, 0, owner=self,
                                    payload=h)
            # linked: blocks of 32 weight rows (output features), allocated like B tiles
            nb = -(-arr.shape[1] // isa.BLOCK)
            if nb > cfg["gemv_blocks"]:
                raise ValueError(f"w has N = {arr.shape[1]} outputs; the device's GEMV unit "
                                 f"holds {cfg['gemv_blocks'] * isa.BLOCK} weight rows")
            b0 = _alloc(self._v_free, nb, "GEMV weight (32-row)")
            try:
                h = gemv_upload_weights(self, wt, fmt, row0=b0 * isa.BLOCK,
                                        rows_to=nb * isa.BLOCK)
            except Exception:
                self._v_free[b0:b0 + nb] = [True] * nb
                raise
            gemv_write_weights(self, h, resident=False)
            return DeviceTensor("gemv_weights", arr.shape, fmt, b0, nb, owner=self,
                                payload=h)

    def free(self, h):
        """Release ``h``'s tiles (its handle becomes unusable)."""
        with self._lock:
            self._live(h, ("act", "weights", "result", "gemv_weights", "gemv_result"), "h")
            if h.kind in ("act", "weights") or (h.kind == "gemv_weights" and h.tiles):
                pool = {"act": self._a_free, "weights": self._b_free,
                        "gemv_weights": getattr(self, "_v_free", None)}[h.kind]
                pool[h.tile:h.tile + h.tiles] = [True] * h.tiles
            h.freed = True

    # ---- layers ----
    def _unit_for(self, w):
        """The compute unit that runs a layer with weights ``w``: the one place a second
        unit (a GEMV engine for BitMoD weights) is dispatched."""
        return "gemv" if w.kind == "gemv_weights" else "gemm"

    def _linear_gemv(self, x, w, out_fmt):
        """A BitMoD layer on the GEMV unit: one GEMV per row of ``x``. Linked to the
        program sequencer (weights placed by the layer API, ``w.tiles > 0``): a GEMV
        instruction (:meth:`_gemv_instr`). Else the unit runs from the host: an on-device
        ``x`` is read back (PEEK) and sent to it, and the fixed-point results come back to
        the host (``out_fmt`` must be None)."""
        from .gemv_host import gemv_matmul
        if w.tiles:
            return self._gemv_instr(x, w, out_fmt)
        if out_fmt is not None:
            raise ValueError(f"out_fmt={out_fmt!r}: this device's GEMV unit is not linked "
                             f"to a program sequencer: its results are not re-quantised on "
                             f"chip (out_fmt=None only)")
        if self._recording is not None:
            raise ValueError("GEMV layers run inside program() blocks only on a device "
                             "whose GEMV unit is linked to the sequencer (this one's is not)")
        if isinstance(x, DeviceTensor):
            self._live(x, ("act",), "x")
            if not x.ready:
                raise ValueError("x is produced by a program still being recorded")
            x = self.download_mx(x).dequantize()
        from ..golden.quantize import to_numpy
        arr = to_numpy(x)
        if arr.ndim != 2 or arr.shape[1] != w.shape[0]:
            raise ValueError(f"x must be 2-D (M, {w.shape[0]}) for weights of shape "
                             f"{w.shape}, not of shape {arr.shape}")
        y = gemv_matmul(self, w.payload, arr)
        return DeviceTensor("gemv_result", y.shape, None, 0, 0, owner=self, payload=y)

    def _gemv_instr(self, x, w, out_fmt):
        """A GEMV instruction: ``x`` (on the device, or floats uploaded first) against the
        GEMV unit's weight blocks ``w.tile ..``; results as :meth:`linear`'s."""
        cfg = self.layer_caps()
        tmp = None
        if not isinstance(x, DeviceTensor):
            if self._recording is not None:
                raise ValueError("inside program() x must be on the device (upload it first)")
            x = tmp = self.upload(x)
        self._live(x, ("act",), "x")
        (M, K), (K2, N) = x.shape, w.shape
        if K != K2:
            raise ValueError(f"inner dimensions differ: x is {x.shape}, w is {w.shape}")
        if K > cfg["gemv_max_k"]:
            raise ValueError(f"K = {K}: the device's GEMV unit takes at most "
                             f"{cfg['gemv_max_k']} columns")
        fields = dict(op=isa.OPCODES["GEMV"], k_blocks=K // isa.BLOCK, src=x.tile,
                      m_tiles=x.tiles, b=w.tile, n_tiles=w.tiles)
        out = self._layer_out(cfg, fields, x, (M, N), w.tiles * isa.BLOCK // cfg["cols"],
                              out_fmt)
        ins = isa.Instr(**fields)
        if self._recording is not None:
            out.ready = False
            self._recording.append((ins, out))
        else:
            try:
                self._run([(ins, out)])
            finally:
                if tmp is not None:
                    self.free(tmp)
        return out

    def _layer_out(self, cfg, fields, x, shape, n_ctiles, out_fmt):
        """The output tensor of a layer (``fields`` gains ``out_fmt``/``dst``)."""
        M, N = shape
        if out_fmt is None:
            if x.tiles * n_ctiles > cfg["c_tiles"]:
                raise ValueError(f"a ({M} x {N}) fixed-point result needs {x.tiles} x "
                                 f"{n_ctiles} C tiles; the device holds {cfg['c_tiles']}")
            self._c_gen += 1
            return DeviceTensor("result", (M, N), None, 0, x.tiles, n_ctiles,
                                gen=self._c_gen, owner=self)
        if cfg["out_fmt"] is None:
            raise ValueError(f"out_fmt={out_fmt!r}: this device was built without "
                             f"the on-chip activation path (out_fmt=None only)")
        fmt = self._fmt(out_fmt, cfg["out_fmt"], "out_fmt")
        if N % isa.BLOCK or N > cfg["max_k"]:
            raise ValueError(f"an on-chip activation needs N a multiple of "
                             f"{isa.BLOCK} and at most max_k = {cfg['max_k']} (it is "
                             f"the next layer's K), not {N}")
        dst = _alloc(self._a_free, x.tiles, "A")
        fields.update(out_fmt=cfg["out_id"], dst=dst)
        return DeviceTensor("act", (M, N), fmt, dst, x.tiles, owner=self)

    def linear(self, x, w, out_fmt=None) -> DeviceTensor:
        """``x @ w`` on the device. ``out_fmt``: re-quantised on chip to that format (the
        device's activation path), blocks of 32 along N, into new A tiles (N a multiple
        of 32, at most max_k); None: the fixed-point results in the C tiles (download
        them). Inside ``with acc.program():`` recorded, else run at once. BitMoD weights
        (``"gemv_weights"``) run on the GEMV unit (:meth:`_linear_gemv`; ``x`` may then
        also be a float array)."""
        with self._lock:
            self._live(w, ("weights", "gemv_weights"), "w")
            if self._unit_for(w) == "gemv":
                return self._linear_gemv(x, w, out_fmt)
            cfg = self.layer_caps()
            self._live(x, ("act",), "x")
            (M, K), (K2, N) = x.shape, w.shape
            if K != K2:
                raise ValueError(f"inner dimensions differ: x is {x.shape}, w is {w.shape}")
            fields = dict(op=isa.OPCODES["LINEAR"], k_blocks=K // isa.BLOCK, src=x.tile,
                          m_tiles=x.tiles, b=w.tile, n_tiles=w.tiles)
            out = self._layer_out(cfg, fields, x, (M, N), w.tiles, out_fmt)
            ins = isa.Instr(**fields)
            if self._recording is not None:
                out.ready = False
                self._recording.append((ins, out))
            else:
                self._run([(ins, out)])
            return out

    @contextlib.contextmanager
    def program(self):
        """Record the ``linear`` calls in the block; run them as one program at its end
        (nothing runs if the block raises). Yields the list of recorded instructions."""
        with self._lock:
            if self._recording is not None:
                raise RuntimeError("program() blocks do not nest")
            self.layer_caps()
            self._recording = rec = []
            try:
                yield rec
            finally:
                self._recording = None
            self._run(rec)

    def _run(self, recorded, poll_limit=100_000):
        cfg = self.layer_caps()
        words = isa.assemble([ins for ins, _ in recorded])
        if len(words) > cfg["prog_words"]:
            raise ValueError(f"a program of {len(words) // isa.WORDS} instructions (with END) "
                             f"does not fit the device's {cfg['prog_words']}-word program "
                             f"memory")
        self.write_words(region_address("prog"), words)
        self.write_words(region_address("regs", GEMM_REGS["PROG_START"]), [1])
        R, C = cfg["rows"], cfg["cols"]
        g = cfg["gemv"] or {"pes": 1, "lanes": 1}
        self._wait(sum(i.m_tiles * i.n_tiles * (
            i.k_blocks * isa.BLOCK + R + C if i.op != isa.OPCODES["GEMV"] else
            R * (isa.BLOCK // g["pes"] * i.k_blocks * isa.BLOCK // g["lanes"] * 3
                 + i.k_blocks * isa.BLOCK)) for i, _ in recorded))
        for _ in range(poll_limit):
            st = decode("PROG_STATUS", self.read_words(
                region_address("regs", GEMM_REGS["PROG_STATUS"]), 1)[0])
            if st["done"] and not st["busy"]:
                break
        else:
            raise TimeoutError(f"the program did not finish after {poll_limit} polls")
        self.last_cycles = {
            "total": self.read_words(region_address("regs", GEMM_REGS["PROG_CYCLES"]), 1)[0],
            "per_instruction": self.read_words(region_address("prog_cycles"),
                                               len(words) // isa.WORDS)}
        if st["error"]:
            name = {v: k for k, v in isa.ERRORS.items()}.get(st["error"], st["error"])
            raise ProgramError(f"the device stopped the program with error {name!r} at "
                               f"instruction {st['pc']}", name, st["pc"])
        for _, out in recorded:
            out.ready = True

    def run_program(self, instrs):
        """Run raw instructions (:class:`mxhw.soc.isa.Instr`; END appended); returns the
        cycle counts. Raises :class:`ProgramError` for an error status."""
        with self._lock:
            self._run([(i, DeviceTensor("raw", (), None, 0, 0)) for i in instrs])
            return self.last_cycles

    # ---- downloads ----
    def download(self, h):
        """A tensor's values as NumPy: float64 fixed-point results (``"result"``), or
        the exact values of an MX tensor's codes (see :meth:`download_mx`)."""
        import numpy as np
        with self._lock:
            self._live(h, ("act", "weights", "result", "gemv_weights", "gemv_result"), "h")
            if h.kind == "gemv_result":
                return h.payload.copy()
            if not h.ready:
                raise ValueError("h is produced by a program still being recorded: "
                                 "leave the program() block first")
            if h.kind in ("weights", "gemv_weights"):
                raise ValueError("weights are write-only on the device")
            if h.kind == "act":
                return self.download_mx(h).dequantize()
            cfg = self.layer_caps()
            R, C = cfg["rows"], cfg["cols"]
            lw, lc = lanes_log2(cfg["acc_width"]), (C - 1).bit_length()
            M, N = h.shape
            out = np.zeros((pow2(R) * h.tiles, C * h.n_tiles))
            per = pow2(R) << (lc + lw)
            words = self.read_words(region_address("c"), per * h.tiles * h.n_tiles)
            spec = self.read_words(region_address("c_special"), pow2(R) * h.tiles * h.n_tiles)
            for t in range(h.tiles * h.n_tiles):
                r, c = divmod(t, h.n_tiles)
                out[r * pow2(R):r * pow2(R) + R, c * C:(c + 1) * C] = self._c_values(
                    words, spec, t * pow2(R), R, C, cfg)
            keep = [r * pow2(R) + i for r in range(h.tiles) for i in range(R)]
            return out[keep][:M, :N]

    def download_mx(self, h):
        """An activation tensor's codes read back from the A memories (the PEEK
        register) as a :class:`~mxhw.golden.MXArray`."""
        import numpy as np
        from .. import golden
        with self._lock:
            self._live(h, ("act",), "h")
            cfg = self.layer_caps()
            f = golden.formats.get(h.fmt)
            R, kmax = cfg["rows"], cfg["max_k"]
            (M, K), nb = h.shape, h.shape[1] // isa.BLOCK
            ea, sa = f.element.bits, entry_bits(f)
            la, las = lanes_log2(R * ea), lanes_log2(R * sa)
            el = np.zeros((h.tiles * R, K), dtype=np.int64)
            sc = np.zeros((h.tiles * R, nb), dtype=np.int64)
            for r in range(h.tiles):
                t = h.tile + r
                for k in range(K):
                    bits = self._peek_row(((t * kmax + k) << la), la)
                    el[r * R:(r + 1) * R, k] = [bits >> (i * ea) & ((1 << ea) - 1)
                                                for i in range(R)]
                for kb in range(nb):
                    bits = self._peek_row(1 << 31 | ((t * kmax // isa.BLOCK + kb) << las), las)
                    sc[r * R:(r + 1) * R, kb] = [bits >> (i * sa) & ((1 << sa) - 1)
                                                 for i in range(R)]
            scales, modes = unpack_entries(sc[:M], f)
            return golden.MXArray(f, (M, K), 1, el[:M], scales, modes)

    def _peek_row(self, index, lanes_log):
        """The ``2**lanes_log`` lane words from A (or, with bit 31, A-scale) word index
        ``index`` as one integer (lane 0 low)."""
        v = 0
        for lane in range(1 << lanes_log):
            self.write_words(region_address("regs", GEMM_REGS["PEEK"]), [index | lane])
            self._wait(4)
            v |= self.read_words(region_address("regs", GEMM_REGS["PEEK_DATA"]), 1)[0] \
                << (32 * lane)
        return v

