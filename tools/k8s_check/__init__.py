"""`make k8s-check`: render deploy/k8s with kustomize and check every resource offline.

Built-in kinds are validated by kubernetes-validate (strict: unknown fields fail), Strimzi and
CloudNativePG resources by jsonschema against their operators' CRD schemas vendored in `crds/`, and
workloads against the project's own rules (`workloads.py`). Issue 16, item 6.
"""
