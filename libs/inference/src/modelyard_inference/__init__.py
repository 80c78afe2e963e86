"""Loading a modelyard.model/1 artifact and running it: shared by trainers (evaluation) and edges (serving)."""
