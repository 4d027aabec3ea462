"""Actor inference latency in the torque controller's code path: obs -> action, one observation.

    python bench/policy_latency.py [--quick] [--calls 20000] [--threads 1]

The actor is serialised with `policy_io.serialize_actor` and loaded back with `deserialize_actor`
(what the controller receives on /mdemorl/policy), then `act_numpy(obs, deterministic=True)` is
timed on one float32 observation per call (a fresh observation each call, drawn beforehand), with
the default SAC actor size (2 x 256) and Leg2R-v0's dimensions. Defaults to one torch thread, as
a control process should run; the Python garbage collector stays on, as in the controller.
"""

from __future__ import annotations

import numpy as np
import torch
from _common import base_parser, configure_torch, emit, latency_summary_ms, time_each_call

from mdemorl_core.agents.sac import SACConfig, TanhGaussianActor
from mdemorl_core.envs.leg2r_task import ACTION_DIM, OBSERVATION_DIM
from mdemorl_core.policy_io import deserialize_actor, serialize_actor


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000, help="timed calls")
    parser.set_defaults(threads=1)
    args = parser.parse_args(argv)
    if args.quick:
        args.calls = 200
    configure_torch(args.threads, args.seed)

    config = SACConfig()
    trained = TanhGaussianActor(OBSERVATION_DIM, ACTION_DIM, config.hidden_size, config.num_layers)
    blob = serialize_actor(trained, algorithm="mdemorl", version=1)
    actor = deserialize_actor(blob)
    observations = (
        np.random.default_rng(args.seed)
        .standard_normal((args.calls, OBSERVATION_DIM))
        .astype(np.float32)
    )
    position = iter(range(args.calls))

    def one_call() -> None:
        actor.act_numpy(observations[next(position) % args.calls], deterministic=True)

    warmup = min(1000, args.calls)
    for index in range(warmup):
        actor.act_numpy(observations[index], deterministic=True)
    durations = time_each_call(one_call, args.calls, warmup=0)
    summary = latency_summary_ms(durations)
    emit(
        "policy_latency",
        {
            **summary,
            "what": (
                f"policy_io.deserialize_actor(...).act_numpy(obs [{OBSERVATION_DIM}], "
                f"deterministic=True), actor {config.num_layers} x {config.hidden_size}, "
                f"{torch.get_num_threads()} torch thread(s), {args.calls} calls."
            ),
            "setup": {
                "obs_dim": OBSERVATION_DIM,
                "act_dim": ACTION_DIM,
                "hidden": [config.hidden_size] * config.num_layers,
                "calls": args.calls,
                "blob_bytes": len(blob),
            },
        },
        quick=args.quick,
        out_dir=args.out_dir,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
