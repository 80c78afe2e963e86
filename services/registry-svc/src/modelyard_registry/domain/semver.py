"""Semantic versions of a module's models, and the rule that numbers a new version (docs/registry.md).

Rule, against the module's highest version so far: the first version is 1.0.0; **major** when the
classes or the input schema (family, input shape, feature names) differ from that version's;
**minor** when the dataset version differs; **patch** for the same data and schema (other
hyperparameters, another attempt). Numbers only grow, so a number is never reused, even one whose
version was rejected or deprecated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from modelyard_events.domain_errors import InvalidArgument

Bump = Literal["major", "minor", "patch"]
_SEMVER = re.compile(r"(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})")


@dataclass(frozen=True, order=True)
class SemVer:
    """MAJOR.MINOR.PATCH (no pre-release or build parts: a registered model is a release candidate)."""

    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str, field: str = "semantic_version") -> SemVer:
        """The version in `text`; InvalidArgument saying the expected form otherwise."""
        match = _SEMVER.fullmatch(text.strip())
        if match is None:
            raise InvalidArgument(
                field, f"{text[:40]!r} is not a semantic version; write MAJOR.MINOR.PATCH, e.g. 2.1.0"
            )
        return cls(int(match[1]), int(match[2]), int(match[3]))

    def bumped(self, part: Bump) -> SemVer:
        """The next version after this one for a `part` change."""
        if part == "major":
            return SemVer(self.major + 1, 0, 0)
        if part == "minor":
            return SemVer(self.major, self.minor + 1, 0)
        return SemVer(self.major, self.minor, self.patch + 1)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


FIRST = SemVer(1, 0, 0)


@dataclass(frozen=True)
class Lineage:
    """What the numbering rule compares between a new version and the module's highest one."""

    input_schema_sha256: str  # family, input shape and feature names
    class_names: tuple[str, ...] | None
    dataset_uri: str


def next_version(highest: tuple[SemVer, Lineage] | None, new: Lineage) -> tuple[SemVer, Bump | None, str]:
    """(number, bump, why) for a version with `new` lineage after the module's `highest` one."""
    if highest is None:
        return FIRST, None, "first version of the module"
    number, old = highest
    if old.class_names != new.class_names:
        return number.bumped("major"), "major", "the classes differ from " + str(number)
    if old.input_schema_sha256 != new.input_schema_sha256:
        return number.bumped("major"), "major", "the input schema differs from " + str(number)
    if old.dataset_uri != new.dataset_uri:
        return number.bumped("minor"), "minor", "trained on another dataset version than " + str(number)
    return number.bumped("patch"), "patch", "same data and schema as " + str(number)
