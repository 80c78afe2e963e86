"""No event can wedge the pipeline (issue 11, item 2): a huge failure stays a small, published event."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from google.protobuf import struct_pb2

from modelyard.v1 import datasets_pb2, jobs_pb2
from modelyard_events.schemas.bounds import REASON_MAX_CHARS
from tests.integration.dataset_client import DatasetClient
from tests.integration.job_client import JobClient
from tests.integration.trainers import Trainers

pytestmark = pytest.mark.integration

COLUMNS = 120_000


def wide_table(folder: Path) -> Path:
    """The issue's table: 120,000 columns, about 1.7 MB."""
    path = folder / "wide.csv"
    header = ",".join(f"feature_{i:06d}" for i in range(COLUMNS - 1))
    rows = [",".join(["1.5"] * (COLUMNS - 1)) + f",{label}" for label in "ab"]
    path.write_text("\n".join([f"{header},label", *rows]) + "\n")
    return path


async def test_a_misspelled_target_in_a_huge_table_fails_the_job_briefly_and_the_next_job_runs(
    jobs: JobClient, trainers: Trainers, fresh_org: str, digits_uri: str, tmp_path: Path
) -> None:
    # Reproduced on the old main: a 1.56 MB reason, TrainingFailed and JobFailed unpublishable, no job
    # anywhere started again.
    await trainers.start("t-wide")
    hyperparameters = struct_pb2.Struct()
    hyperparameters.update({"target_column": "labl", "epochs": 1})
    wide = await jobs.jobs.CreateJob(
        jobs_pb2.CreateJobRequest(
            name="wide table",
            ai_module="wide-reader",
            family="tabular_classifier",
            dataset_uri=wide_table(tmp_path).as_uri(),
            hyperparameters=hyperparameters,
            org_id=fresh_org,
        )
    )

    failed = await jobs.wait_for(wide.job_id, jobs_pb2.JOB_STATE_FAILED)

    assert len(failed.failure_reason) <= REASON_MAX_CHARS
    assert "no target column 'labl'; columns are feature_000000" in failed.failure_reason
    assert "and 119,980 more" in failed.failure_reason
    after = await jobs.create(fresh_org, digits_uri, epochs=1)
    await jobs.wait_for(after.job_id, jobs_pb2.JOB_STATE_COMPLETED)


@pytest.mark.parametrize(
    ("filename", "content", "words"),
    [
        ("wide.csv", None, "wide.csv has 120,000 columns in its header (line 1), more than the 10,000"),
        (
            "deep.jsonl",
            b'{"x": ' + b"[" * 5000 + b"]" * 5000 + b"}\n",
            "deep.jsonl has JSON nested more than 32",
        ),
    ],
)
async def test_tables_too_wide_or_too_deep_are_refused_as_arguments_naming_the_file(
    datasets: DatasetClient, fresh_org: str, tmp_path: Path, filename: str, content: bytes | None, words: str
) -> None:
    dataset = await datasets.create(fresh_org, [], task=datasets_pb2.LABEL_TASK_NONE)
    data = wide_table(tmp_path).read_bytes() if content is None else content

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await datasets.upload(dataset.dataset_id, [(filename, data), ("ok.csv", b"x,label\n1,a\n")])

    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert words in (refused.value.details() or "")
