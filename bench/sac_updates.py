"""SAC gradient updates per second: this project's SAC vs stable-baselines3's SAC, same run.

    python bench/sac_updates.py [--quick] [--updates N] [--rounds R] [--batch-size 256]

One torch thread unless --threads says otherwise (the protocol of the target: one core). Both
learners get the same sizes (batch 256, two hidden layers of 256, twin critics, automatic
entropy, Polyak targets every step) and the same observation/action dimensions (Leg2R-v0's unless
--obs-dim/--act-dim are given), and both sample their minibatch from a replay buffer filled with
the same random transitions, so one "update" is: draw a minibatch, one critic step, one actor
step, one temperature step, one target update. Ours runs in two variants, float32 and bfloat16
autocast (``sac.bf16``); the headline ``ours_updates_per_s`` / ``ratio`` is the one the default
``SACConfig`` selects. All three are timed in interleaved rounds in the same process; the best
round of each is reported (shared-machine noise only slows rounds down) together with the ratio
of the medians, and also rates by the thread's CPU time (``cpu_*``), which do not count the time
other processes held the core. The matmul FLOPs of one update (torch's FlopCounterMode)
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
        self, data: dict[str, np.ndarray], batch_size: int, hidden: int, seed: int, bf16: bool
    ) -> None:
        from mdemorl_core.agents.sac import SAC, SACConfig
        from mdemorl_core.replay import ReplayBuffer

        obs_dim, act_dim = data["obs"].shape[1], data["act"].shape[1]
        self.device = torch.device("cpu")
        config = SACConfig(hidden_size=hidden, num_layers=2, batch_size=batch_size, bf16=bf16)
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


Runner = OursRunner | SB3Runner


def flops_per_update(runner: Runner) -> int:
    """Matmul FLOPs of one update (forward + backward), counted by torch's FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        runner.run(1)
    return int(counter.get_total_flops())


def timed_round(runner: Runner, updates: int) -> tuple[float, float]:
    """(updates per wall-clock second, updates per second of this thread's CPU time)."""
    wall, cpu = time.perf_counter(), time.thread_time()
    runner.run(updates)
    return updates / (time.perf_counter() - wall), updates / (time.thread_time() - cpu)


def summarise(
    rates: dict[str, list[tuple[float, float]]], name: str, reference: str
) -> dict[str, Any]:
    """Best / median rates of `name` and their ratios to `reference` (wall and CPU time)."""
    wall = [w for w, _ in rates[name]]
    cpu = [c for _, c in rates[name]]
    ref_wall = [w for w, _ in rates[reference]]
    ref_cpu = [c for _, c in rates[reference]]
    return {
        "updates_per_s": max(wall),
        "ratio": max(wall) / max(ref_wall),
        "ratio_of_medians": percentile(wall, 50) / percentile(ref_wall, 50),
        "cpu_updates_per_s": max(cpu),
        "cpu_ratio": max(cpu) / max(ref_cpu),
        "rounds_per_s": wall,
        "cpu_rounds_per_s": cpu,
    }


def main(argv: list[str] | None = None) -> int:
    from mdemorl_core.agents.sac import SACConfig, native_bf16

    parser = base_parser(__doc__.splitlines()[0])
    parser.set_defaults(threads=1)
    parser.add_argument("--updates", type=int, default=500, help="gradient updates per round")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timed rounds per side")
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
    runners: dict[str, Runner] = {
        "fp32": OursRunner(data, args.batch_size, args.hidden, args.seed, bf16=False),
        "bf16": OursRunner(data, args.batch_size, args.hidden, args.seed, bf16=True),
        "sb3": SB3Runner(data, args.batch_size, args.hidden, args.seed),
    }
    warmup = max(2, args.updates // 10)
    for runner in runners.values():
        runner.run(warmup)
    rates: dict[str, list[tuple[float, float]]] = {name: [] for name in runners}
    for _ in range(args.rounds):
        for name, runner in runners.items():
            rates[name].append(timed_round(runner, args.updates))

    variants = {name: summarise(rates, name, "sb3") for name in ("fp32", "bf16")}
    flops = {name: flops_per_update(runner) for name, runner in runners.items()}
    for name, variant in variants.items():
        variant["flops_per_update"] = flops[name]
        variant["flops_per_s"] = variant["updates_per_s"] * flops[name]
        ours = runners[name]
        assert isinstance(ours, OursRunner)
        # False for "bf16" where the CPU has no native bf16 units (SAC then runs float32).
        variant["bf16_active"] = ours.sac.uses_bf16
    default = "bf16" if SACConfig().bf16 and native_bf16("cpu") else "fp32"
    sb3_wall = [w for w, _ in rates["sb3"]]
    sb3_cpu = [c for _, c in rates["sb3"]]
    emit(
        "sac_updates",
        {
            "ours_updates_per_s": variants[default]["updates_per_s"],
            "sb3_updates_per_s": max(sb3_wall),
            "ratio": variants[default]["ratio"],
            "ratio_of_medians": variants[default]["ratio_of_medians"],
            "ours_default_variant": default,
            "variants": variants,
            "ours_flops_per_update": flops[default],
            "sb3_flops_per_update": flops["sb3"],
            "ours_flops_per_s": variants[default]["flops_per_s"],
            "sb3_flops_per_s": max(sb3_wall) * flops["sb3"],
            "sb3_cpu_updates_per_s": max(sb3_cpu),
            "ours_rounds_per_s": variants[default]["rounds_per_s"],
            "sb3_rounds_per_s": sb3_wall,
            "sb3_cpu_rounds_per_s": sb3_cpu,
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
                "torch_threads": torch.get_num_threads(),
            },
        },
        quick=args.quick,
        out_dir=args.out_dir,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
