"""`python -m modelyard_job`."""

from modelyard_job.main import main

main()
