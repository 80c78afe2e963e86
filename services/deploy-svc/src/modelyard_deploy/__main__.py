"""`python -m modelyard_deploy`."""

from modelyard_deploy.main import main

main()
