"""Options and arguments several commands share, so they read and behave the same everywhere."""

from __future__ import annotations

from typing import Annotated

import typer

JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print JSON (protobuf field names) instead of tables and lines.")
]
JobId = Annotated[str, typer.Argument(help="The job's id (see `yard jobs list`).", show_default=False)]
OrgFilter = Annotated[
    str | None, typer.Option("--org", help="Only this organization's jobs.", show_default=False)
]
Reason = Annotated[str, typer.Option("--reason", help="Why; recorded in the job's events (audit).")]
ExpectedVersion = Annotated[
    int,
    typer.Option(
        "--expected-version",
        help="Refuse (ABORTED) if the job's version moved on since you looked; 0 = do not check.",
    ),
]
DatasetId = Annotated[
    str,
    typer.Argument(
        metavar="DATASET", help="The dataset's id (see `yard datasets list`).", show_default=False
    ),
]
RequestId = Annotated[
    str | None, typer.Option(help="Idempotency key: the same id returns the same result.", show_default=False)
]
