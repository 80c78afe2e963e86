"""Modelyard trainer-svc: stateless workers that run training dispatches with PyTorch."""
