"""How an upload shows its progress: a bar over the bytes and files sent, and a line per stored batch.

The bar is drawn only on a terminal, and it vanishes when the upload ends (transient), so what stays
on screen is the batch lines and the summary; elsewhere (a pipe, a CI log) only the lines are
printed, one per batch.
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from modelyard.v1 import datasets_pb2
from modelyard_cli.render.datasets import batch_line


class UploadMeter:
    """Progress of one upload across its batches: bytes and files sent, batches stored."""

    def __init__(self, console: Console, total_bytes: int, total_files: int, batches: int) -> None:
        self._console = console
        self._batches = batches
        self._total_files = total_files
        self._files_sent = 0
        self._progress = Progress(
            TextColumn("uploading"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TextColumn("{task.fields[files]}"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        )
        self._task = self._progress.add_task("upload", total=total_bytes, files=self._files_text())

    def __enter__(self) -> UploadMeter:
        self._progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._progress.stop()

    def sent(self, size_bytes: int) -> None:
        """Bytes of a file were handed to the call."""
        self._progress.advance(self._task, size_bytes)

    def file_sent(self) -> None:
        """A whole file was handed to the call."""
        self._files_sent += 1
        self._progress.update(self._task, files=self._files_text())

    def batch_stored(self, index: int, response: datasets_pb2.UploadSamplesResponse) -> None:
        """The server stored batch `index` (1-based): print its line above the bar."""
        self._console.print(batch_line(index, self._batches, response), markup=False, soft_wrap=True)

    def _files_text(self) -> str:
        return f"{self._files_sent}/{self._total_files} files"
