"""registry-svc's read model: which module each version is in, listable by organization and status."""
