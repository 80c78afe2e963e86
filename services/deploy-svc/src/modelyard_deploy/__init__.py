"""deploy-svc: edge servers, deployments of released model versions and staged rollouts (docs/deploy.md)."""
