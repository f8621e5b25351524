"""What the dequantisation blocks share about their block formats: the block size (with
the deprecated ``k`` parameter that repeated it) and the E8M0 scale."""

import warnings

from .. import golden
from ..lib.params import check_int

__all__ = ["E8M0", "block_size"]

#: The OCP MX scale format: the only one the aligner and the re-quantiser take.
E8M0 = golden.formats.get("e8m0")


def block_size(fmt, k):
    """The block size of the block format ``fmt`` (1-D blocks); ``k``, a deprecated
    parameter, must be ``None`` or equal to it (``DeprecationWarning``)."""
    if isinstance(fmt.block, tuple) or fmt.block is None:
        raise ValueError(f"fmt must have 1-D blocks, not {fmt.name!r} (block {fmt.block!r})")
    if k is not None:
        warnings.warn("k is deprecated: the block format's block size is the block size",
                      DeprecationWarning, stacklevel=3)
        check_int("k", k, 1)
        if k != fmt.block:
            raise ValueError(f"k must be the block size of {fmt.name} ({fmt.block}), not "
                             f"{k}; pass a block format of {k} elements instead")
    return fmt.block
