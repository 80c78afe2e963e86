"""Command handlers and the conductor: load aggregates, decide, append."""
