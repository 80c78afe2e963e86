"""Inspection of uploaded sample files: safe names, accepted formats, content that matches its name."""

from modelyard_dataset.inspection.filenames import MAX_FILENAME_BYTES, check_filename
from modelyard_dataset.inspection.formats import ACCEPTED_EXTENSIONS, Kind
from modelyard_dataset.inspection.media import InspectedFile, inspect_file

__all__ = [
    "ACCEPTED_EXTENSIONS",
    "MAX_FILENAME_BYTES",
    "InspectedFile",
    "Kind",
    "check_filename",
    "inspect_file",
]
