"""``python -m mxhw.bench SUITE``: see :mod:`mxhw.bench`."""

import sys

from . import main

sys.exit(main())
