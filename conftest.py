"""Fixtures shared by every test folder."""

pytest_plugins = ["modelyard_devstack.pytest_plugin"]
