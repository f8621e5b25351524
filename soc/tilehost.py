"""Host side of the tile unit (:mod:`mxhw.soc.tileunit`): tensors uploaded once in tile form
(``mxsf_tile``) and products of them read as stored or transposed, mixed into
:class:`~mxhw.soc.driver.Accelerator`.

>>> x_t = acc.upload_tiles(x, slot=0)      # X quantised once, in its stored orientation
>>> dw = acc.matmul(x_t, dy_t, transpose_a=True)   # X^T dY from the same stored tiles
"""

from __future__ import annotations

from dataclasses import dataclass

from ..lib.params import check_int
from .regmap import GEMM_REGS, encode, pack_lanes, region_address
from .tileunit import tile_index, tile_k_run, tile_lanes_log2

__all__ = ["TileTensor", "TileMixin", "is_tile_format"]


@dataclass(frozen=True, eq=False)
class TileTensor:
    """A matrix held by the tile unit: ``q`` (the ``golden.MXArray`` uploaded, in its stored
    orientation) in memory slot ``slot``. Valid until another upload to that slot."""
    q: object
    slot: int

    @property
    def shape(self):
        return tuple(self.q.shape)


class TileMixin:
    """Upload and product methods of a tile unit (:class:`~mxhw.soc.driver.Accelerator`
    mixes them in; they use its ``gemm_config``, ``write_words`` and the GEMM unit's
    START / STATUS / result helpers)."""

    def _tile_cfg(self, what):
        cfg = self.gemm_config()
        if cfg["fmt_a"] != cfg["fmt_b"] or not is_tile_format(cfg["fmt_a"]):
            raise ValueError(f"{what} needs a tile-format GEMM unit (SoCConfig fmt_a = fmt_b "
                             f"= 'mxsf_tile'); this device was built for fmt_a="
                             f"{cfg['fmt_a']!r}, fmt_b={cfg['fmt_b']!r}")
        return cfg

    def upload_tiles(self, x, slot=0, fmt=None):
        """Quantise ``x`` (a 2-D float array; or take a 2-D tile-format ``golden.MXArray``)
        once, tiles over its two axes, and write its tiles into memory slot ``slot`` of
        the tile unit. Returns a :class:`TileTensor` for :meth:`matmul` (either operand,
        read as stored or transposed); an earlier tensor of that slot becomes invalid."""
        with self._lock:
            cfg = self._tile_cfg("upload_tiles")
            check_int("slot", slot, 0, cfg["a_tiles"] - 1)
            q = _tile_operand(x, fmt, cfg["fmt_a"], "x")
            if max(q.shape) > cfg["max_k"]:
                raise ValueError(f"x of shape {q.shape}: each side must be at most the "
                                 f"device's max_k = {cfg['max_k']}")
            self._write_tiles(q, slot, cfg)
            t = TileTensor(q, slot)
            self._tile_slots()[slot] = t
            return t

    def _tile_slots(self):
        if not hasattr(self, "_slots"):
            self._slots = {}
        return self._slots

    def _write_tiles(self, q, slot, cfg):
        import numpy as np
        from ..mem.tilestore import tile_code_bits
        from ..systolic.tilearray import tile_words
        fmt, kmax = q.fmt, cfg["max_k"]
        la = tile_lanes_log2(fmt.name)
        tr, tc = (int(n) for n in q.scales.shape)
        words = tile_words(q, tr, tc)
        codes = np.array([w["codes"] for w in words], dtype=np.int64)
        packed = pack_lanes(codes, tile_code_bits(fmt), la)
        entries = [w["scale"] | w["mode"] << fmt.scale.bits for w in words]
        for ti in range(tr):
            base = tile_index(fmt.name, kmax, slot, ti, 0)
            row = slice(ti * tc, (ti + 1) * tc)
            self.write_words(region_address("a", base << la),
                             packed[(ti * tc) << la:((ti + 1) * tc) << la])
            self.write_words(region_address("a_scale", base), entries[row])

    def _matmul_tiles(self, a, b, fmt_a, fmt_b, transpose_a, transpose_b, poll_limit):
        """:meth:`Accelerator.matmul` on the tile unit (the driver's contract there)."""
        import numpy as np
        from .. import golden
        cfg = self._tile_cfg("matmul of tile operands")
        fmt = cfg["fmt_a"]
        for name, v in (("fmt_a", fmt_a), ("fmt_b", fmt_b)):
            if v is not None and golden.formats.get(v).name != fmt:
                raise ValueError(f"{name}={v!r}, but the device was built for {fmt!r}")
        ta, tb = (_flag(n, v) for n, v in (("transpose_a", transpose_a),
                                             ("transpose_b", transpose_b)))
        ops = []
        for name, x, slot in (("a", a, 0), ("b", b, 1)):
            if isinstance(x, TileTensor):
                if self._tile_slots().get(x.slot) is not x:
                    raise ValueError(f"{name} is no longer on the device (slot {x.slot} was "
                                     f"written since it was uploaded)")
                ops.append(x)
            else:
                if cfg["a_tiles"] < 2:
                    raise ValueError("matmul of arrays uploads them to slots 0 and 1; this "
                                     "device has one slot (pass TileTensors)")
                ops.append(self.upload_tiles(x, slot))
        qa, qb = ops[0].q, ops[1].q
        M, K = qa.shape[::-1] if ta else qa.shape
        K2, N = qb.shape[::-1] if tb else qb.shape
        if K != K2:
            raise ValueError(f"inner dimensions differ: op(a) is {M} x {K}, op(b) is "
                             f"{K2} x {N}")
        kr = tile_k_run(fmt, ta, tb)
        if K % kr:
            raise ValueError(f"K = {K} must be a multiple of the product's K block {kr} "
                             f"(golden's: op(a)'s tile width with op(b)'s tile height)")
        R, C = cfg["rows"], cfg["cols"]
        reg = lambda n: region_address("regs", GEMM_REGS[n])   # noqa: E731
        self.write_words(reg("K"), [K])
        self.write_words(reg("OPERANDS"), [encode("OPERANDS", slot_a=ops[0].slot,
                                                  slot_b=ops[1].slot, transpose_a=ta,
                                                  transpose_b=tb)])
        kb = max(tile_k_run(fmt, x, y) for x in (0, 1) for y in (0, 1))
        cycles = K * kb // kr + R + C       # a lower bound: the steps and the array's skew
        out = np.zeros((M, N), dtype=np.float64)
        for m0 in range(0, M, R):
            self.write_words(reg("A_TILE"), [m0 // R])
            for n0 in range(0, N, C):
                self.write_words(reg("B_TILE"), [n0 // C])
                self._run_tile(cycles, poll_limit)
                self._read_tile(out, m0, n0, min(R, M - m0), cfg)
        return out


def is_tile_format(name):
    """Whether the format named ``name`` (None: not a known format) has 2-D tiles."""
    from .. import golden
    return name is not None and isinstance(golden.formats.get(name).block, tuple)


def _flag(name, v):
    if not isinstance(v, bool):
        raise TypeError(f"{name} must be True or False, not {v!r}")
    return v


def _tile_operand(x, fmt, built, name):
    from .. import golden
    from ..golden.quantize import to_numpy
    if fmt is not None and golden.formats.get(fmt).name != built:
        raise ValueError(f"fmt={fmt!r}, but the device was built for {built!r}")
    if isinstance(x, golden.MXArray):
        if x.fmt.name != built or len(x.shape) != 2:
            raise ValueError(f"{name} must be a 2-D MXArray quantised as {built!r}, not "
                             f"{x.fmt.name!r} of shape {x.shape}")
        return x
    arr = to_numpy(x)
    if arr.ndim != 2 or 0 in arr.shape:
        raise ValueError(f"{name} must be a non-empty 2-D array, not of shape {arr.shape}")
    return golden.quantize(arr, built)
