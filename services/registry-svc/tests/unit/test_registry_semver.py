"""Numbering rule: first 1.0.0; major for other classes or input; minor for other data; patch else."""

from __future__ import annotations

import pytest
from registry_builders import MODULE, ORG, apply_all, config, registered, registration

from modelyard_events.domain_errors import IllegalTransition, InvalidArgument
from modelyard_registry.domain.module import ModelModule
from modelyard_registry.domain.semver import SemVer


def _register(module: ModelModule, job: str, **changes: object) -> tuple[ModelModule, str]:
    events = module.register(registration(job, **changes))
    module = apply_all(module, events)
    return module, module.get(f"v-{job}").semantic_version.__str__()


def test_the_rule_numbers_each_new_version_from_the_highest_one() -> None:
    module = ModelModule(ORG, MODULE)
    module, first = _register(module, "j1")
    module, patch = _register(module, "j2")
    module, minor = _register(module, "j3", dataset_uri="dataset://acme/ds-1/versions/2")
    module, major_classes = _register(
        module, "j4", dataset_uri="dataset://acme/ds-1/versions/2", config=config(["a", "b"])
    )
    module, major_input = _register(
        module, "j5", dataset_uri="dataset://acme/ds-1/versions/2", config=config(["a", "b"], schema="b" * 64)
    )
    assert [first, patch, minor, major_classes, major_input] == ["1.0.0", "1.0.1", "1.1.0", "2.0.0", "3.0.0"]
    assert module.get("v-j4").registered.bump_reason.startswith("the classes differ")


def test_a_job_registers_once_however_often_its_completion_arrives() -> None:
    module = registered("j1")
    assert module.register(registration("j1")) == []
    assert len(module.versions) == 1


def test_numbers_are_never_reused_after_a_renumber_or_a_deprecation() -> None:
    module = registered("j1", "j2")
    module = apply_all(module, module.renumber("v-j2", "4.0.0", "a new product line"))
    module, next_number = _register(module, "j3")
    assert next_number == "4.0.1"
    with pytest.raises(InvalidArgument, match=r"not above 4\.0\.1"):
        module.renumber("v-j3", "4.0.1", "again")


@pytest.mark.parametrize("text", ["1.0", "v1.0.0", "1.0.0-rc1", "01.0.0", "", "a.b.c"])
def test_a_malformed_semantic_version_is_refused_with_the_expected_form(text: str) -> None:
    with pytest.raises(InvalidArgument, match=r"MAJOR\.MINOR\.PATCH"):
        SemVer.parse(text)


def test_renumber_needs_a_draft_and_a_reason() -> None:
    module = registered("j1")
    with pytest.raises(InvalidArgument, match="reason"):
        module.renumber("v-j1", "2.0.0", " ")
    module = apply_all(module, module.request_evaluation("v-j1", "e", "ej", "dataset://x", "val", "bob"))
    with pytest.raises(IllegalTransition, match="it is testing"):
        module.renumber("v-j1", "2.0.0", "why")


def test_an_explicit_number_leaves_room_for_every_later_bump() -> None:
    module = registered("j1")
    with pytest.raises(InvalidArgument, match="at most 99,999,999"):
        module.renumber("v-j1", "1.0.999999999", "too far")
