"""`python -m modelyard_devstack up|down|status`."""

import sys

from modelyard_devstack.cli import main

sys.exit(main())
