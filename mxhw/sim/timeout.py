"""The bounded waits of testbenches: :class:`SimTimeout` and the default bound (shared by
:mod:`mxhw.sim` and the compiled back end's C loops)."""

__all__ = ["SimTimeout", "DEFAULT_TIMEOUT"]

#: cycles a testbench waits for its partner by default
DEFAULT_TIMEOUT = 10_000


class SimTimeout(AssertionError):
    """A bounded wait in a testbench ran out: the design under test did not respond."""
