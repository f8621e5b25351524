"""The SoC's compute-unit bus adapter: what every compute unit on the word bus is built of.

A compute unit is a :class:`wiring.Component` with

- ``bus``: ``In(BusSignature(UNIT_ADDR_BITS))``, word addresses relative to the unit,
  read data one cycle after a read and 0 in the cycle after no read (the SoC ORs the
  units' read data);
- ``busy``: ``Out(1)``;
- ``registers``: the :class:`~mxhw.soc.regmap.Register` entries it decodes (name ->
  register) and ``register_values()``: name -> constant value of its read-only
  description registers.

Its address space is split in regions (:data:`~mxhw.soc.regmap.REGION`): the register
region, operand regions written by the host (:func:`lane_memories`) and result regions
read by it (:func:`result_memories`); :func:`reg_writes`, :func:`start_strobe` and
:func:`bus_reads` decode the bus with registered decode, so no path runs from the bus
into the unit's control or from a memory's read port through a compare.
:class:`~mxhw.soc.gemm.GemmUnit` is the GEMM unit; a new unit (a GEMV engine, a
re-quantiser) is a new file on these helpers and one entry in
:meth:`mxhw.soc.top.SoCConfig.units`.
"""

import functools
import operator

from amaranth import Cat, Mux, Signal
from amaranth.lib.memory import Memory

from ..mem import BlockRAM
from .bus import word_select
from .regmap import REGION, REGION_SHIFT

__all__ = ["decode_bus", "lane_memories", "result_memories", "reg_writes", "start_strobe",
           "bus_reads", "pow2"]


def pow2(n):
    """``n`` rounded up to a power of two: every memory address (a bus index, a counter)
    then stays in range by truncation (a simulator checks reads; the extra words cost no
    block RAM)."""
    return 1 << max(0, (n - 1).bit_length())


def decode_bus(bus):
    """The bus address as ``(region, index)``: the region number and the word index in
    it."""
    return bus.addr[REGION_SHIFT:REGION_SHIFT + 4], bus.addr[:REGION_SHIFT]


def lane_memories(m, bus, busy, name, lanes_log, depth, rd_index, region_id, alt=None):
    """One operand region: ``2**lanes_log`` 32-bit :class:`~mxhw.mem.BlockRAM` lanes of
    ``pow2(depth)`` words (read latency 2: on ECP5 the second stage is the block RAM's
    output register), written by the bus (lane = the index's low bits, unless ``busy``)
    and all read at ``rd_index``; returns their read data side by side. ``alt``: a second
    writer ``(en, addr, bits)`` that writes every lane at once (lane ``l`` bits ``32l ..
    32l + 31`` of ``bits``) while ``en`` (a busy unit's own writes: the bus's are
    ignored then)."""
    region, index = decode_bus(bus)
    words = []
    for lane in range(1 << lanes_log):
        m.submodules[f"{name}{lane}"] = mem = BlockRAM(32, max(pow2(depth), 2))
        hit = (region == region_id) & (index[:lanes_log] == lane) & ~busy
        w_addr, w_data, w_en = index[lanes_log:], bus.w_data, bus.w_en & hit
        if alt is not None:
            en, addr, bits = alt
            lane_bits = bits[32 * lane:32 * lane + 32] if 32 * lane < len(bits) else 0
            w_addr, w_data = Mux(en, addr, w_addr), Mux(en, lane_bits, w_data)
            w_en = w_en | en
        m.d.comb += [mem.w_addr.eq(w_addr), mem.w_data.eq(w_data),
                     mem.w_en.eq(w_en), mem.r_addr.eq(rd_index)]
        words.append(mem.r_data)
    return Cat(*words)


def result_memories(m, bus, o, row, rows, width, lw, lc, tile=None, tiles=1, en=1):
    """The result regions: one memory per column (``tiles`` tiles of ``pow2(rows)``
    words of ``width`` bits), row ``row`` of tile ``tile`` written from the result stream
    ``o`` (payload ``data``, ``special``: one entry per column) while it is valid and
    ``en``, read by the bus at index bits ``lw + lc`` and up (the caller selects word and
    column); and the special flags, one word per row. Returns (the columns' read data, the
    flags' read data)."""
    _, index = decode_bus(bus)
    rbits = (pow2(rows) - 1).bit_length()
    depth = pow2(rows) * tiles
    w_addr = Cat(row[:rbits], tile) if tile is not None and tiles > 1 else row[:rbits]
    wen = o.valid & en
    reads = []
    for j in range(len(o.payload.data)):
        mem = Memory(shape=width, depth=depth, init=[])
        m.submodules[f"c{j}"] = mem
        wp, rp = mem.write_port(), mem.read_port()
        m.d.comb += [wp.addr.eq(w_addr), wp.data.eq(o.payload.data[j]), wp.en.eq(wen),
                     rp.addr.eq(index[lw + lc:])]
        reads.append(rp.data)
    spec = Memory(shape=len(o.payload.special), depth=depth, init=[])
    m.submodules.special = spec
    swp, srp = spec.write_port(), spec.read_port()
    m.d.comb += [swp.addr.eq(w_addr), swp.data.eq(Cat(*o.payload.special)), swp.en.eq(wen),
                 srp.addr.eq(index)]
    return reads, srp.data


def reg_writes(m, bus, busy, regs):
    """Writable registers (``regs``: index -> signal), written the cycle after the bus
    write, unless the unit is busy then. The write's decode is registered: a flag (a write
    to the register region whose index is below ``2**rbits``, the only wide compare), the
    low index bits and the data; the register then meets a ``rbits``-bit compare, not the
    whole region and index (a START that follows a write on the next bus cycle still sees
    the new value: START too is acted on a cycle late)."""
    region, index = decode_bus(bus)
    rbits = max(1, max(regs).bit_length())
    w_hit = Signal()
    w_idx = Signal(rbits)
    w_data = Signal(32)
    m.d.sync += [w_hit.eq(bus.w_en & (region == REGION["regs"]) & (index[rbits:] == 0)),
                 w_idx.eq(index[:rbits]), w_data.eq(bus.w_data)]
    for i, sig in regs.items():
        with m.If(w_hit & (w_idx == i) & ~busy):
            m.d.sync += sig.eq(w_data)


def start_strobe(m, bus, start_index, busy):
    """A unit's start: a bus write of 1 to its START register, acted on the cycle after
    the write (the address decode is registered, so it does not reach the unit's control
    registers in the bus cycle), unless the unit is busy."""
    region, index = decode_bus(bus)
    req = Signal()
    m.d.sync += req.eq(bus.w_en & (region == REGION["regs"]) & (index == start_index)
                       & bus.w_data[0])
    start = Signal()
    m.d.comb += start.eq(req & ~busy)
    return start


def bus_reads(m, bus, regs, c_reads, special, lw, lc, extra=()):
    """The bus read side (data on the next cycle, 0 unless ``bus.r_en`` asked for a read):
    the registers ``regs`` (index -> value), the results (``c_reads``: one memory read
    port's data per column, addressed by the caller; word ``w`` of column ``j`` at index
    bits ``lw`` and up, ``j`` above them), the special flags (``special``) and ``extra``
    regions: ``(region id, read data)`` of memories read at the bus index like
    ``special``."""
    region, index = decode_bus(bus)
    # the register words: a multiplexer on the index's low bits, registered every cycle
    # (reads have no side effects; no reset: the domain reset's wide fan-out would
    # otherwise enter the logic in front of the 32 data flip-flops)
    reg_data = Signal(32, reset_less=True)
    word, rbits = word_select(regs, index)
    m.d.sync += reg_data.eq(word)
    # the read decode, registered beside the reads as one-hot flags (a read of the register
    # region with the higher index bits zero; of each result word; of the special flags):
    # the read data is one AND-OR of the sources, no compare or multiplexer after the
    # memories' read ports
    read = bus.r_en
    sources = [(read & (region == REGION["regs"]) & (index[rbits:] == 0), reg_data),
               (read & (region == REGION["c_special"]), special)]
    sources += [(read & (region == rid), data) for rid, data in extra]
    c_read = read & (region == REGION["c"])
    for j, data in enumerate(c_reads):
        ext = Signal(32 << lw, name=f"c_ext{j}")    # the result, sign-extended to words
        m.d.comb += ext.eq(data.as_signed())
        for w in range(1 << lw):
            hit = c_read
            if lc:
                hit &= index[lw:lw + lc] == j
            if lw:
                hit &= index[:lw] == w
            sources.append((hit, ext.word_select(w, 32)))
    terms = []
    for i, (hit, data) in enumerate(sources):
        flag = Signal(name=f"rd_hit{i}")
        m.d.sync += flag.eq(hit)
        terms.append(flag.replicate(32) & data)
    m.d.comb += bus.r_data.eq(functools.reduce(operator.or_, terms))
