"""The GEMV unit's register and address map (:class:`mxhw.soc.gemv.GemvUnit`).

Kept beside :mod:`mxhw.soc.regmap` (the GEMM unit's map) so the two can be merged: the
unit sits at :data:`GEMV_BASE` (a free unit slot of ``2**UNIT_ADDR_BITS`` words), its
regions are those of :data:`~mxhw.soc.regmap.REGION` where they mean the same (the
register, result and special-flag regions; the operand regions renamed) plus ``w_exp``,
and its registers are :data:`GEMV_REGISTERS` (:class:`~mxhw.soc.regmap.Register` entries;
the ACC word has the GEMM unit's layout). ``docs/gemv.md`` documents the layouts.
"""

from .regmap import FORMAT_IDS, REGION, REGION_SHIFT, Register, decode, encode

__all__ = ["GEMV_BASE", "GEMV_REGION", "GEMV_REGISTERS", "GEMV_REGS", "GEMV_FIELDS",
           "GEMV_KIND", "FAMILY_BITS", "ACT_FORMATS", "gemv_encode", "gemv_decode",
           "gemv_address"]

#: byte address of the unit's slot (the GEMM unit's is 0x2000_0000)
GEMV_BASE = 0x3000_0000
#: the KIND register's value: "GEMV" (a driver checks it before using the slot)
GEMV_KIND = 0x47454D56

#: region name -> region number (word address bits REGION_SHIFT and up)
GEMV_REGION = {"regs": REGION["regs"], "x": REGION["a"], "x_scale": REGION["a_scale"],
               "w": REGION["b"], "w_meta": REGION["b_scale"], "y": REGION["c"],
               "y_special": REGION["c_special"], "w_exp": 7}

#: weight family -> its bit in FORMATS.families (golden.gemv_unit.FAMILIES order)
FAMILY_BITS = {"bitmod_fp4": 0, "bitmod_fp3": 1, "int4": 2, "int3": 3}
#: activation formats a GEMV unit is built for (ids of :data:`~mxhw.soc.regmap.FORMAT_IDS`)
ACT_FORMATS = ("mxint8", "mxfp8_e4m3")

GEMV_REGISTERS = (
    Register("COLS", 0x0, "R/W", "K (columns of W, length of x) of the next START: a "
             "multiple of 32, at most max_cols; ignored while busy"),
    Register("START", 0x1, "W", "write 1: y = W x over ROWS x COLS (ignored while busy)"),
    Register("STATUS", 0x1, "R", "bit 0 busy, bit 1 done"),
    Register("BUSY_CYCLES", 0x2, "R", "cycles the unit was busy, since reset"),
    Register("ROWS", 0x3, "R/W", "rows of W of the next START: at most max_rows; ignored "
             "while busy"),
    Register("GEOMETRY", 0x4, "R", "pes | lanes << 8 | log2(max_cols) << 16 | "
             "log2(max_rows) << 20 | align_width << 24"),
    Register("FORMATS", 0x5, "R", "activation format id (FORMAT_IDS) | weight families "
             "<< 8 (bit 0 bitmod_fp4, 1 bitmod_fp3, 2 int4, 3 int3) | scale_bits << 16"),
    Register("ACC", 0x6, "R", "width | frac_bits << 8 | saturate << 16 | rne << 17 (the "
             "GEMM unit's ACC layout)"),
    Register("KIND", 0x7, "R", f"0x{GEMV_KIND:08X} (\"GEMV\")"),
)

#: register name -> word index
GEMV_REGS = {r.name: r.index for r in GEMV_REGISTERS}

#: register fields: name -> (low bit, width, signed)
GEMV_FIELDS = {
    "STATUS": {"busy": (0, 1, False), "done": (1, 1, False)},
    "GEOMETRY": {"pes": (0, 8, False), "lanes": (8, 8, False), "log2_max_cols": (16, 4, False),
                 "log2_max_rows": (20, 4, False), "align_width": (24, 8, False)},
    "FORMATS": {"act": (0, 8, False), "families": (8, 8, False), "scale_bits": (16, 8, False)},
}


def gemv_encode(reg, **values):
    """The word of register ``reg`` (:data:`GEMV_FIELDS`) holding ``values``; a value
    that does not fit its field raises ``ValueError``."""
    return encode(reg, GEMV_FIELDS, **values)


def gemv_decode(reg, word):
    """The fields of register ``reg``'s ``word``: name -> int (all fields unsigned)."""
    return decode(reg, word, GEMV_FIELDS)


def gemv_address(region, offset=0):
    """Byte address of word ``offset`` of the GEMV unit's region ``region``."""
    return GEMV_BASE + 4 * ((GEMV_REGION[region] << REGION_SHIFT) + offset)


assert set(ACT_FORMATS) <= set(FORMAT_IDS)
