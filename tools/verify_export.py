#!/usr/bin/env python3
"""Check a `yard audit export` file offline: python tools/verify_export.py EXPORT.jsonl --keys KEYS.json

Needs only Python's standard library and `cryptography` (pip install cryptography): it shares no code
with Modelyard on purpose, so an auditor can read all of it. The procedure is docs/audit.md's:

1. Line 1 is the header: {"kind": "header", "format": "modelyard-audit-export", "version": 1, ...}.
2. Every other line is an event ({"kind": "event", "selected": bool, "event": {...}}) or a signed
   head ({"kind": "head", "position", "hash", "key_id", "signature"}) right after the event it signs.
3. Events have consecutive positions from the header's first_position; each one's prev_hash is the
   previous event's hash (the first one's prev_hash, the anchor, is taken as given: the signed head
   vouches for it, since every hash covers the previous one).
4. Each event's hash is recomputed: sha256 of the UTF-8 bytes of prev_hash followed by the canonical
   JSON of the envelope (every field but `hash`, keys sorted, no whitespace, non-ASCII unescaped,
   `data` being the stored `data_json` text itself), as lowercase hex.
5. Each head names the hash of the event before it, and its Ed25519 signature over
   b"modelyard.v1.signed-head\\n" + f"{position}\\n{hash}" verifies under a pinned public key whose
   key id (the first 16 hex digits of the SHA-256 of the raw 32-byte key) is the head's key_id.
6. The last event is covered by a signed head, and the header's last_position is that event.

Exit 0 and "verified" when all of it holds; else exit 1 naming the first bad line.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import sys
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

FORMAT = "modelyard-audit-export"
VERSION = 1
SIGNED_HEAD_DOMAIN = b"modelyard.v1.signed-head\n"
ENVELOPE_FIELDS = (
    "actor",
    "causation_id",
    "correlation_id",
    "data_json",
    "event_id",
    "hash",
    "occurred_at",
    "org_id",
    "position",
    "prev_hash",
    "schema_version",
    "stream_id",
    "stream_type",
    "stream_version",
    "type",
)


class Bad(Exception):
    """The export does not verify; the message says why."""


def canonical(value: Any) -> str:
    """Canonical JSON: keys sorted, no whitespace, non-ASCII as is, no NaN or infinities."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def event_hash(event: dict[str, Any]) -> str:
    """sha256(prev_hash ‖ canonical JSON of the envelope without `hash`, with `data` = data_json verbatim)."""
    members = []
    for key in sorted(ENVELOPE_FIELDS):
        if key == "hash":
            continue
        if key == "data_json":  # the payload's stored text, spliced in byte for byte under the key "data"
            members.append(("data", event["data_json"]))
        else:
            members.append((key, canonical(event[key])))
    members.sort()
    text = "{" + ",".join(f"{canonical(key)}:{value}" for key, value in members) + "}"
    return hashlib.sha256((event["prev_hash"] + text).encode("utf-8")).hexdigest()


def key_id(raw: bytes) -> str:
    """A key's id: the first 16 hex digits of the SHA-256 of its raw 32 bytes."""
    return hashlib.sha256(raw).hexdigest()[:16]


def b64url(text: str) -> bytes:
    """base64url without padding, as keys and signatures are written."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load_keys(path: str, source: str) -> dict[str, Ed25519PublicKey]:
    """Pinned keys by id from a JSON file: {"<source>": ["<key>", ...]} (the platform's
    MODELYARD_EVENT_PUBLIC_KEYS) or just ["<key>", ...]."""
    with open(path, encoding="utf-8") as file:
        parsed = json.load(file)
    if isinstance(parsed, dict):
        if source not in parsed:
            raise Bad(
                f"{path} pins no key for source {source!r} (it has: {', '.join(sorted(parsed)) or 'none'})"
            )
        parsed = parsed[source]
    if not isinstance(parsed, list) or not parsed or not all(isinstance(k, str) for k in parsed):
        raise Bad(f'{path} must be JSON {{"<source>": ["<base64url key>", ...]}} or a list of keys')
    keys = {}
    for text in parsed:
        try:
            raw = b64url(text.strip())
            key = Ed25519PublicKey.from_public_bytes(raw)
        except (binascii.Error, ValueError) as error:
            raise Bad(f"{path}: {text!r} is not a base64url raw Ed25519 public key: {error}") from error
        keys[key_id(raw)] = key
    return keys


def check_head(head: dict[str, Any], event: dict[str, Any] | None, keys: dict[str, Ed25519PublicKey]) -> None:
    """A head must sign the event just before it, with a pinned key."""
    for name, kind in (("position", int), ("hash", str), ("key_id", str), ("signature", str)):
        if not isinstance(head.get(name), kind):
            raise Bad(f"a head needs {name} ({kind.__name__})")
    if event is None or head["position"] != event["position"]:
        where = event["position"] if event else "no event"
        raise Bad(f"a head for position {head['position']} must follow its event (the last event is {where})")
    if head["hash"] != event["hash"]:
        raise Bad(f"the head at position {head['position']} signs another hash than the event's")
    key = keys.get(head["key_id"])
    if key is None:
        raise Bad(
            f"the head at position {head['position']} is signed by key {head['key_id']!r}, "
            "which is not pinned"
        )
    try:
        signature = b64url(head["signature"])
        key.verify(signature, SIGNED_HEAD_DOMAIN + f"{head['position']}\n{head['hash']}".encode())
    except (InvalidSignature, binascii.Error, ValueError) as error:
        raise Bad(f"the signature of the head at position {head['position']} does not verify") from error


def check_event(event: Any, previous: dict[str, Any] | None, first_position: int) -> dict[str, Any]:
    """An event must have every field, follow the previous one, and hash to its hash."""
    if not isinstance(event, dict) or set(event) != set(ENVELOPE_FIELDS):
        raise Bad(f"an event needs exactly the fields {', '.join(ENVELOPE_FIELDS)}")
    for name in ("position", "stream_version", "schema_version"):
        if not isinstance(event[name], int) or isinstance(event[name], bool):
            raise Bad(f"{name} must be an integer")
    for name in ("prev_hash", "hash", "data_json", "occurred_at", "event_id", "type"):
        if not isinstance(event[name], str):
            raise Bad(f"{name} must be a string")
    expected = previous["position"] + 1 if previous else first_position
    if event["position"] != expected:
        raise Bad(
            f"position {event['position']} where {expected} should be: events deleted, added or re-ordered"
        )
    if previous is not None and event["prev_hash"] != previous["hash"]:
        raise Bad(f"the prev_hash of position {expected} does not name the previous event's hash")
    if event_hash(event) != event["hash"]:
        raise Bad(f"the hash of position {expected} does not match its content: the event was edited")
    return event


def verify(path: str, keys_path: str) -> str:
    """Check the export at `path`; return the success line, or raise Bad with the line number."""
    line_number = 0
    try:
        with open(path, encoding="utf-8") as file:
            header_line = file.readline()
            line_number = 1
            header = json.loads(header_line) if header_line else None
            if (
                not isinstance(header, dict)
                or header.get("kind") != "header"
                or header.get("format") != FORMAT
            ):
                raise Bad(f"the first line must be the header of a {FORMAT} file")
            if header.get("version") != VERSION:
                raise Bad(
                    f"this checker knows version {VERSION} of the procedure, not {header.get('version')!r}"
                )
            if not isinstance(header.get("first_position"), int) or not isinstance(header.get("source"), str):
                raise Bad("the header needs first_position and source")
            keys = load_keys(keys_path, header["source"])
            previous: dict[str, Any] | None = None
            signed_through, events, selected = 0, 0, 0
            for line in file:
                line_number += 1
                record = json.loads(line)
                kind = record.get("kind") if isinstance(record, dict) else None
                if kind == "event":
                    previous = check_event(record.get("event"), previous, header["first_position"])
                    events += 1
                    if not isinstance(record.get("selected"), bool):
                        raise Bad("an event line needs selected: true or false")
                    selected += record["selected"]
                elif kind == "head":
                    check_head(record, previous, keys)
                    signed_through = record["position"]
                else:
                    raise Bad(f"a line must be an event or a head, not {kind!r}")
    except json.JSONDecodeError as error:
        raise Bad(f"line {line_number}: not JSON: {error}") from error
    except Bad as error:
        raise Bad(f"line {line_number}: {error}") from error
    except OSError as error:
        raise Bad(f"cannot read: {error}") from error
    if previous is None:
        raise Bad(f"line {line_number}: the export holds no event")
    if signed_through != previous["position"]:
        raise Bad(
            f"line {line_number}: events {signed_through + 1}..{previous['position']} are not covered by "
            "a signed head (the export must end at one)"
        )
    if header.get("last_position") != previous["position"]:
        raise Bad(
            f"line 1: the header says the run ends at {header.get('last_position')}, "
            f"but it ends at {previous['position']}"
        )
    return (
        f"verified: {events} events of {header.get('service', header['source'])}, positions "
        f"{header['first_position']}..{previous['position']} ({selected} selected), signed through "
        f"{signed_through} by a pinned key; anchored on prev_hash {header.get('anchor_prev_hash', '?')[:16]}…"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check a `yard audit export` file offline (docs/audit.md).")
    parser.add_argument("export", help="the JSON Lines file yard audit export wrote")
    parser.add_argument("--keys", required=True, help='JSON {"<source>": ["<base64url public key>", ...]}')
    args = parser.parse_args(argv)
    try:
        print(verify(args.export, args.keys))
    except Bad as error:
        print(f"NOT verified: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
