"""Test support shipped with the library: contract tests every store adapter must pass."""
