"""The stall-all pipeline of the streamed datapaths (:class:`~mxhw.pe.MXDotProduct`,
:class:`~mxhw.dequant.Aligner`, :class:`~mxhw.dequant.Requantizer`): ``pipeline`` register
stages between a ``stream`` input ``i`` and output ``o`` that all hold while ``o`` waits;
``pipeline=0`` is combinational (``o`` follows ``i``)."""

from amaranth.hdl import Signal

__all__ = ["stall_all", "drive_output"]


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
