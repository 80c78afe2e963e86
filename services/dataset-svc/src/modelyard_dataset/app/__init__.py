"""dataset-svc app."""
