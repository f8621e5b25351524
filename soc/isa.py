"""The GEMM unit's program instructions (``docs/isa.md``): the one encoding, used by the
gateware (:mod:`mxhw.soc.program`), the driver (:mod:`mxhw.soc.layers`), the docs and
the tests.

An instruction is two 32-bit words (:data:`WORDS`), word 0 first in program memory;
as one 64-bit value its fields are :data:`FIELDS` (``name -> (low bit, width)``).

- ``END`` (opcode 0): the program ends (status done, error 0).
- ``LINEAR`` (opcode 1): ``Y = A @ B`` for ``A`` in the A tiles ``src .. src + m_tiles -
  1`` (``rows`` rows each, ``k_blocks * 32`` columns) and ``B`` in the B tiles ``b ..
  b + n_tiles - 1`` (``cols`` columns each), a hardware loop over row tiles, column
  tiles and K. ``out_fmt = 0``: the fixed-point results go to the C tiles ``r * n_tiles
  + c`` (host-readable); otherwise the results are re-quantised on chip, blocks of 32
  along N, into the A tiles ``dst .. dst + m_tiles - 1`` (the output feature ``n`` is
  the K index there), where a later LINEAR reads them.
- ``GEMV`` (opcode 2; a GEMM unit linked to the BitMoD GEMV unit, :mod:`mxhw.soc.gemv_link`):
  ``Y = A @ W^T`` for the same ``A`` and the GEMV unit's weight rows ``32 b .. 32 (b +
  n_tiles) - 1`` (``n_tiles`` blocks of 32 output features): per row tile, block and
  row the row is copied on chip into the GEMV unit's activation memory and one 32-row
  GEMV runs; its results go to the C tiles (``out_fmt = 0``, the LINEAR layout with
  ``32 n_tiles / cols`` column tiles) or through the same activation path into ``dst``.

Errors (:data:`ERRORS`) stop the program before the failing instruction writes anything;
PROG_STATUS then holds the code and the instruction's index.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["WORDS", "OPCODES", "FIELDS", "ERRORS", "Instr", "encode", "decode",
           "check", "assemble"]

#: 32-bit words per instruction
WORDS = 2
OPCODES = {"END": 0, "LINEAR": 1, "GEMV": 2}
#: field -> (low bit, width) in the instruction's 64-bit value
FIELDS = {
    "op": (0, 4), "out_fmt": (4, 8), "k_blocks": (12, 8), "src": (20, 8),
    "m_tiles": (32, 8), "dst": (40, 8), "b": (48, 8), "n_tiles": (56, 8),
}
#: PROG_STATUS error codes (first match wins, in this order)
ERRORS = {"none": 0, "opcode": 1, "format": 2, "shape": 3, "region": 4}

#: the block size along K (and along N for the activation path): every built format's
BLOCK = 32


@dataclass(frozen=True)
class Instr:
    """One instruction's fields (:data:`FIELDS`); unused fields are 0."""
    op: int = 0
    out_fmt: int = 0
    k_blocks: int = 0
    src: int = 0
    m_tiles: int = 0
    dst: int = 0
    b: int = 0
    n_tiles: int = 0


def encode(instr: Instr) -> list[int]:
    """The :data:`WORDS` words of ``instr`` (each field must fit its width)."""
    v = 0
    for name, (lo, width) in FIELDS.items():
        f = getattr(instr, name)
        if not isinstance(f, int) or isinstance(f, bool) or not 0 <= f < 1 << width:
            raise ValueError(f"instruction field {name} = {f!r} does not fit its {width} "
                             f"bits (allowed 0 .. {(1 << width) - 1})")
        v |= f << lo
    return [(v >> (32 * i)) & 0xFFFF_FFFF for i in range(WORDS)]


def decode(words) -> Instr:
    """The :class:`Instr` of ``WORDS`` words."""
    v = sum(int(w) << (32 * i) for i, w in enumerate(words[:WORDS]))
    return Instr(**{n: (v >> lo) & ((1 << w) - 1) for n, (lo, w) in FIELDS.items()})


def check(instr: Instr, caps: dict) -> str:
    """The error the sequencer reports for ``instr`` on a unit with ``caps`` (keys
    ``rows``, ``cols``, ``max_k``, ``a_tiles``, ``b_tiles``, ``c_tiles``, ``out_fmt``
    (format id, 0: no activation path) and, for GEMV, ``gemv_blocks`` (blocks of 32
    weight rows the linked GEMV unit holds; 0 or absent: no GEMV unit linked) and
    ``gemv_max_k`` (its largest K)): a key of :data:`ERRORS`. The gateware computes the
    same conditions (:mod:`mxhw.soc.program`); this is their specification."""
    vec = instr.op == OPCODES["GEMV"]
    if instr.op not in OPCODES.values() or (vec and not caps.get("gemv_blocks")):
        return "opcode"
    if instr.op == OPCODES["END"]:
        return "none"
    q = instr.out_fmt != 0
    if q and instr.out_fmt != caps["out_fmt"]:
        return "format"
    m, a = instr.m_tiles, caps["a_tiles"]
    if vec:
        kmax = min(caps["max_k"], caps["gemv_max_k"])
        if (not 1 <= instr.k_blocks <= kmax // BLOCK or m == 0 or instr.n_tiles == 0
                or (q and instr.n_tiles * BLOCK > caps["max_k"])):
            return "shape"
        c_need, b_max = m * instr.n_tiles * (BLOCK // caps["cols"]), caps["gemv_blocks"]
    else:
        per_block = BLOCK // caps["cols"] if q else 1
        if (not 1 <= instr.k_blocks <= caps["max_k"] // BLOCK or m == 0
                or instr.n_tiles == 0 or instr.n_tiles % per_block
                or (q and instr.n_tiles * caps["cols"] > caps["max_k"])):
            return "shape"
        c_need, b_max = m * instr.n_tiles, caps["b_tiles"]
    if instr.src + m > a or instr.b + instr.n_tiles > b_max:
        return "region"
    if q and (instr.dst + m > a or (instr.src < instr.dst + m and instr.dst < instr.src + m)):
        return "region"
    if not q and c_need > caps["c_tiles"]:
        return "region"
    return "none"


def assemble(instrs) -> list[int]:
    """The program words of ``instrs`` (an END is appended unless the last is one)."""
    instrs = list(instrs)
    if not instrs or instrs[-1].op != OPCODES["END"]:
        instrs.append(Instr(op=OPCODES["END"]))
    return [w for i in instrs for w in encode(i)]
