"""One-state DMD-MPC planning from a trained agent: what the planner node serves over ROS.

The inner loop plans for 10 000 start states at once; a robot asks for one. Both go through
:meth:`Agent.plan` — the same model environment (ensemble, known task reward, termination, the
critic's value, zero until SAC has trained), policy and planner settings — so a plan served here
is what the inner loop would have produced for that state.

Served plans are the acting planner's (``agent.act: planner``, and ``evaluate_planner``, the
study's ``*_mpc`` rows): by default the run's ``agent.act_horizon``, and the previous reply,
shifted by one step (its last action repeated), is one more candidate (the warm start of
:class:`~mdemorl_core.agents.model_data.ActingPlanner`). The service cannot tell a robot's
episodes apart, so after a pause or a new episode that candidate is merely stale: it loses the
elite selection unless it still scores among the best.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mdemorl_core.agent import Agent
from mdemorl_core.training.checkpoint import has_checkpoint, load_checkpoint
from mdemorl_core.training.loop import resolve_device
from mdemorl_core.training.run_dir import RunPaths, read_run_config

MAX_HORIZON = 200
MAX_SAMPLES = 100_000


class PlanningUnavailable(RuntimeError):
    """No plan can be made (no checkpoint yet, or a model-free run)."""


@dataclass
class Plan:
    """A planned sequence: actions ``H x A`` in [-1, 1], its model-predicted return (with the
    terminal value) and the wall time the planning took."""

    actions: np.ndarray
    predicted_return: float
    seconds: float


class PlanningService:
    """Plans from single observations with a snapshot of a trained agent (model, actor, critic)."""

    def __init__(self, agent: Agent, version: int, default_horizon: int = 0) -> None:
        """``default_horizon`` 0: the run's ``agent.act_horizon``."""
        if agent.model is None:
            raise PlanningUnavailable(
                f"a '{agent.config.algo}' agent has no dynamics model to plan with"
            )
        self.agent = agent
        self.version = version
        self.default_horizon = default_horizon or agent.config.act_horizon
        self.previous: torch.Tensor | None = None  # the last reply's actions, 1 x H x A

    @property
    def obs_dim(self) -> int:
        return self.agent.obs_dim

    @classmethod
    def from_run(cls, run_dir: Path | str, default_horizon: int = 0) -> PlanningService:
        """Load the latest checkpoint of a training run (``mdemorl train`` or the trainer node):
        the networks and counters only, not the replay buffers."""
        paths = RunPaths(Path(run_dir))
        if not has_checkpoint(paths.checkpoint_dir):
            raise PlanningUnavailable(f"no checkpoint in {paths.checkpoint_dir} yet")
        config = read_run_config(paths.root)
        state = load_checkpoint(paths.checkpoint_dir)
        agent_state = state["agent"]
        agent = Agent(
            int(agent_state["obs_dim"]),
            int(agent_state["act_dim"]),
            config.agent,
            resolve_device(config.device),
            config.seed,
        )
        agent.load_state_dict(agent_state, buffers=False)
        return cls(agent, version=int(state["epoch"]), default_horizon=default_horizon)

    def plan(
        self,
        observation: np.ndarray,
        horizon: int = 0,
        num_samples: int = 0,
        elite_fraction: float = 0.0,
    ) -> Plan:
        """Plan from one ``[O]`` observation. Zero overrides keep the configured values.

        Raises ValueError for a wrong-length or non-finite observation and out-of-range overrides.
        """
        obs = np.asarray(observation, dtype=np.float32)
        if obs.shape != (self.obs_dim,):
            raise ValueError(f"observation must have {self.obs_dim} values, got {obs.size}")
        if not np.all(np.isfinite(obs)):
            raise ValueError("observation contains NaN or Inf")
        horizon = horizon or self.default_horizon
        if not 1 <= horizon <= MAX_HORIZON:
            raise ValueError(f"horizon must be in [1, {MAX_HORIZON}], got {horizon}")
        if not 0 <= num_samples <= MAX_SAMPLES:
            raise ValueError(f"num_samples must be in [0, {MAX_SAMPLES}], got {num_samples}")
        if not (elite_fraction == 0.0 or 0.0 < elite_fraction <= 1.0) or math.isnan(elite_fraction):
            raise ValueError(f"elite_fraction must be in (0, 1] (0: default), got {elite_fraction}")
        config = self.agent.config.planner
        start = time.perf_counter()
        result = self.agent.plan(
            obs,
            horizon,
            dataclasses.replace(
                config,
                num_samples=num_samples or config.num_samples,
                elite_fraction=elite_fraction or config.elite_fraction,
            ),
            fixed=self.warm_start(horizon),
        )
        self.previous = result.actions
        seconds = time.perf_counter() - start
        return Plan(
            actions=result.actions[0].cpu().numpy().astype(np.float32),
            predicted_return=float(result.returns[0].item()),
            seconds=seconds,
        )

    def warm_start(self, horizon: int) -> torch.Tensor | None:
        """The previous reply shifted by one step, ``1 x 1 x H x A`` (None: no previous reply of
        this horizon)."""
        previous = self.previous
        if previous is None or previous.shape[1] != horizon:
            return None
        return torch.cat([previous[:, 1:], previous[:, -1:]], dim=1).unsqueeze(1)
