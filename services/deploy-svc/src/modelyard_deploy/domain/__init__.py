"""Pure decisions of deploy-svc: aggregates take facts and return events; no I/O."""
