"""`yard audit verify` and `yard audit export` against a real EventLog servicer (in-memory store, real
auth interceptor), and exports checked by the offline verifier tools/verify_export.py."""

from __future__ import annotations

import ast
import asyncio
import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from fake_loops import run_on
from grpc import aio
from typer.testing import CliRunner, Result

from modelyard.v1 import events_pb2_grpc
from modelyard_cli.commands import audit_verify
from modelyard_cli.commands.audit_log import served_fields, served_hash
from modelyard_cli.main import app
from modelyard_events.envelope import Actor, CommandContext, EventEnvelope
from modelyard_events.hashing import envelope_hash
from modelyard_events.store.memory import InMemoryEventStore
from modelyard_events.testing.sample_events import CounterIncremented, CounterOpened
from modelyard_events.testing.signing import OTHER_SIGNER, TEST_SIGNER
from modelyard_grpc import EVENT_LOG_RULES, AccessPolicy, AuthInterceptor, EventLogServicer, mint_token
from modelyard_grpc.event_log import envelope_to_proto
from modelyard_grpc.testing import TEST_ISSUER, verifier_for

ROOT = Path(__file__).resolve().parents[3]
VERIFY_EXPORT = ROOT / "tools" / "verify_export.py"
CONTEXT = CommandContext(actor=Actor(subject="zoë", roles=("super_admin",)), org_id="acme")


def _token(*roles: str, org: str | None = None) -> str:
    return mint_token(TEST_ISSUER, "audrey", org, list(roles), 300.0)


def _auditor() -> str:
    """Minted when a test runs: one minted at import expired before the file ran in a slow suite."""
    return _token("auditor")


class ServedLog:
    """A signed in-memory log served by the real EventLog servicer behind the real auth interceptor."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.store = InMemoryEventStore(signer=TEST_SIGNER)
        self.target = ""

    def append(self, stream_id: str, expected: int, *events: CounterOpened | CounterIncremented) -> None:
        run_on(self.loop, self.store.append("counter", stream_id, expected, list(events), CONTEXT))

    def edit(self, position: int, **data: object) -> None:
        log = self.store._log  # the tamperer's view: the stored rows themselves
        stored = log[position - 1].model_dump()
        log[position - 1] = EventEnvelope.model_validate({**stored, "data": {**stored["data"], **data}})


@pytest.fixture
def served(fake_loop: asyncio.AbstractEventLoop) -> Iterator[ServedLog]:
    log = ServedLog(fake_loop)
    log.append("c-1", 0, CounterOpened(name="première"), CounterIncremented(amount=1))  # 1, 2
    log.append("c-2", 0, CounterOpened(name="second"))  # 3
    for version in range(2, 6):  # 4..7, one append (and one signed head) each
        log.append("c-1", version, CounterIncremented(amount=version))
    log.append("c-2", 1, CounterIncremented(amount=9), CounterIncremented(amount=10))  # 8, 9
    log.append("c-1", 6, CounterIncremented(amount=6, note="ünïcödé ✓"))  # 10

    async def start() -> aio.Server:
        server = aio.server(
            interceptors=[AuthInterceptor(verifier_for("job-svc"), AccessPolicy(EVENT_LOG_RULES))]
        )
        events_pb2_grpc.add_EventLogServicer_to_server(EventLogServicer(log.store), server)
        log.target = f"127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}"
        await server.start()
        return server

    server = run_on(fake_loop, start())
    yield log
    run_on(fake_loop, server.stop(grace=None))


@pytest.fixture
def keys_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"job": [TEST_SIGNER.public_text()]}))
    return path


def yard(served: ServedLog, *args: str, token: str | None = None) -> Result:
    env: dict[str, str | None] = {
        "MODELYARD_JOB_SVC_TARGET": served.target,
        "MODELYARD_TOKEN": token or _auditor(),
        "MODELYARD_TOKEN_SIGNING_KEY": None,
        "MODELYARD_EVENT_PUBLIC_KEYS": None,
        "MODELYARD_TLS_CA_FILE": None,
        "COLUMNS": "200",
    }
    return CliRunner().invoke(app, ["audit", *args], env=env)


@pytest.fixture(scope="module")
def offline() -> ModuleType:
    spec = importlib.util.spec_from_file_location("verify_export", VERIFY_EXPORT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# verify


def test_verify_reports_an_intact_log(served: ServedLog, keys_file: Path) -> None:
    result = yard(served, "verify", "--service", "job-svc", "--keys", str(keys_file))
    assert result.exit_code == 0, result.output
    assert "job-svc: ok: 10 events, signed through 10" in result.output


def test_verify_names_the_position_of_an_edited_event(served: ServedLog, keys_file: Path) -> None:
    served.edit(6, amount=600)
    result = yard(served, "verify", "--service", "job", "--keys", str(keys_file))
    assert result.exit_code == 1, result.output
    assert "job-svc: BROKEN at position 6" in result.output
    assert "edited" in result.output
    assert "does not verify" in result.output


def test_verify_refuses_heads_signed_with_an_unpinned_key(
    served: ServedLog, keys_file: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"job": [OTHER_SIGNER.public_text()]}))
    result = yard(served, "verify", "--service", "job-svc", "--keys", str(other))
    assert result.exit_code == 1, result.output
    assert "BROKEN at position 1" in result.output
    assert "not pinned" in result.output


def test_verify_names_an_unsigned_tail(
    served: ServedLog, keys_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit_verify, "TAIL_WAIT_S", 0.01)
    served.store._signer = None  # appended without the service's key
    served.append("c-2", 3, CounterIncremented(amount=1))
    result = yard(served, "verify", "--service", "job-svc", "--keys", str(keys_file))
    assert result.exit_code == 1, result.output
    assert "BROKEN at position 11" in result.output
    assert "not served" in result.output


@pytest.mark.parametrize(("roles", "org"), [(("org_admin",), "acme"), (("edge",), None), ((), None)])
def test_verify_says_a_token_without_the_auditor_role_is_refused(
    served: ServedLog, keys_file: Path, roles: tuple[str, ...], org: str | None
) -> None:
    result = yard(
        served, "verify", "--service", "job-svc", "--keys", str(keys_file), token=_token(*roles, org=org)
    )
    assert result.exit_code == 2, result.output
    assert "job-svc refused the token: PERMISSION_DENIED" in result.output
    assert "auditor role" in result.output
    assert "ok:" not in result.output


def test_verify_says_which_service_cannot_be_reached(served: ServedLog, keys_file: Path) -> None:
    keys_file.write_text(json.dumps({"registry": [TEST_SIGNER.public_text()]}))
    env_target = "127.0.0.1:1"
    result = CliRunner().invoke(
        app,
        [
            "--registry-target",
            env_target,
            "audit",
            "verify",
            "--service",
            "registry-svc",
            "--keys",
            str(keys_file),
        ],
        env={"MODELYARD_TOKEN": _auditor(), "MODELYARD_TOKEN_SIGNING_KEY": None, "COLUMNS": "200"},
    )
    assert result.exit_code == 2, result.output
    assert "cannot reach registry-svc at 127.0.0.1:1" in result.output
    assert "--registry-target or MODELYARD_REGISTRY_SVC_TARGET" in result.output


def test_verify_without_pinned_keys_says_what_to_set(served: ServedLog) -> None:
    result = yard(served, "verify", "--service", "job-svc")
    assert result.exit_code == 2, result.output
    assert "no public key is pinned for source 'job'" in result.output
    assert "MODELYARD_EVENT_PUBLIC_KEYS" in result.output


def test_verify_refuses_an_unknown_service(served: ServedLog, keys_file: Path) -> None:
    result = yard(served, "verify", "--service", "billing-svc", "--keys", str(keys_file))
    assert result.exit_code == 2
    assert "no service 'billing-svc'" in result.output


# export and the offline check


def _export(served: ServedLog, keys_file: Path, out: Path, *selection: str) -> Result:
    return yard(
        served, "export", "--service", "job-svc", *selection, "--out", str(out), "--keys", str(keys_file)
    )


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_position_range_exports_through_the_next_signed_head_and_verifies_offline(
    served: ServedLog,
    keys_file: Path,
    tmp_path: Path,
    offline: ModuleType,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "export.jsonl"
    result = _export(served, keys_file, out, "--positions", "2..8")
    assert result.exit_code == 0, result.output
    lines = _lines(out)
    header, events = lines[0], [line for line in lines if line["kind"] == "event"]
    assert (header["first_position"], header["last_position"], header["selected"]) == (2, 9, 7)
    assert [e["event"]["position"] for e in events] == list(range(2, 10))  # type: ignore[index]
    assert [e["selected"] for e in events] == [True] * 7 + [False]  # 9 closes the head of 8..9
    assert header["key_ids"] == [TEST_SIGNER.key_id]
    assert (lines[-1]["kind"], lines[-1]["position"]) == ("head", 9)

    assert offline.main([str(out), "--keys", str(keys_file)]) == 0
    assert "verified: 8 events of job-svc, positions 2..9 (7 selected)" in capsys.readouterr().out


def test_an_entity_exports_the_contiguous_run_around_it(
    served: ServedLog, keys_file: Path, tmp_path: Path, offline: ModuleType
) -> None:
    out = tmp_path / "entity.jsonl"
    result = _export(served, keys_file, out, "--entity", "counter/c-2")
    assert result.exit_code == 0, result.output
    lines = _lines(out)
    selected = [line["event"]["position"] for line in lines if line["kind"] == "event" and line["selected"]]  # type: ignore[index]
    assert selected == [3, 8, 9]
    assert (lines[0]["first_position"], lines[0]["last_position"]) == (3, 9)
    assert offline.main([str(out), "--keys", str(keys_file)]) == 0


def test_a_time_range_that_matches_nothing_writes_no_file(
    served: ServedLog, keys_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "none.jsonl"
    result = _export(served, keys_file, out, "--from", "2001-01-01T00:00:00", "--to", "2001-01-02T00:00:00")
    assert result.exit_code == 2
    assert "no event matches" in result.output
    assert not out.exists()
    assert not out.with_name("none.jsonl.part").exists()


def test_a_time_range_covering_everything_exports_the_whole_log(
    served: ServedLog, keys_file: Path, tmp_path: Path, offline: ModuleType
) -> None:
    out = tmp_path / "all.jsonl"
    result = _export(
        served, keys_file, out, "--from", "2000-01-01T00:00:00Z", "--to", "2100-01-01T00:00:00+00:00"
    )
    assert result.exit_code == 0, result.output
    assert _lines(out)[0]["anchor_prev_hash"] == "0" * 64
    assert offline.main([str(out), "--keys", str(keys_file)]) == 0


@pytest.mark.parametrize(
    ("selection", "problem"),
    [
        ((), "choose one selection"),
        (("--positions", "5..2"), "1 <= A <= B"),
        (("--entity", "no-slash"), "STREAM_TYPE/STREAM_ID"),
        (("--from", "yesterday", "--to", "2030-01-01"), "not an ISO 8601 time"),
        (("--from", "2030-01-01"), "needs both --from and --to"),
        (("--positions", "1..2", "--entity", "counter/c-1"), "given: --entity, --positions"),
    ],
)
def test_export_says_what_selection_to_give(
    served: ServedLog, keys_file: Path, tmp_path: Path, selection: tuple[str, ...], problem: str
) -> None:
    result = _export(served, keys_file, tmp_path / "x.jsonl", *selection)
    assert result.exit_code == 2
    assert problem in result.output


def test_export_of_a_tampered_log_is_refused(served: ServedLog, keys_file: Path, tmp_path: Path) -> None:
    served.edit(4, amount=400)
    out = tmp_path / "x.jsonl"
    result = _export(served, keys_file, out, "--positions", "2..6")
    assert result.exit_code == 2
    assert "does not verify at position 4" in result.output
    assert not out.exists()


def test_an_org_admin_exports_nothing(served: ServedLog, keys_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.jsonl"
    result = yard(
        served, "export", "--service", "job-svc", "--positions", "1..3", "--out", str(out),
        token=_token("org_admin", org="acme"),
    )  # fmt: skip
    assert result.exit_code == 2
    assert "PERMISSION_DENIED" in result.output
    assert not out.exists()


def _edited(path: Path, edit: str) -> Path:
    lines = path.read_text().splitlines(keepends=True)
    records = [json.loads(line) for line in lines]
    at = next(i for i, r in enumerate(records) if r.get("kind") == "event" and r["event"]["position"] == 5)
    if edit == "data":
        assert '"amount":3' in records[at]["event"]["data_json"]
        records[at]["event"]["data_json"] = records[at]["event"]["data_json"].replace(
            '"amount":3', '"amount":30'
        )
    elif edit == "whitespace":
        records[at]["event"]["data_json"] = records[at]["event"]["data_json"].replace(":", ": ")
    elif edit == "actor":
        records[at]["event"]["actor"]["roles"] = ["auditor"]
    elif edit == "deleted":
        del records[at]
    elif edit == "reordered":
        records[at], records[at + 2] = records[at + 2], records[at]
    elif edit == "signature":
        head = next(r for r in records if r.get("kind") == "head")
        head["signature"] = head["signature"][:-4] + (
            "AAAA" if not head["signature"].endswith("AAAA") else "BBBB"
        )
    elif edit == "resigned":  # a rewritten event with a head re-signed by a key that is not pinned
        event = records[at]["event"]
        event["data_json"] = event["data_json"].replace('"amount":3', '"amount":30')
        event["hash"] = offline_hash(event)
        records[at + 1] = {"kind": "head", **_head(OTHER_SIGNER.sign(5, event["hash"]))}
    elif edit == "tail":
        while records[-1]["kind"] == "head":
            records.pop()
    elif edit == "header":
        records[0]["last_position"] = 99
    out = path.with_name(f"{edit}.jsonl")
    out.write_text("".join(json.dumps(r) + "\n" for r in records))
    return out


def _head(head: object) -> dict[str, object]:
    return {k: getattr(head, k) for k in ("position", "hash", "key_id", "signature")}


def offline_hash(event: dict[str, object]) -> str:
    spec = importlib.util.spec_from_file_location("verify_export_h", VERIFY_EXPORT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module.event_hash(event))


@pytest.mark.parametrize(
    ("edit", "line", "why"),
    [
        ("data", 8, "was edited"),
        ("whitespace", 8, "was edited"),
        ("actor", 8, "was edited"),
        ("deleted", 8, "must follow its event"),
        ("reordered", 8, "where 5 should be"),
        ("signature", 3, "does not verify"),
        ("resigned", 9, "not pinned"),
        ("tail", None, "not covered by a signed head"),
        ("header", None, "header says"),
    ],
)
def test_an_edited_export_does_not_verify_and_the_first_bad_line_is_named(
    served: ServedLog,
    keys_file: Path,
    tmp_path: Path,
    offline: ModuleType,
    capsys: pytest.CaptureFixture[str],
    edit: str,
    line: int | None,
    why: str,
) -> None:
    out = tmp_path / "export.jsonl"
    assert _export(served, keys_file, out, "--positions", "2..8").exit_code == 0
    # Positions 2..9, a head after each append's last event (2, 3, 4, 5, 6, 7, 9): line 1 the header,
    # 2 event 2, 3 its head, 4 event 3, 5 its head, 6 event 4, 7 its head, 8 event 5, 9 its head.
    assert offline.main([str(_edited(out, edit)), "--keys", str(keys_file)]) == 1
    error = capsys.readouterr().err
    assert error.startswith("NOT verified: line ")
    assert why in error
    if line is not None:
        assert error.startswith(f"NOT verified: line {line}:"), error


def test_the_offline_check_pins_keys_per_source(
    served: ServedLog,
    keys_file: Path,
    tmp_path: Path,
    offline: ModuleType,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "export.jsonl"
    assert _export(served, keys_file, out, "--positions", "1..3").exit_code == 0
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"registry": [TEST_SIGNER.public_text()]}))
    assert offline.main([str(out), "--keys", str(wrong)]) == 1
    assert "pins no key for source 'job'" in capsys.readouterr().err
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps([TEST_SIGNER.public_text()]))
    assert offline.main([str(out), "--keys", str(bare)]) == 0


# the offline verifier stands alone


def test_the_offline_verifier_imports_only_the_standard_library_and_cryptography() -> None:
    tree = ast.parse(VERIFY_EXPORT.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0
            assert node.module is not None
            imported.add(node.module.split(".")[0])
    assert imported, "no imports found: the parse is wrong"
    assert imported - set(sys.stdlib_module_names) == {"cryptography"}


def test_the_offline_hash_is_the_store_hash_byte_for_byte(served: ServedLog, offline: ModuleType) -> None:
    for envelope in served.store._log:  # non-ASCII payloads, org ids, causation ids absent
        message = envelope_to_proto(envelope)
        assert offline.event_hash(served_fields(message)) == envelope.hash == envelope_hash(envelope)
        assert served_hash(message) == envelope.hash


def test_the_worked_example_of_docs_audit_md_hashes_as_documented(offline: ModuleType) -> None:
    example = {
        "event_id": "0190f6c2-8d2a-7b3e-9c1d-2f4a5b6c7d8e",
        "stream_type": "dataset",
        "stream_id": "ds-1",
        "stream_version": 1,
        "position": 1,
        "type": "DatasetCreated",
        "schema_version": 1,
        "occurred_at": "2026-12-02T16:00:00.123456Z",
        "actor": {"subject": "zoë", "roles": ["super_admin"]},
        "org_id": "acme",
        "correlation_id": "c-1",
        "causation_id": None,
        "data_json": '{"module":"digits","name":"Caméras"}',
        "prev_hash": "0" * 64,
        "hash": "",
    }
    documented = "9e1f0d1ce92042c089168a01a491ee53307b3217ed380bdd6afe3adb60030aff"
    assert documented in (ROOT / "docs" / "audit.md").read_text()
    assert offline.event_hash(example) == documented
    envelope = EventEnvelope.model_validate(
        {**{k: v for k, v in example.items() if k != "data_json"}, "data": json.loads(example["data_json"])}
    )
    assert envelope_hash(envelope) == documented
