"""Read models of deploy-svc, projected from its own log and the registry's."""
