"""`python -m ws_emulator` runs the `ws-emulator` command."""

import sys

from ws_emulator.cli import main

sys.exit(main())
