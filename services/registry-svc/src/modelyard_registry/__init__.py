"""registry-svc: completed training jobs become signed, released model versions (docs/registry.md)."""
