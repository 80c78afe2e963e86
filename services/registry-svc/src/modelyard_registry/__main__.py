"""`python -m modelyard_registry`."""

from modelyard_registry.main import main

main()
