"""``python -m letta_otel``."""

import sys

from letta_otel.cli import main

sys.exit(main())
