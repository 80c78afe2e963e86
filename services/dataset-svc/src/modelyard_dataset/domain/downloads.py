"""Which samples one `DownloadSamples` call sends: each asked-for hash once, within the caps.

The caps (modelyard_events.schemas.downloads) bound what one call streams; a request over them is
refused before a byte is sent, naming the cap, so a client knows to ask in batches.
"""

from __future__ import annotations

from collections.abc import Sequence

from modelyard_events.domain_errors import InvalidArgument, NotFound
from modelyard_events.schemas.downloads import download_too_large
from modelyard_events.schemas.manifest import DatasetManifest, ManifestSample


def samples_to_send(manifest: DatasetManifest, asked: Sequence[str]) -> list[ManifestSample]:
    """The version's samples with the asked hashes, in the order asked, each once (all when none asked).

    InvalidArgument when the request is over a cap; NotFound naming a hash the version does not hold.
    """
    too_many = download_too_large(len(asked), 0)  # counted before deduplication: no absurd request is read
    if too_many:
        raise InvalidArgument("sha256", too_many)
    by_hash = {sample.sha256: sample for sample in manifest.samples}
    wanted = list(dict.fromkeys(asked)) if asked else list(by_hash)
    outside = [sha for sha in wanted if sha not in by_hash]
    if outside:
        raise NotFound(
            f"version {manifest.version} of {manifest.dataset_id} has no sample with sha256 {outside[0]}"
        )
    samples = [by_hash[sha] for sha in wanted]
    refused = download_too_large(len(samples), sum(sample.size_bytes for sample in samples))
    if refused:
        raise InvalidArgument("sha256", refused)
    return samples
