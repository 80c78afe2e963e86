"""yard: the Modelyard command line."""
