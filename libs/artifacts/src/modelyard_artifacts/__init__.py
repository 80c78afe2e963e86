"""Model artifacts: signed manifests, signed download URLs, the download endpoint, verified downloads."""
