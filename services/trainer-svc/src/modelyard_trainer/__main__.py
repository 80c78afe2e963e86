"""`python -m modelyard_trainer serve|work`."""

import sys

from modelyard_trainer.main import main

sys.exit(main())
