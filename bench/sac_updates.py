"""SAC gradient updates per second: this project's SAC vs stable-baselines3's SAC, same run.

    python bench/sac_updates.py [--quick] [--updates N] [--rounds R] [--batch-size 256]

Both learners get the same sizes (batch 256, two hidden layers of 256, twin critics, automatic
entropy, Polyak targets every step) and the same observation/action dimensions (Leg2R-v0's unless
--obs-dim/--act-dim are given), and both sample their minibatch from a replay buffer filled with
the same random transitions, so one "update" is: draw a minibatch, one critic step, one actor
step, one temperature step, one target update. The two are timed in alternating rounds in the
same process; the best round of each is reported (shared-machine noise only slows rounds down)
together with the ratio of the medians. The matmul FLOPs of one update (torch's FlopCounterMode)
are reported for both: at these sizes an update is dominated by its matrix products, so the
achievable ratio is bounded by the ratio of FLOPs per update unless one side wastes time.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from _common import base_parser, configure_torch, emit, percentile

REPLAY_ROWS = 50_000


def leg_dims() -> tuple[int, int]:
    """Observation and action dimensions of Leg2R-v0 (from the task module; no simulator needed)."""
    from mdemorl_core.envs.leg2r_task import ACTION_DIM, OBSERVATION_DIM

    return int(OBSERVATION_DIM), int(ACTION_DIM)


def random_transitions(obs_dim: int, act_dim: int, rows: int, seed: int) -> dict[str, np.ndarray]:
    """Synthetic replay content: obs/next_obs ``rows x O`` normal, act ``rows x A`` in [-1, 1]."""
    rng = np.random.default_rng(seed)
    return {
        "obs": rng.standard_normal((rows, obs_dim)).astype(np.float32),
        "act": rng.uniform(-1.0, 1.0, (rows, act_dim)).astype(np.float32),
        "rew": rng.standard_normal(rows).astype(np.float32),
        "next_obs": rng.standard_normal((rows, obs_dim)).astype(np.float32),
        "done": np.zeros(rows, dtype=np.float32),
    }


class OursRunner:
    """This project's SAC fed from its own ReplayBuffer through `sample_mixed`."""

    def __init__(
        self, data: dict[str, np.ndarray], batch_size: int, hidden: int, seed: int
    ) -> None:
        from mdemorl_core.agents.sac import SAC, SACConfig
        from mdemorl_core.replay import ReplayBuffer

        obs_dim, act_dim = data["obs"].shape[1], data["act"].shape[1]
        self.device = torch.device("cpu")
        config = SACConfig(hidden_size=hidden, num_layers=2, batch_size=batch_size)
        self.sac = SAC(obs_dim, act_dim, config, self.device)
        self.real = ReplayBuffer(obs_dim, act_dim, len(data["obs"]))
        self.real.add_batch(data["obs"], data["act"], data["rew"], data["next_obs"], data["done"])
        self.model_buffer = ReplayBuffer(obs_dim, act_dim, 1)
        self.rng = np.random.default_rng(seed)
        self.generator = torch.Generator().manual_seed(seed)
        self.batch_size = batch_size

    def run(self, updates: int) -> None:
        from mdemorl_core.replay import sample_mixed

        for _ in range(updates):
            batch = sample_mixed(
                self.real, self.model_buffer, self.batch_size, 1.0, self.rng, self.device
            )
            self.sac.update(batch, self.generator)


class SB3Runner:
    """stable-baselines3 SAC with the same network sizes, driven through its own `train()`."""

    def __init__(
        self, data: dict[str, np.ndarray], batch_size: int, hidden: int, seed: int
    ) -> None:
        import gymnasium as gym
        from stable_baselines3 import SAC as SB3SAC
        from stable_baselines3.common.logger import configure

        obs_dim, act_dim = data["obs"].shape[1], data["act"].shape[1]

        class SpacesOnly(gym.Env[np.ndarray, np.ndarray]):
            """SB3 needs an env for its spaces; no step is ever taken."""

            observation_space = gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
            action_space = gym.spaces.Box(-1.0, 1.0, (act_dim,), np.float32)

            def reset(
                self, *, seed: int | None = None, options: dict[str, Any] | None = None
            ) -> tuple[np.ndarray, dict[str, Any]]:
                super().reset(seed=seed)
                return np.zeros(obs_dim, dtype=np.float32), {}

            def step(
                self, action: np.ndarray
            ) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
                return np.zeros(obs_dim, dtype=np.float32), 0.0, False, False, {}

        self.model = SB3SAC(
            "MlpPolicy",
            SpacesOnly(),
            batch_size=batch_size,
            buffer_size=len(data["obs"]),
            learning_starts=0,
            policy_kwargs={"net_arch": [hidden, hidden]},
            device="cpu",
            seed=seed,
            verbose=0,
        )
        self.model.set_logger(configure(None, []))
        buffer = self.model.replay_buffer
        for row in range(len(data["obs"])):
            buffer.add(
                data["obs"][row : row + 1],
                data["next_obs"][row : row + 1],
                data["act"][row : row + 1],
                data["rew"][row : row + 1],
                data["done"][row : row + 1],
                [{}],
            )
        self.batch_size = batch_size

    def run(self, updates: int) -> None:
        self.model.train(gradient_steps=updates, batch_size=self.batch_size)


def flops_per_update(runner: OursRunner | SB3Runner) -> int:
    """Matmul FLOPs of one update (forward + backward), counted by torch's FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        runner.run(1)
    return int(counter.get_total_flops())


def timed_rate(runner: OursRunner | SB3Runner, updates: int) -> float:
    start = time.perf_counter()
    runner.run(updates)
    return updates / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=500, help="gradient updates per round")
    parser.add_argument("--rounds", type=int, default=5, help="alternating timed rounds per side")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--obs-dim", type=int, default=None)
    parser.add_argument("--act-dim", type=int, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.updates, args.rounds = 5, 1
    configure_torch(args.threads, args.seed)

    if args.obs_dim is None or args.act_dim is None:
        obs_dim, act_dim = leg_dims()
        dims_source = "Leg2R-v0"
    else:
        obs_dim, act_dim = args.obs_dim, args.act_dim
        dims_source = "flags"
    rows = 2_000 if args.quick else REPLAY_ROWS
    data = random_transitions(obs_dim, act_dim, rows, args.seed)
    ours = OursRunner(data, args.batch_size, args.hidden, args.seed)
    sb3 = SB3Runner(data, args.batch_size, args.hidden, args.seed)

    warmup = max(2, args.updates // 10)
    ours.run(warmup)
    sb3.run(warmup)
    ours_rates: list[float] = []
    sb3_rates: list[float] = []
    for _ in range(args.rounds):
        ours_rates.append(timed_rate(ours, args.updates))
        sb3_rates.append(timed_rate(sb3, args.updates))

    ours_best, sb3_best = max(ours_rates), max(sb3_rates)
    ours_flops, sb3_flops = flops_per_update(ours), flops_per_update(sb3)
    emit(
        "sac_updates",
        {
            "ours_updates_per_s": ours_best,
            "sb3_updates_per_s": sb3_best,
            "ratio": ours_best / sb3_best,
            "ratio_of_medians": percentile(ours_rates, 50) / percentile(sb3_rates, 50),
            "ours_flops_per_update": ours_flops,
            "sb3_flops_per_update": sb3_flops,
            "ours_flops_per_s": ours_best * ours_flops,
            "sb3_flops_per_s": sb3_best * sb3_flops,
            "ours_rounds_per_s": ours_rates,
            "sb3_rounds_per_s": sb3_rates,
            "setup": {
                "batch_size": args.batch_size,
                "hidden": [args.hidden, args.hidden],
                "obs_dim": obs_dim,
                "act_dim": act_dim,
                "dims_source": dims_source,
                "updates_per_round": args.updates,
                "rounds": args.rounds,
                "replay_rows": rows,
                "device": "cpu",
            },
        },
        quick=args.quick,
        out_dir=args.out_dir,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
