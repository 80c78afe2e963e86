"""dataset-svc projections."""
