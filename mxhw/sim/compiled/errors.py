"""The compiled back end's error."""

__all__ = ["CompiledSimError"]


class CompiledSimError(Exception):
    """The compiled back end cannot simulate this design or this request."""
