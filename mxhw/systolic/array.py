"""The systolic array front: :class:`SystolicArray` validates its parameters, gives the
stream layouts and latency, and builds one of the two dataflows
(:class:`~mxhw.systolic.os.OutputStationaryCore`,
:class:`~mxhw.systolic.ws.WeightStationaryCore`). The design is explained in
``docs/systolic.md``."""

from __future__ import annotations

import functools
import operator

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..lib.params import check_bool, check_choice, check_int
from .bitserial import BitSerialMXMacPE
from .blockscale import check_block_scaled
from .grid import (array_formats, check_acc, check_pe_pipeline, check_serial_format,
                   out_layout)
from .os import (OutputStationaryCore, is_bitparallel, is_bitserial, os_in_layout,
                 why_not_shared)
from .pe import MXMacPE
from .ws import WeightStationaryCore, ws_in_layout, ws_latency

__all__ = ["SystolicArray", "DATAFLOWS", "DEFAULT_PIPELINE", "PE_TYPES"]

DATAFLOWS = ("output_stationary", "weight_stationary")

#: Register stages of the default PE (see :class:`MXMacPE`).
DEFAULT_PIPELINE = 4

#: PE types the output-stationary array builds by name (``pe=...``): the bit-parallel
#: :class:`MXMacPE` (also ``pe=None``) and the bit-serial :class:`BitSerialMXMacPE`.
PE_TYPES = ("bitparallel", "bitserial")


class SystolicArray(wiring.Component):
    """A ``rows x cols`` array of MX multiply-accumulate PEs computing ``C = A @ B``
    (``docs/systolic.md`` explains both dataflows, the row-shared accumulators, the
    bit-serial PEs and the output buffer).

    Parameters
    ----------
    rows, cols : int
        Array shape, >= 1.
    fmt_a, fmt_b : str or BlockFormat
        Operand block formats, named as golden names them (aliases included):
        power-of-two scales, 1-D blocks, equal block size ``k``
        (:func:`~mxhw.systolic.grid.array_block_format`); MXSF in both dataflows; 2-D
        tiles (``mxsf_tile``) as 1-D blocks of golden's K block
        (:func:`~mxhw.systolic.tile.k_block_formats`; fed by
        :func:`~mxhw.systolic.tile.k_blocks`).
    dataflow : "output_stationary" (default) or "weight_stationary"
    acc : golden.arith.Accumulation
        ``golden.arith.fixed(...)`` or ``golden.arith.FP32`` (not with the bit-serial PE).
    pe : str, callable or None
        Output-stationary only: ``"bitparallel"`` / None (:class:`MXMacPE`),
        ``"bitserial"`` (:class:`BitSerialMXMacPE`, also the class or a
        ``functools.partial`` of it), or a factory ``pe(fmt_a, fmt_b, acc)`` with
        :class:`MXMacPE`'s signature (its ``latency`` attribute, 1 if absent).
    pipeline : int
        Register stages, 0..4 (0: combinational); default :data:`DEFAULT_PIPELINE`.
    depth : int or None
        Weight-stationary only: activation rows per pass; default ``rows``.
    shared_acc : bool or None
        Output-stationary: one :class:`~mxhw.systolic.rowacc.RowAccumulator` per row
        instead of one accumulator per PE. None: wherever it applies (bit-parallel PE,
        ``fixed``, ``cols <= k``); True: required; False: per PE.

    Members
    -------
    i : In(stream.Signature(:attr:`in_layout`))
        Output-stationary: one K step per transfer (A column, B row, scales, modes,
        ``last``). Weight-stationary: an activation row and/or a weight row with the pass
        flags (schedule: :func:`mxhw.systolic.driver.ws_beats`).
    o : Out(stream.Signature(:attr:`out_layout`))
        Result rows, ``data * 2**-frac_bits`` (``fp32``: float32 bits) and ``special``
        (NaN); ``rows`` per tile (weight-stationary: ``depth``).

    Latency :attr:`latency` cycles from a tile's last transfer (weight-stationary: a
    last-pass activation) to its first result row; throughput one transfer per cycle
    (bit-serial: per :attr:`step_cycles`), ``rows * cols`` MACs, while ``o`` is ready.
    Golden twin: :func:`mxhw.golden.arith.gemm` with the same ``acc``.

    Raises
    ------
    TypeError, ValueError
        A bad parameter, or parameters that do not go together (see ``docs/systolic.md``).
    """

    def __init__(self, rows, cols, fmt_a, fmt_b, dataflow="output_stationary",
                 acc=None, pe=None, pipeline=DEFAULT_PIPELINE, depth=None,
                 shared_acc=None):
        check_int("rows", rows, 1)
        check_int("cols", cols, 1)
        fmt_a, fmt_b = array_formats(fmt_a, fmt_b)
        check_choice("dataflow", dataflow, DATAFLOWS)
        check_acc(acc)
        check_pe_pipeline(pipeline)
        if dataflow == "weight_stationary":
            if pe is not None:
                raise ValueError("pe factories apply to the output-stationary dataflow; the "
                                 "weight-stationary array has its own PE")
            if depth is None:
                depth = rows
            check_int("depth", depth, 1)
        elif depth is not None:
            raise ValueError(f"depth applies to the weight-stationary dataflow only, not "
                             f"{dataflow!r}")
        if isinstance(pe, str):
            if pe not in PE_TYPES:
                raise ValueError(f"pe must be one of {', '.join(PE_TYPES)} or a PE factory, "
                                 f"not {pe!r}")
            pe = None if pe == "bitparallel" else functools.partial(BitSerialMXMacPE,
                                                                     pipeline=pipeline)
        if pe is None:
            pe = functools.partial(MXMacPE, pipeline=pipeline)
        if not callable(pe):
            raise TypeError(f"pe must be a PE factory pe(fmt_a, fmt_b, acc), not {pe!r}")
        self._serial = None                 # bits per K step of a bit-serial PE
        if is_bitserial(pe):
            if acc.mode != "fixed":
                raise ValueError(f"the bit-serial PE implements fixed-point accumulation "
                                 f"only, not {acc.mode!r}")
            self._serial = check_serial_format(fmt_b)
        if shared_acc is not None:
            try:
                check_bool("shared_acc", shared_acc)
            except TypeError:
                raise TypeError(f"shared_acc must be None, True or False, not "
                                f"{shared_acc!r}") from None
        check_block_scaled(fmt_a, fmt_b, acc)
        why_not = self._why_not_shared(dataflow, acc, pe, cols, fmt_a.block_size,
                                       (fmt_a, fmt_b))
        if shared_acc and why_not:
            raise ValueError(f"shared_acc=True needs {why_not}")
        self._shared = not why_not if shared_acc is None else shared_acc
        self._rows, self._cols = rows, cols
        self._fmt_a, self._fmt_b, self._acc, self._pe = fmt_a, fmt_b, acc, pe
        self._dataflow = dataflow
        self._pipeline = pipeline
        self._depth = depth
        self._k = fmt_a.block_size
        super().__init__({
            "i": In(stream.Signature(self.in_layout)),
            "o": Out(stream.Signature(self.out_layout)),
        })

    @staticmethod
    def _why_not_shared(dataflow, acc, pe, cols, k, fmts=()):
        """Why the row-shared accumulators cannot apply (a phrase for ``shared_acc=True``'s
        error), or None."""
        if dataflow != "output_stationary":
            return f"the output-stationary dataflow, not {dataflow!r}"
        return why_not_shared(acc, pe, cols, k, fmts)

    # the parameters, read-only
    rows, cols, fmt_a, fmt_b, acc, dataflow, pipeline = (
        property(operator.attrgetter(f"_{n}"))
        for n in ("rows", "cols", "fmt_a", "fmt_b", "acc", "dataflow", "pipeline"))
    k = property(lambda self: self._k, doc="Block size along K.")
    depth = property(lambda self: self._depth,
                     doc="Activation rows per pass (weight-stationary), else None.")
    shared_acc = property(lambda self: self._shared,
                          doc="The PEs of a row share one block-to-accumulator datapath "
                              "(:class:`~mxhw.systolic.rowacc.RowAccumulator`).")

    @property
    def pe_type(self):
        """``"bitserial"`` (:class:`BitSerialMXMacPE`), ``"bitparallel"`` (the default
        :class:`MXMacPE`), or ``"custom"`` (another factory)."""
        if self._serial is not None:
            return "bitserial"
        if is_bitparallel(self._pe):
            return "bitparallel"
        return "custom"

    @property
    def step_cycles(self):
        """Cycles per K step (input transfer): 1, or the bit-serial PE's weight bits
        (:func:`~mxhw.systolic.bitserial.serial_bits` of ``fmt_b``)."""
        return self._serial or 1

    @property
    def in_layout(self):
        """The input transfer's layout (:func:`~mxhw.systolic.os.os_in_layout` or
        :func:`~mxhw.systolic.ws.ws_in_layout`)."""
        layout = ws_in_layout if self._dataflow == "weight_stationary" else os_in_layout
        return layout(self._fmt_a, self._fmt_b, self._rows, self._cols)

    @property
    def out_layout(self):
        """An output row's layout (:func:`~mxhw.systolic.grid.out_layout`)."""
        return out_layout(self._acc, self._cols)

    @property
    def latency(self):
        """Cycles from a tile's last input transfer to its first output row being valid
        (weight-stationary: from a last-pass activation transfer to its row);
        output-stationary ``rows + cols + pe_latency + step_cycles`` (the output stage
        included)."""
        if self._dataflow == "weight_stationary":
            return ws_latency(self._rows, self._cols, self._pipeline)
        return self._rows + self._cols + self.pe_latency + self.step_cycles

    @property
    def pe_latency(self):
        """Cycles from a PE's last element (bit-serial: the final bit of its last step)
        to its result: ``1 + pipeline`` of :class:`MXMacPE` and
        :class:`BitSerialMXMacPE`; of an :class:`~mxhw.systolic.pe.MXBlockSumPE` with its
        row's :class:`~mxhw.systolic.rowacc.RowAccumulator`, that plus
        :func:`~mxhw.systolic.rowacc.row_extra_stages` (3 from ``pipeline`` 2 up, else 1)
        and at ``pipeline`` 4 one more unless the element pair multiplies as a table (FP4 x
        FP4; :attr:`MXBlockSumPE.split_product
        <mxhw.systolic.pe.MXBlockSumPE.split_product>`); else the ``latency`` attribute of a PE from the factory (1 if it has none)
        (:attr:`OutputStationaryCore.pe_latency`). Weight-stationary: ``1 + pipeline``."""
        if self._dataflow == "weight_stationary":
            return 1 + self._pipeline
        return self._os_core().pe_latency

    def _os_core(self):
        return OutputStationaryCore(self._rows, self._cols, self._fmt_a, self._fmt_b,
                                    self._acc, self._pe, self._shared)

    def elaborate(self, platform):
        m = Module()
        if self._dataflow == "weight_stationary":
            core = WeightStationaryCore(self._rows, self._cols, self._fmt_a, self._fmt_b,
                                        self._acc, self._pipeline, self._depth)
        else:
            core = self._os_core()
        m.submodules.core = core
        wiring.connect(m, wiring.flipped(self.i), core.i)
        wiring.connect(m, core.o, wiring.flipped(self.o))
        return m
