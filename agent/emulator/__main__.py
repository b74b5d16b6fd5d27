"""``python -m agent.emulator --port 8765 --scenario FILE``."""

import sys

from agent.emulator.cli import main

sys.exit(main())
