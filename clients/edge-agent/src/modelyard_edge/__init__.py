"""The edge agent: one edge server that installs released models, checks them and serves them offline."""
