"""Vendor the openAPIV3Schema of CustomResourceDefinitions into crds/ (how to refresh: crds/README.md).

    python -m tools.k8s_check.vendor_crds \
        --source strimzi/strimzi-kafka-operator@0.47.0:packaging/install/cluster-operator \
        040-Crd-kafka.yaml ...

Writes one JSON file per served version, `crds/<group>/<kind>-<version>.json`, holding the apiVersion,
the kind, where it came from and the schema. Descriptions are dropped: they are most of the bytes,
validation never reads them, and the upstream file is one `git show` away.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

CRDS = Path(__file__).resolve().parent / "crds"

# Keys whose value maps names (of fields) to schemas: a field may be called "description".
SCHEMA_MAPS = ("properties", "patternProperties")


def without_descriptions(schema: Any) -> Any:
    """The schema with every `description` annotation removed, fields named "description" kept."""
    if isinstance(schema, list):
        return [without_descriptions(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    return {
        key: {name: without_descriptions(sub) for name, sub in value.items()}
        if key in SCHEMA_MAPS
        else without_descriptions(value)
        for key, value in schema.items()
        if not (key == "description" and isinstance(value, str))
    }


def served_schemas(crd: dict[str, Any], source: str) -> Iterator[tuple[Path, dict[str, Any]]]:
    """(relative path, vendored document) for each served version of one CRD."""
    group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
    for version in crd["spec"]["versions"]:
        if version.get("served", False):
            yield (
                Path(group) / f"{kind}-{version['name']}.json",
                {
                    "apiVersion": f"{group}/{version['name']}",
                    "kind": kind,
                    "source": source,
                    "openAPIV3Schema": without_descriptions(version["schema"]["openAPIV3Schema"]),
                },
            )


def vendor(crd_file: Path, source: str, into: Path = CRDS) -> list[Path]:
    """Write the schemas of every CRD in `crd_file`; returns the files written."""
    written = []
    for doc in yaml.safe_load_all(crd_file.read_text()):
        if doc and doc.get("kind") == "CustomResourceDefinition":
            for relative, vendored in served_schemas(doc, f"{source}/{crd_file.name}"):
                target = into / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(json.dumps(vendored, indent=1) + "\n")
                written.append(target)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--source", required=True, help="owner/repo@tag:folder the files come from (recorded)"
    )
    parser.add_argument("crd_files", nargs="+", type=Path)
    args = parser.parse_args()
    for crd_file in args.crd_files:
        for path in vendor(crd_file, args.source):
            print(path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path)


if __name__ == "__main__":
    main()
