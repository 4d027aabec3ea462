"""DMD-MPC inner-loop throughput vs the machine's batched-matmul limit and vs a per-state loop.

    python bench/inner_loop.py [--quick] [--device cpu|cuda|auto] [--batches 1,100,10000]
                               [--horizons 5,15] [--samples 100] [--loop-states 16]

For every device, number of start states B and horizon H one DMD-MPC plan (M samples) is timed
with the default-sized networks (see bench/_planning.py), counting every row that goes through
the ensemble. Reported per configuration:

- model_steps_per_s: ensemble rows (one start state or sample advanced one step) per second;
- flops_per_s: model FLOPs per second, FLOPs per model row = 2 * sum_layers(in * out) of ONE
  ensemble member (TS-1 sends each row through one elite), i.e. the ensemble MLP only;
  network_flops_per_s also counts the actor (closed-loop sampling, shift) and the critic (value);
- matmul_flops_per_s: FLOP/s of plain `torch.baddbmm` calls with the ensemble's own layer shapes
  [E, N, in] x [E, in, out] at the N one elite gets per sampling step of a chunk, measured in the
  same run (the machine's practical limit for this work); fraction_of_matmul = flops / matmul;
- matmul_bf16_flops_per_s / fraction_of_bf16_matmul: the same reference in bfloat16, what the
  chip can do where it has bf16 matrix units (avx512_bf16 / AMX / tensor cores) while the
  planner runs float32: the headroom a bf16 model would have;
- speedup_vs_loop: the time a Python loop over start states (calling the same planner with one
  state at a time, as public implementations do) would take, over the batched time. The loop is
  timed on `--loop-states` states (median per state) and extrapolated linearly to B (stated in
  `loop_states_timed`).
"""

from __future__ import annotations

import time
from typing import Any

import torch
from _common import (
    base_parser,
    best_rate,
    configure_torch,
    emit,
    percentile,
    synchronise,
    torch_device,
)
from _planning import PlanningStack, build_stack, flops_per_row, layer_shapes, rows_per_elite

from mdemorl_core.agents.sac import TwinQ
from mdemorl_core.planning.dmd_mpc import auto_chunk_size

OBS_DIM_DEFAULT = 14  # Leg2R-v0
ACT_DIM_DEFAULT = 2


def parse_ints(text: str, name: str) -> list[int]:
    values = [int(part) for part in text.split(",") if part.strip()]
    if not values or min(values) < 1:
        raise ValueError(
            f"{name} must be a comma-separated list of positive integers, got {text!r}"
        )
    return values


def devices_for(choice: str) -> list[torch.device]:
    if choice == "auto":
        return [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    return [torch_device(choice)]


def matmul_reference(
    stack: PlanningStack,
    rows_per_member: int,
    min_seconds: float,
    dtype: torch.dtype = torch.float32,
) -> float:
    """Best FLOP/s of baddbmm over the ensemble's layer shapes at `rows_per_member` rows each."""
    num_elites = int(stack.model.elite_indices.numel())
    device = stack.device
    operands = []
    flops = 0
    for inputs, outputs in layer_shapes(stack.model):
        bias = torch.randn(num_elites, 1, outputs, device=device, dtype=dtype)
        activations = torch.randn(num_elites, rows_per_member, inputs, device=device, dtype=dtype)
        weight = torch.randn(num_elites, inputs, outputs, device=device, dtype=dtype)
        operands.append((bias, activations, weight))
        flops += 2 * num_elites * rows_per_member * inputs * outputs

    def run_layers() -> None:
        for bias, activations, weight in operands:
            torch.baddbmm(bias, activations, weight)
        synchronise(device)

    best, _ = best_rate(run_layers, flops, min_seconds)
    return best


def time_plan(stack: PlanningStack, start: torch.Tensor, horizon: int, min_seconds: float) -> float:
    """Seconds per plan: the best of repeated plans filling `min_seconds` (one plan if slower)."""
    best = float("inf")
    spent = 0.0
    while spent < min_seconds or best == float("inf"):
        synchronise(stack.device)
        begin = time.perf_counter()
        stack.plan(start, horizon)
        synchronise(stack.device)
        elapsed = time.perf_counter() - begin
        best = min(best, elapsed)
        spent += elapsed
    return best


def measure(
    stack: PlanningStack,
    batch: int,
    horizon: int,
    loop_states: int,
    min_seconds: float,
) -> dict[str, Any]:
    samples = stack.planner.config.num_samples
    start = stack.random_start_states(batch)
    stack.plan(start[: min(batch, 8)], horizon)  # warm-up (allocator, lazy init)

    stack.counter.reset()
    synchronise(stack.device)
    begin = time.perf_counter()
    stack.plan(start, horizon)
    synchronise(stack.device)
    counted_seconds = time.perf_counter() - begin
    counts = stack.counter
    model_rows, policy_rows, value_rows = counts.model_rows, counts.policy_rows, counts.value_rows
    # A plan that alone fills the timing window (B = 10 000) is not repeated.
    plan_seconds = (
        counted_seconds
        if counted_seconds >= min_seconds
        else min(counted_seconds, time_plan(stack, start, horizon, min_seconds))
    )

    model_flops = model_rows * flops_per_row(stack.model)
    actor_flops = flops_per_row(stack.sac.actor)
    network_flops = (
        model_flops
        + policy_rows * actor_flops
        + value_rows * (actor_flops + TwinQ.num_heads * flops_per_row(stack.sac.critic))
    )
    chunk_size = stack.planner.config.chunk_size or auto_chunk_size(stack.device, samples)
    chunk = min(batch, chunk_size)
    elites = int(stack.model.elite_indices.numel())
    matmul_rows = rows_per_elite(chunk * samples, elites)
    matmul_flops_per_s = matmul_reference(stack, matmul_rows, min(min_seconds, 2.0))
    matmul_bf16 = matmul_reference(stack, matmul_rows, min(min_seconds, 2.0), torch.bfloat16)

    timed = min(batch, loop_states)
    per_state = []
    for index in range(timed):
        synchronise(stack.device)
        begin = time.perf_counter()
        stack.plan(start[index : index + 1], horizon)
        synchronise(stack.device)
        per_state.append(time.perf_counter() - begin)
    # The median keeps a descheduling spike on the shared machine from inflating the loop.
    loop_seconds = percentile(per_state, 50) * batch

    flops_per_s = model_flops / plan_seconds
    return {
        "device": str(stack.device),
        "B": batch,
        "M": samples,
        "H": horizon,
        "chunk_size": chunk_size,
        "plan_seconds": plan_seconds,
        "model_rows_per_plan": model_rows,
        "model_steps_per_s": model_rows / plan_seconds,
        "model_flops_per_row": flops_per_row(stack.model),
        "flops_per_s": flops_per_s,
        "network_flops_per_s": network_flops / plan_seconds,
        "matmul_rows_per_member": matmul_rows,
        "matmul_flops_per_s": matmul_flops_per_s,
        "fraction_of_matmul": flops_per_s / matmul_flops_per_s,
        "network_fraction_of_matmul": network_flops / plan_seconds / matmul_flops_per_s,
        "matmul_bf16_flops_per_s": matmul_bf16,
        "fraction_of_bf16_matmul": flops_per_s / matmul_bf16,
        "loop_states_timed": timed,
        "loop_seconds_per_state_median": percentile(per_state, 50),
        "loop_seconds_per_state_mean": sum(per_state) / timed,
        "loop_seconds_extrapolated": loop_seconds,
        "loop_flops_per_s": model_flops / loop_seconds,
        "speedup_vs_loop": loop_seconds / plan_seconds,
    }


def targets(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's targets, checked on the CPU B=10000, M=100, H=15 row when it was measured."""
    rows = [
        row
        for row in results
        if row["device"] == "cpu" and row["B"] == 10_000 and row["M"] == 100 and row["H"] == 15
    ]
    if not rows:
        return []
    row = rows[0]
    return [
        {
            "description": "B=10000, M=100, H=15: >= 50 % of batched-matmul FLOP/s",
            "met": row["fraction_of_matmul"] >= 0.5,
            "detail": f"fraction {row['fraction_of_matmul']:.2f} (network incl. actor/critic "
            f"{row['network_fraction_of_matmul']:.2f})",
        },
        {
            "description": "B=10000, M=100, H=15: >= 20x faster than a per-state loop",
            "met": row["speedup_vs_loop"] >= 20.0,
            "detail": f"speedup {row['speedup_vs_loop']:.1f}x",
        },
    ]


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="cpu, cuda, or auto (cpu + cuda if any)")
    parser.add_argument("--batches", default="1,100,10000")
    parser.add_argument("--horizons", default="5,15")
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument(
        "--chunk-size", type=int, default=None, help="planner chunk (default: its own, 0 = auto)"
    )
    parser.add_argument("--loop-states", type=int, default=16)
    parser.add_argument("--min-seconds", type=float, default=3.0, help="timing window per config")
    parser.add_argument("--obs-dim", type=int, default=OBS_DIM_DEFAULT)
    parser.add_argument("--act-dim", type=int, default=ACT_DIM_DEFAULT)
    args = parser.parse_args(argv)
    if args.quick:
        args.batches, args.horizons, args.samples = "1,20", "2", 10
        args.loop_states, args.min_seconds = 2, 0.05
    configure_torch(args.threads, args.seed)
    batches = parse_ints(args.batches, "--batches")
    horizons = parse_ints(args.horizons, "--horizons")

    results = []
    for device in devices_for(args.device):
        stack = build_stack(
            args.obs_dim, args.act_dim, args.samples, device, args.seed, args.chunk_size
        )
        for horizon in horizons:
            for batch in batches:
                row = measure(stack, batch, horizon, args.loop_states, args.min_seconds)
                results.append(row)
                print(
                    f"[inner_loop] {row['device']} B={batch} H={horizon}: "
                    f"{row['plan_seconds']:.3f} s/plan, {row['fraction_of_matmul']:.2f} of matmul "
                    f"({row['fraction_of_bf16_matmul']:.2f} of bf16 matmul), "
                    f"{row['speedup_vs_loop']:.1f}x vs loop",
                    flush=True,
                )
    emit(
        "inner_loop",
        {
            "results": results,
            "targets": targets(results),
            "flop_formula": (
                "FLOPs per model step per row = 2 * sum_layers(in * out) of one ensemble member "
                f"(TS-1), here {results[0]['model_flops_per_row']:,}; matmul reference = "
                "torch.baddbmm over the same [E, N, in] x [E, in, out] layer shapes at the rows "
                "one elite gets per sampling step of a chunk."
            ),
            "loop_note": (
                "Per-state loop time: the median time of one planner call with one start state, "
                "over `loop_states_timed` states, times B (a linear extrapolation)."
            ),
        },
        quick=args.quick,
        out_dir=args.out_dir,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
