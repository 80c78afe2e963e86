"""Demo data sets that ship offline, exported in the formats the trainer reads."""
