"""``python -m mxhw.bench.ppa`` (the same as ``python -m mxhw.bench ppa``)."""

import sys

from . import main

sys.exit(main())
