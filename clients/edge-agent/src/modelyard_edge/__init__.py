"""The edge agent: one edge server that installs released models, checks them and serves them offline.

It never trains: it depends on modelyard_inference (load and run a model), never on the trainer.
"""

from modelyard_edge.agent import EdgeAgent, UnknownModule
from modelyard_edge.config import AgentConfig
from modelyard_edge.health import Figures, HealthVerdict, Limits, judge_health

__all__ = ["AgentConfig", "EdgeAgent", "Figures", "HealthVerdict", "Limits", "UnknownModule", "judge_health"]
