"""Command handlers and the conductor: load aggregates, decide, append.

- `commands.DeployCommands`: every state change (operators' rollouts and deployments, agents'
  registrations, heartbeats and reports, the registry's release rollbacks), each retried on a
  concurrency conflict with fresh state.
- `conductor.Conductor`: the pass that drives rollouts wave by wave and ends what would otherwise stay
  in progress (deadlines, silent agents, due retries, cancelled rollouts, deprecated versions).
- `ports.DeployReads`: what both read from the views.
"""
