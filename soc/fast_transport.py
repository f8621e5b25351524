"""The simulated SoC with its host link's bytes moved in bulk through C.

:class:`FastSimTransport` is :class:`~mxhw.soc.transport.SimTransport` on the compiled back
end (``link="bytes"``) with each ``read`` one call of
:meth:`mxhw.sim.compiled.Model.exchange`: every queued request byte goes in and the
response bytes are collected in C, one byte each way per cycle at most, until the bytes
asked for are held and the link has been quiet for :attr:`FastSimTransport.LINGER`
cycles (so the rest of a response comes in the same call). It moves bytes, not packets:
nothing here depends on the link protocol's format.
"""

from __future__ import annotations

from .top import SoCConfig
from .transport import SimTransport

__all__ = ["FastSimTransport"]


class FastSimTransport(SimTransport):
    """:class:`~mxhw.soc.transport.SimTransport` (compiled back end, byte link) with the
    link's byte traffic moved in bulk through C.

    Parameters
    ----------
    config : SoCConfig or None
        The SoC (``None``: ``SoCConfig()``).

    Raises
    ------
    TypeError
        ``config`` is not a :class:`~mxhw.soc.top.SoCConfig`.
    """

    #: quiet cycles after which a read stops collecting bytes
    LINGER = 4

    def __init__(self, config=None):
        if config is not None and not isinstance(config, SoCConfig):
            raise TypeError(f"config must be a SoCConfig or None, not {config!r}")
        super().__init__(config, backend="compiled", link="bytes")

    def _step_compiled(self, max_cycles, n):
        """Push every queued request byte and collect response bytes until ``n`` are held
        and the link is quiet, or ``max_cycles`` cycles ran (one foreign call)."""
        dut = self._dut
        got, cycles, sent = self._model.exchange(
            dut.rx, dut.tx, bytes(self._out), want=max(0, n - len(self._in)),
            max_cycles=max(1, max_cycles), linger=self.LINGER)
        del self._out[:sent]
        self._in += got
        self.cycles += cycles
