"""The typer commands: parse options, call job-svc, hand the answers to render/."""
