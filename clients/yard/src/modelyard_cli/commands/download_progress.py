"""How a download shows its progress: a bar over the bytes on disk, on stderr, on a terminal only.

The bar vanishes when the download ends (transient), so stdout keeps only the result; a resumed
download's bar starts where the file already was.
"""

from __future__ import annotations

from types import TracebackType

from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from modelyard_cli.terminal_text import SafeConsole


class DownloadMeter:
    """Progress of one download; `update` is download_artifact's progress callback."""

    def __init__(self, label: str, shown: bool) -> None:
        console = SafeConsole(stderr=True)
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            disable=not (shown and console.is_terminal),
        )
        self._task = self._progress.add_task(label, total=None)

    def __enter__(self) -> DownloadMeter:
        self._progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._progress.stop()

    def update(self, on_disk: int, total: int | None) -> None:
        """`on_disk` bytes of `total` (None: unknown) are in the file."""
        self._progress.update(self._task, completed=on_disk, total=total)
