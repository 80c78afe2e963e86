"""`python -m modelyard_cli …` is `yard …` (how the dev platform starts edge agents: `yard edge-agent`)."""

from modelyard_cli.main import app

if __name__ == "__main__":
    app(prog_name="yard")
