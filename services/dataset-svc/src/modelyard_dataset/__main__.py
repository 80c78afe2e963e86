"""`python -m modelyard_dataset`."""

from modelyard_dataset.main import main

main()
