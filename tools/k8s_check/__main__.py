"""`python -m tools.k8s_check [BASE ...]` (`make k8s-check`): see cli.py."""

import sys

from tools.k8s_check.cli import main

sys.exit(main())
