"""The declarative access policy: one rule per RPC, everything else refused.

A policy maps full method names to rules::

    POLICY = AccessPolicy({
        "/modelyard.v1.JobService/CreateJob": command(),                    # super_admin only
        "/modelyard.v1.JobService/GetJob": read(Role.ORG_ADMIN, Role.AUDITOR, scoped_in_servicer=True),
        "/modelyard.v1.JobService/ListJobs": read(Role.ORG_ADMIN, org_field="org_id"),
        "/modelyard.v1.TrainerService/Heartbeat": command(Role.TRAINER, subject_field="trainer_id"),
        **EVENT_LOG_RULES,
    })

super_admin may call every RPC that has a rule; no role may call an RPC without
one. Roles confined to their own organization (org_admin) or to themselves
(edge, trainer) must say how: `org_field` / `subject_field` name the request
field the interceptor checks (an empty field is filled with the caller's own
value; a subject S also owns S/<member>, so the workers of one Deployment can
share a token), or `scoped_in_servicer=True` says the servicer checks it after loading
the resource (`require_org_access`). A rule that grants such a role without
either is refused when the policy is built, so confinement cannot be forgotten.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from google.protobuf.descriptor import FieldDescriptor, ServiceDescriptor

from modelyard_grpc.auth import ENTERPRISE_PLAN, Principal, Role

PlanLookup = Callable[[str], str | Awaitable[str]]
"""The plan an organization is on (`enterprise`, `professional`), sync or async."""

# Health probes and reflection must work without a token (kubelet, grpcurl, load balancers).
PUBLIC_SERVICES = frozenset(
    {
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    }
)
_ORG_SCOPED = frozenset({Role.ORG_ADMIN})
_SELF_SCOPED = frozenset({Role.EDGE, Role.TRAINER})
_READ_ONLY = frozenset({Role.ORG_ADMIN, Role.AUDITOR})
# When a caller holds several granted roles, the least confined one is tried first.
_PRECEDENCE = (Role.SUPER_ADMIN, Role.AUDITOR, Role.ORG_ADMIN, Role.EDGE, Role.TRAINER)


class Access(StrEnum):
    """Whether an RPC only reads or changes state (read-only roles get reads only)."""

    READ = "read"
    COMMAND = "command"


@dataclass(frozen=True, slots=True)
class Rule:
    """Who may call one RPC, besides super_admin, and how the call is confined."""

    roles: frozenset[Role]
    access: Access
    org_field: str | None = None
    subject_field: str | None = None
    scoped_in_servicer: bool = False

    def __post_init__(self) -> None:
        if self.access is Access.COMMAND and self.roles & _READ_ONLY:
            raise ValueError(f"{sorted(self.roles & _READ_ONLY)} are read-only roles; use read(...)")
        if self.roles & _ORG_SCOPED and not (self.org_field or self.scoped_in_servicer):
            raise ValueError("a rule granting org_admin needs org_field=... or scoped_in_servicer=True")
        if self.roles & _SELF_SCOPED and not (self.subject_field or self.scoped_in_servicer):
            raise ValueError(
                "a rule granting edge or trainer needs subject_field=... or scoped_in_servicer=True"
            )

    @property
    def allowed_roles(self) -> frozenset[Role]:
        """The rule's roles plus super_admin, who may call everything in the policy."""
        return self.roles | {Role.SUPER_ADMIN}


def read(
    *roles: Role,
    org_field: str | None = None,
    subject_field: str | None = None,
    scoped_in_servicer: bool = False,
) -> Rule:
    """A rule for an RPC that changes nothing."""
    return Rule(frozenset(roles), Access.READ, org_field, subject_field, scoped_in_servicer)


def command(*roles: Role, subject_field: str | None = None, scoped_in_servicer: bool = False) -> Rule:
    """A rule for an RPC that changes state (org_admin and auditor are refused at construction)."""
    return Rule(frozenset(roles), Access.COMMAND, None, subject_field, scoped_in_servicer)


EVENT_LOG_RULES: Mapping[str, Rule] = {"/modelyard.v1.EventLog/ReadEvents": read(Role.AUDITOR)}
"""ReadEvents for catch-up and audit: auditors, and services using an auditor token."""


def is_public(method: str) -> bool:
    """True for health and reflection RPCs, which need no token."""
    return method.split("/")[1] in PUBLIC_SERVICES if method.count("/") == 2 else False


class AccessPolicy:
    """An immutable method → rule table; a method without a rule is refused (deny by default)."""

    def __init__(self, rules: Mapping[str, Rule]) -> None:
        for method in rules:
            if method.count("/") != 2 or not method.startswith("/") or "." not in method.split("/")[1]:
                raise ValueError(f"{method!r} is not a full method name like /modelyard.v1.JobService/GetJob")
        self._rules = dict(rules)

    def rule_for(self, method: str) -> Rule | None:
        """The rule of a full method name, or None when the policy does not name it."""
        return self._rules.get(method)

    def coverage_problems(self, services: Iterable[ServiceDescriptor]) -> list[str]:
        """What is wrong between the policy and the services a server serves.

        Lists RPCs without a rule (they would be refused), rules naming no served
        RPC (a typo), and org/subject fields the request type lacks or that are
        not strings. Each service's test should assert this list is empty.
        """
        problems, served = [], set()
        for service in services:
            for rpc in service.methods:
                method = f"/{service.full_name}/{rpc.name}"
                served.add(method)
                rule = self._rules.get(method)
                if rule is None:
                    problems.append(f"{method} has no rule and is refused to everyone")
                    continue
                for field in filter(None, (rule.org_field, rule.subject_field)):
                    descriptor = rpc.input_type.fields_by_name.get(field)
                    if descriptor is None or descriptor.type != FieldDescriptor.TYPE_STRING:
                        problems.append(f"{method}: {rpc.input_type.name}.{field} is not a string field")
        problems += [f"{m} has a rule but is not served" for m in sorted(self._rules.keys() - served)]
        return problems


def roles_refusal(method: str, rule: Rule | None, principal: Principal) -> str | None:
    """Why `principal`'s roles may not call `method` at all, or None when some role may."""
    if rule is None:
        return f"{method} is not in the access policy, so it is refused (deny by default)"
    if principal.roles & rule.allowed_roles:
        return None
    allowed = ", ".join(sorted(rule.allowed_roles))
    held = ", ".join(sorted(principal.roles)) or "none"
    return f"{method} may be called by {allowed}; the token's roles are: {held}"


async def scope_refusal(
    rule: Rule, principal: Principal, request: Any, plan_of: PlanLookup | None
) -> str | None:
    """Why the call is outside the caller's organization, plan or self, or None when it is allowed.

    Tries each granted role, least confined first; the call is allowed when any
    passes. May fill an empty org/subject field of `request` with the caller's own.
    """
    refusals = []
    for role in (r for r in _PRECEDENCE if r in principal.roles & rule.allowed_roles):
        refusal = await _role_refusal(role, rule, principal, request, plan_of)
        if refusal is None:
            return None
        refusals.append(refusal)
    return refusals[0] if refusals else "no role of the token is allowed"


async def _role_refusal(
    role: Role, rule: Rule, principal: Principal, request: Any, plan_of: PlanLookup | None
) -> str | None:
    if role in _ORG_SCOPED:
        if principal.org_id is None:
            return f"an {role} token must name its organization"
        plan_refusal = await _plan_refusal(principal.org_id, plan_of)
        return plan_refusal or _confine(request, rule.org_field, principal.org_id)
    if role in _SELF_SCOPED:
        return _confine(request, rule.subject_field, principal.subject, pool=True)
    return None


async def _plan_refusal(org_id: str, plan_of: PlanLookup | None) -> str | None:
    if plan_of is None:
        return "org_admin access needs a plan check, and this service has none configured"
    plan = plan_of(org_id)
    plan_name = await plan if inspect.isawaitable(plan) else plan
    if str(plan_name).lower() != ENTERPRISE_PLAN:
        return f"org_admin access needs the Enterprise plan; organization {org_id} is on {plan_name}"
    return None


def _confine(request: Any, field: str | None, own: str, *, pool: bool = False) -> str | None:
    """`pool`: a subject S also owns S/<member> (the workers of one Deployment share one token)."""
    if field is None:  # scoped_in_servicer: the servicer checks after loading the resource
        return None
    value = getattr(request, field)  # a missing field is a policy bug: coverage_problems finds it
    if value == "":
        setattr(request, field, own)
        return None
    if value == own or (pool and value.startswith(f"{own}/") and len(value) > len(own) + 1):
        return None
    return f"{field}={value!r} is not the caller's own ({own!r}, or {own}/<member> for a pool)"
