"""The pipelines of the streamed datapaths, ``pipeline`` register stages between a
``stream`` input ``i`` and output ``o`` (``pipeline=0``: combinational, ``o`` follows ``i``):

* stall-all (:class:`~mxhw.dequant.Aligner`, :class:`~mxhw.dequant.Requantizer`): every
  stage holds while ``o`` waits (one enable reaches every register);
* free-running with a credit-counted output buffer (:class:`~mxhw.pe.MXDotProduct`): the
  stages never hold, the last one is a FIFO deep enough for every item in flight
  (:func:`credit_output`).
"""

from amaranth.hdl import Cat, Mux, Signal, Value
from amaranth.lib.fifo import SyncFIFO

from .params import check_int

__all__ = ["stall_all", "drive_output", "credit_output", "credit_depth"]


def stall_all(m, i, o, pipeline):
    """The stages' enable ``en`` (``o`` is free or taken: ``~o.valid | o.ready``);
    ``i.ready`` is ``en`` (``pipeline=0``: ``o.ready``)."""
    en = Signal()
    m.d.comb += [en.eq(~o.valid | o.ready), i.ready.eq(en if pipeline else o.ready)]
    return en


def drive_output(m, statements, en, pipeline):
    """The output stage: ``statements`` (assignments to ``o``) registered under ``en``, or
    combinational for ``pipeline=0``."""
    if pipeline:
        with m.If(en):
            m.d.sync += statements
    else:
        m.d.comb += statements


def credit_depth(pipeline):
    """Entries of :func:`credit_output`'s buffer: the ``pipeline`` items a stage can hold
    in flight plus one, so that a registered ``i.ready`` still takes one item a cycle."""
    check_int("pipeline", pipeline, 1)
    return pipeline + 1


def credit_output(m, i, o, pipeline, name="obuf"):
    """The output of a free-running pipeline: its stage registers have no enable (they
    advance every cycle, a ``valid`` bit travelling with the data); the last stage is a
    FIFO of :func:`credit_depth` entries (LUT RAM, first word falls through) that holds
    what ``o`` has not taken.

    A credit counter (the items accepted on ``i`` and not yet taken on ``o``) drives
    ``i.ready``, registered: high while the count stays below the buffer's depth, so no
    item is ever offered to a full buffer and ``o.ready`` reaches only the buffer and the
    counter, not the stages. Latency ``pipeline`` cycles from ``i`` to ``o.valid``,
    throughput one item a cycle while ``o.ready`` is high; ``pipeline=0``: combinational
    (``o`` follows, ``i.ready`` is ``o.ready``).

    Returns ``(take, payload, valid)``: ``take`` is the valid bit the caller sends down
    its stages (``i.valid & i.ready``; ``pipeline=0``: ``i.valid``); ``payload`` (of
    ``o.payload``'s shape) and ``valid`` are what it drives combinationally from its last
    level.
    """
    check_int("pipeline", pipeline, 0)
    payload = Signal(o.payload.shape(), name=f"{name}_w_data")
    valid = Signal(name=f"{name}_w_valid")
    if not pipeline:
        m.d.comb += [o.payload.eq(payload), o.valid.eq(valid), i.ready.eq(o.ready)]
        return i.valid, payload, valid
    depth = credit_depth(pipeline)
    fifo = m.submodules[name] = SyncFIFO(width=len(Value.cast(payload)), depth=depth)
    m.d.comb += [fifo.w_data.eq(payload), fifo.w_en.eq(valid),
                 o.payload.eq(fifo.r_data), o.valid.eq(fifo.r_rdy), fifo.r_en.eq(o.ready)]
    # the count as a thermometer code: bit n-1 set while n or more items are counted, so
    # each bit's next value is one LUT of its neighbours, ``taken`` and ``given`` (a binary
    # counter's adder and compare, five LUT levels from the FIFO's level, was the MXFP4
    # dot's critical path)
    credits = Signal(depth, name=f"{name}_count")
    ready = Signal(init=1, name=f"{name}_ready")
    taken, given = i.valid & ready, fifo.r_rdy & o.ready
    up, down = Signal(name=f"{name}_up"), Signal(name=f"{name}_down")
    nxt = Signal.like(credits, name=f"{name}_count_next")
    m.d.comb += [up.eq(taken & ~given), down.eq(given & ~taken), i.ready.eq(ready),
                 nxt.eq(Mux(up, Cat(1, credits[:-1]), Mux(down, credits[1:], credits)))]
    m.d.sync += [credits.eq(nxt), ready.eq(~nxt[-1])]
    return taken, payload, valid
