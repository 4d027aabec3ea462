"""One-state DMD-MPC planning latency (M = 100, H = 10), in process, on CPU by default.

    python bench/planner_latency.py [--quick] [--plans 300] [--samples 100] [--horizon 10]

Times `DMDMPCPlanner.plan` on one start state with the default-sized ensemble, actor and critic
wired as the agent wires them (bench/_planning.py): the work the planner node does per request,
without the ROS service round trip. Each plan gets a fresh random start state. One torch thread
by default (a one-state plan is a chain of small matrix products that threads barely speed up,
and a planner process should not compete with the trainer for cores); --threads changes it.
"""

from __future__ import annotations

import torch
from _common import (
    base_parser,
    configure_torch,
    emit,
    latency_summary_ms,
    synchronise,
    time_each_call,
    torch_device,
)
from _planning import build_stack

from mdemorl_core.envs.leg2r_task import ACTION_DIM, OBSERVATION_DIM


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--plans", type=int, default=300, help="timed plans")
    parser.add_argument("--samples", type=int, default=100, help="M")
    parser.add_argument("--horizon", type=int, default=10, help="H")
    parser.add_argument("--device", default="cpu")
    parser.set_defaults(threads=1)
    args = parser.parse_args(argv)
    if args.quick:
        args.plans, args.samples, args.horizon = 10, 10, 2
    configure_torch(args.threads, args.seed)
    device = torch_device(args.device)
    stack = build_stack(OBSERVATION_DIM, ACTION_DIM, args.samples, device, args.seed)
    starts = stack.random_start_states(args.plans + 20)
    position = iter(range(args.plans + 20))

    def one_plan() -> None:
        index = next(position)
        stack.plan(starts[index : index + 1], args.horizon)
        synchronise(device)

    durations = time_each_call(one_plan, args.plans, warmup=min(20, args.plans))
    emit(
        "planner_latency",
        {
            **latency_summary_ms(durations),
            "what": (
                f"DMDMPCPlanner.plan on 1 start state, M={args.samples}, H={args.horizon}, "
                f"device {device}, {torch.get_num_threads()} torch thread(s), {args.plans} plans."
            ),
            "setup": {
                "M": args.samples,
                "H": args.horizon,
                "device": str(device),
                "obs_dim": OBSERVATION_DIM,
                "act_dim": ACTION_DIM,
                "utility": stack.planner.config.utility,
            },
        },
        quick=args.quick,
        out_dir=args.out_dir,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
