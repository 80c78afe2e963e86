"""dataset-svc domain."""
