"""Drift: a server that does not run what its deployments intend (the fleet view shows why)."""

from __future__ import annotations

from collections.abc import Mapping


def drift_reasons(running: Mapping[str, str], intended: Mapping[str, str]) -> list[str]:
    """One sentence per module (sorted) whose running version differs from the intended one.

    `intended` maps module → the version the latest completed deployment installed; a module the
    server runs that no deployment intends is not drift (it was installed by hand, or before us).
    """
    reasons = []
    for module in sorted(intended):
        wanted, actual = intended[module], running.get(module)
        if actual is None:
            reasons.append(f"{module}: runs nothing, intended {wanted}")
        elif actual != wanted:
            reasons.append(f"{module}: runs {actual}, intended {wanted}")
    return reasons
