"""The compute units' register and address map: the one definition.

A compute unit sits at :data:`GEMM_BASE` (byte address); its word addresses are split in
regions of ``2**REGION_SHIFT`` words (4 MiB) by :data:`REGION`. The register region's
words are :data:`REGISTERS`; the units decode them (:mod:`mxhw.soc.unit`), the driver
reads them (:mod:`mxhw.soc.driver`) and ``soc/PROTOCOL.md`` documents them (a test checks
that the document's table is this one). Register fields (:data:`FIELDS`) are packed with
:func:`encode` and unpacked with :func:`decode`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GEMM_BASE", "REGION", "REGION_SHIFT", "UNIT_ADDR_BITS", "Register", "REGISTERS",
           "GEMM_REGS", "FIELDS", "FORMAT_IDS", "DATAFLOW_IDS", "encode", "decode",
           "field_range", "registers_for", "lanes_log2", "pack_lanes", "region_address"]

GEMM_BASE = 0x2000_0000
#: word-address bits a unit decodes (its slot is 2**UNIT_ADDR_BITS words)
UNIT_ADDR_BITS = 26
REGION_SHIFT = 20  # word-address bit of the region number (4 MiB regions)
REGION = {"regs": 0, "a": 1, "a_scale": 2, "b": 3, "b_scale": 4, "c": 5, "c_special": 6,
          "prog": 7, "prog_cycles": 8}

#: stable ids of the block formats a SoC can be built with (the FORMATS register)
FORMAT_IDS = {"mxfp8_e4m3": 1, "mxfp8_e5m2": 2, "mxfp6_e3m2": 3, "mxfp6_e2m3": 4,
              "mxfp4_e2m1": 5, "mxint8": 6, "mxsf": 7, "mxsf_tile": 8}
#: GEOMETRY bit 24 (and FEATURES bit 9): the dataflow of the built GEMM unit
DATAFLOW_IDS = {"output_stationary": 0, "weight_stationary": 1}


@dataclass(frozen=True)
class Register:
    """One register word: ``index`` (word offset in the register region), ``access``
    (``"R"``, ``"W"``, ``"R/W"``), the dataflows that have it (None: every unit; ``"tile"``:
    the tile-format unit) and what it holds."""
    name: str
    index: int
    access: str
    doc: str
    dataflows: tuple | None = None

    @property
    def offset(self):
        """Byte offset from :data:`GEMM_BASE`."""
        return 4 * self.index


OS, WS = "output_stationary", "weight_stationary"
#: the tile-format unit (:mod:`mxhw.soc.tileunit`): the output-stationary registers and these
TILE = "tile"

REGISTERS = (
    Register("K", 0x0, "R/W", "K of the next START (a multiple of the block size, at most "
             "max_k); ignored while busy"),
    Register("START", 0x1, "W", "write 1: compute one output tile (ignored while busy)"),
    Register("STATUS", 0x1, "R", "bit 0 busy, bit 1 done"),
    Register("BUSY_CYCLES", 0x2, "R", "cycles the unit was busy, since reset"),
    Register("STALL_CYCLES", 0x3, "R", "busy cycles an operand waited for the array"),
    Register("GEOMETRY", 0x4, "R", "rows | cols << 8 | log2(max_k) << 16 | dataflow << 24 "
             "| log2(a_tiles) << 28"),
    Register("FORMATS", 0x5, "R", "id_a | id_b << 8 (FORMAT_IDS)"),
    Register("ACC", 0x6, "R", "width | frac_bits << 8 | saturate << 16 | rne << 17"),
    Register("A_TILE", 0x7, "R/W", "the A tile the next START reads (0 .. a_tiles-1); "
             "ignored while busy; a program run leaves it 0", (OS,)),
    Register("B_TILE", 0x8, "R/W", "the B tile the next START reads (0 .. b_tiles-1); "
             "ignored while busy; a program run leaves it 0", (OS,)),
    Register("CAPS", 0x9, "R", "log2(b_tiles) | log2(c_tiles) << 4 | log2(prog_words) << 8 "
             "(0: no program sequencer) | out format id << 16 (0: no activation path) | "
             "bit 24: a GEMV unit linked to the sequencer (docs/isa.md, GEMV)", (OS,)),
    Register("PROG_START", 0xA, "W", "write 1: run the program from instruction 0 (ignored "
             "while busy; docs/isa.md)", (OS,)),
    Register("PROG_STATUS", 0xA, "R", "bit 0 busy, bit 1 done, bits 8-15 error code, bits "
             "16-31 the failing instruction (docs/isa.md)", (OS,)),
    Register("PROG_CYCLES", 0xB, "R", "cycles of the last program run", (OS,)),
    Register("PEEK", 0xC, "W", "A-memory read-back address: bit 31 selects the scales; "
             "bits 0-30 a word index of region A (or A scales); ignored while busy", (OS,)),
    Register("PEEK_DATA", 0xC, "R", "the A-memory word PEEK addresses (3 cycles after "
             "the write)", (OS,)),
    Register("OPERANDS", 0xD, "R/W", "tile unit (fmt mxsf_tile): A's slot | B's slot << 4 | "
             "transpose A << 8 | transpose B << 9, for the next START; ignored while busy",
             (TILE,)),
    Register("DEPTH", 0x10, "R", "the output tile's height", (WS,)),
)

#: register name -> word index (every register of every unit)
GEMM_REGS = {r.name: r.index for r in REGISTERS}

#: register fields: name -> (low bit, width, signed)
FIELDS = {
    "STATUS": {"busy": (0, 1, False), "done": (1, 1, False)},
    "GEOMETRY": {"rows": (0, 8, False), "cols": (8, 8, False), "log2_max_k": (16, 8, False),
                 "dataflow": (24, 1, False), "log2_a_tiles": (28, 4, False)},
    "FORMATS": {"fmt_a": (0, 8, False), "fmt_b": (8, 8, False)},
    "CAPS": {"log2_b_tiles": (0, 4, False), "log2_c_tiles": (4, 4, False),
             "log2_prog_words": (8, 4, False), "out_fmt": (16, 8, False),
             "gemv": (24, 1, False)},
    "PROG_STATUS": {"busy": (0, 1, False), "done": (1, 1, False), "error": (8, 8, False),
                    "pc": (16, 16, False)},
    "OPERANDS": {"slot_a": (0, 4, False), "slot_b": (4, 4, False),
                 "transpose_a": (8, 1, False), "transpose_b": (9, 1, False)},
    "ACC": {"width": (0, 8, False), "frac_bits": (8, 8, True), "saturate": (16, 1, False),
            "rne": (17, 1, False)},
}


def registers_for(dataflow):
    """The registers a unit of ``dataflow`` has: name -> :class:`Register`."""
    return {r.name: r for r in REGISTERS if r.dataflows is None or dataflow in r.dataflows}


def encode(reg, fields=None, **values):
    """The word of register ``reg`` with the given fields (``fields``: a table like
    :data:`FIELDS`, the default)."""
    fields = FIELDS if fields is None else fields
    word = 0
    for name, v in values.items():
        lo, width, _ = fields[reg][name]
        lo_v, hi_v = field_range(reg, name, fields)
        if not lo_v <= int(v) <= hi_v:
            raise ValueError(f"{reg}.{name} = {v} does not fit its {width}-bit register "
                             f"field (allowed {lo_v} .. {hi_v})")
        word |= (int(v) & ((1 << width) - 1)) << lo
    return word


def field_range(reg, name, fields=None):
    """``(lowest, highest)`` value register field ``reg.name`` holds (``fields``: a table
    like :data:`FIELDS`, the default)."""
    _, width, signed = (FIELDS if fields is None else fields)[reg][name]
    return (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)


def decode(reg, word, fields=None):
    """The fields of register ``reg``'s ``word``: name -> int (``fields``: a table like
    :data:`FIELDS`, the default)."""
    out = {}
    for name, (lo, width, signed) in (FIELDS if fields is None else fields)[reg].items():
        v = word >> lo & ((1 << width) - 1)
        out[name] = v - (v >> (width - 1) << width) if signed else v
    return out


def lanes_log2(bits):
    """log2 of the number of 32-bit lanes (a power of two) holding ``bits`` bits."""
    return max(0, (-(-bits // 32) - 1).bit_length())


def region_address(name, offset=0):
    """Byte address of word ``offset`` of region ``name``."""
    return GEMM_BASE + 4 * ((REGION[name] << REGION_SHIFT) + offset)


def pack_lanes(codes, bits, lanes_log):
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

