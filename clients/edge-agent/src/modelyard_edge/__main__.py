"""`python -m modelyard_edge --server-id …`: the edge agent."""

import sys

from modelyard_edge.cli import main

sys.exit(main(prog="python -m modelyard_edge"))
