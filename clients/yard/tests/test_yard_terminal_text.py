"""Nothing a server sends can drive the terminal: escape sequences and controls never reach it."""

from __future__ import annotations

import json
import unicodedata

from hypothesis import given
from hypothesis import strategies as st
from yard_fakes import FakeJobSvc, event, finished_story, job
from yard_runner import Yard

from modelyard.v1 import jobs_pb2
from modelyard_cli.terminal_text import json_text, printable
from modelyard_events.domain_errors import InvalidArgument
from modelyard_grpc import status_for

HOSTILE_NAME = "\x1b]0;owned\x07digits\x1b]52;c;cm0gLXJmIH4=\x1b\\-cnn"
HOSTILE_REASON = "bad\x1b[2J\x1b[31m data\x9b2J\r\u202eline\x08s\nsecond line\tend"
CONTROLS = ("\x1b", "\x9b", "\x07", "\x08", "\r", "\u202e")
NEVER_SHOWN = (*CONTROLS, "owned", "cm0gLXJmIH4=")  # a window title and a clipboard write


def assert_terminal_safe(text: str, unsafe: tuple[str, ...] = NEVER_SHOWN) -> None:
    for found in unsafe:
        assert found not in text, f"{found!r} reached the terminal"


def test_escape_sequences_and_controls_are_removed_whole() -> None:
    assert printable(HOSTILE_NAME) == "digits-cnn"
    assert printable(HOSTILE_REASON) == "bad datalines\nsecond line\tend"
    assert printable("a\x9d8;;http://x\x9clink\x9d end") == "alink end"  # 8-bit OSC, then a stray C1


@given(st.text())
def test_printable_text_holds_no_control_character(text: str) -> None:
    cleaned = printable(text)
    assert not any(unicodedata.category(char) == "Cc" and char not in "\n\t" for char in cleaned)
    assert not any(char in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069" for char in cleaned)


@given(st.text(alphabet=st.characters(categories=["L", "N", "P", "S", "Zs"])))
def test_ordinary_text_is_left_as_it_is(text: str) -> None:
    assert printable(text) == text


def test_json_output_keeps_the_data_but_escapes_what_a_terminal_would_obey() -> None:
    text = json_text({"reason": HOSTILE_REASON})
    assert_terminal_safe(text, CONTROLS)
    assert json.loads(text) == {"reason": HOSTILE_REASON}


class TestWhatYardPrints:
    def test_job_details_show_no_escape_sequence_from_names_or_reasons(
        self, yard: Yard, job_svc: FakeJobSvc
    ) -> None:
        job_svc.job = job(name=HOSTILE_NAME, state=jobs_pb2.JOB_STATE_FAILED, failure_reason=HOSTILE_REASON)
        job_svc.events = [event(1, "JobCreated", subject="\x1b[8mhidden")]

        result = yard("jobs", "show", "job-1")

        assert result.exit_code == 0, result.output
        assert_terminal_safe(result.stdout)
        assert "digits-cnn" in result.stdout
        assert "bad data" in result.stdout
        assert "hidden" in result.stdout

    def test_job_lists_and_json_output_are_safe_too(self, yard: Yard, job_svc: FakeJobSvc) -> None:
        job_svc.job_pages = [[job("job-1", name=HOSTILE_NAME)]]

        listed = yard("jobs", "list")
        as_json = yard("--json", "jobs", "list")

        assert_terminal_safe(listed.stdout)
        assert "digits-cnn" in listed.stdout
        assert_terminal_safe(as_json.stdout, CONTROLS)
        assert json.loads(as_json.stdout)["jobs"][0]["name"] == HOSTILE_NAME

    def test_a_refusal_is_printed_without_its_escape_sequences(self, yard: Yard, job_svc: FakeJobSvc) -> None:
        job_svc.refusals["GetJob"] = status_for(InvalidArgument("job_id", HOSTILE_REASON))

        result = yard("jobs", "show", "job-9")

        assert result.exit_code == 2
        assert_terminal_safe(result.stderr)
        assert "bad data" in result.stderr

    def test_a_watched_failure_prints_its_reason_without_escape_sequences(
        self, yard: Yard, job_svc: FakeJobSvc
    ) -> None:
        job_svc.watch_updates = finished_story(
            "job-1", jobs_pb2.JOB_STATE_FAILED, failure_reason=HOSTILE_REASON
        )

        result = yard("jobs", "watch", "job-1")

        assert_terminal_safe(result.stdout)
        assert "bad datalines" in result.stdout
