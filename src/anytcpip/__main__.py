"""``python -m anytcpip``: the ``anytcpip`` command."""

import sys

from ._cli import main

sys.exit(main())
