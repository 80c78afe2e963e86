"""Modelyard dataset-svc."""
