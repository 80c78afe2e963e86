"""`python -m tools.k8s_check [BASE ...]`: render each kustomize base, check it; exit 1 on any problem.

Prints one line per resource, and one line per problem: file, kind/name, JSON path, what is wrong.
A base's components (deploy/k8s/edge) are rendered onto it too; of that rendering only the
resources the component adds or changes are checked again.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tools.k8s_check.check import check
from tools.k8s_check.crds import CRDS, CrdSchemas
from tools.k8s_check.render import RenderError, components_of, render
from tools.k8s_check.resources import Resource


def renderings(base: Path) -> list[tuple[str, list[Resource]]]:
    """(label, resources to check): the base, then what each component adds to it or changes."""
    plain = render(base)
    found = [(str(base), plain)]
    for component in components_of(base):
        changed = [r for r in render(base, [component]) if r.doc not in [p.doc for p in plain]]
        found.append((f"{base} + {component.name}", changed))
    return found


def check_base(base: Path, crds: CrdSchemas) -> tuple[int, int]:
    """Check and print every resource of the base's renderings; (resources, problems)."""
    checked = problems = 0
    for label, resources in renderings(base):
        print(f"# {label}")
        for resource in resources:
            checks, found = check(resource, crds)
            checked, problems = checked + 1, problems + len(found)
            print(
                f"{'ok  ' if not found else 'FAIL'}  {resource.origin}  {resource.ref}  ({', '.join(checks)})"
            )
            for problem in found:
                print(f"      {resource.origin}: {resource.ref}: {problem.path}: {problem.message}")
    return checked, problems


def main(argv: list[str] | None = None) -> int:
    """Check the bases named in argv (default deploy/k8s); 0 when nothing is wrong, else 1."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("bases", nargs="*", type=Path, default=[Path("deploy/k8s")])
    parser.add_argument("--crds", type=Path, default=CRDS, help="vendored CRD schemas (default: %(default)s)")
    args = parser.parse_args(argv)
    crds = CrdSchemas(args.crds)
    checked = problems = 0
    for base in args.bases:
        try:
            counts = check_base(base, crds)
        except RenderError as error:
            print(f"FAIL  {base}: kustomize: {error}")
            counts = (0, 1)
        checked, problems = checked + counts[0], problems + counts[1]
    print(f"k8s-check: {checked} resources checked, {problems} problem{'s' * (problems != 1)}")
    return 1 if problems else 0
