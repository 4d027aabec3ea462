"""Shared harness for the benchmark scripts in bench/.

Every script builds its command line from `base_parser`, measures, and hands one JSON-able dict to
`emit`, which adds the machine description and writes the result both to stdout and to
`<results dir>/<name>.json`. The results directory is `bench/results/` unless `--out-dir` or the
environment variable MDEMORL_BENCH_RESULTS says otherwise (the quick schema test uses a temporary
directory so that smoke runs never overwrite real measurements).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
DEFAULT_RESULTS_DIR = BENCH_DIR / "results"
RESULTS_ENV_VAR = "MDEMORL_BENCH_RESULTS"
SCHEMA_VERSION = 1


def results_dir(override: str | Path | None = None) -> Path:
    """The directory results go to: `override`, else $MDEMORL_BENCH_RESULTS, else bench/results."""
    chosen = override or os.environ.get(RESULTS_ENV_VAR) or DEFAULT_RESULTS_DIR
    path = Path(chosen)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_revision() -> str | None:
    try:
        completed = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    revision = completed.stdout.strip()
    return revision or None


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on: CPU, cores, load, torch build and threads, date (UTC)."""
    import torch

    try:
        load_1m, load_5m, _ = os.getloadavg()
    except OSError:
        load_1m = load_5m = float("nan")
    info: dict[str, Any] = {
        "cpu_model": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "load_avg_1m": round(load_1m, 2),
        "load_avg_5m": round(load_5m, 2),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda_available": bool(torch.cuda.is_available()),
        "git_revision": _git_revision(),
        "date_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if torch.cuda.is_available():
        info["cuda_device"] = torch.cuda.get_device_name(0)
    return info


def _json_default(value: Any) -> Any:
    """Turns numpy scalars/arrays and paths into plain JSON values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")


def _sanitise(value: Any) -> Any:
    """Replaces NaN/inf by None so that the files are strict JSON (other tools parse them)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _sanitise(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_sanitise(item) for item in value]
    return value


def emit(
    name: str, payload: dict[str, Any], *, quick: bool, out_dir: str | Path | None = None
) -> Path:
    """Adds the header (benchmark name, quick flag, machine), prints the JSON and writes the file.

    Returns the path written: `<results dir>/<name>.json`.
    """
    document = {
        "benchmark": name,
        "schema_version": SCHEMA_VERSION,
        "quick": quick,
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "machine": machine_info(),
    }
    document.update(payload)
    plain = json.loads(json.dumps(document, default=_json_default))
    text = json.dumps(_sanitise(plain), indent=2, allow_nan=False)
    path = results_dir(out_dir) / f"{name}.json"
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(text + "\n")
    temporary.replace(path)
    print(text, flush=True)
    return path


def base_parser(description: str) -> argparse.ArgumentParser:
    """The flags every script shares: --quick, --out-dir, --threads, --seed."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes for the CI smoke test (numbers meaningless)",
    )
    parser.add_argument(
        "--out-dir",
        default=None,
        help=f"results directory (default ${RESULTS_ENV_VAR} or bench/results)",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)"
    )
    parser.add_argument("--seed", type=int, default=0)
    return parser


def configure_torch(threads: int | None, seed: int) -> None:
    """Applies --threads and seeds torch's global generator (benchmarks only; the agent has its own)."""
    import torch

    if threads is not None:
        if threads < 1:
            raise ValueError(f"--threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    torch.manual_seed(seed)


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated q-th percentile (0..100) of `values`; NaN when empty."""
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile q must be in [0, 100], got {q}")
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * q / 100.0
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    fraction = position - lower
    return ordered[lower] * (1.0 - fraction) + ordered[upper] * fraction


def latency_summary_ms(durations_s: Sequence[float]) -> dict[str, float | int]:
    """p50/p90/p99/max/mean of durations given in seconds, reported in milliseconds."""
    if not durations_s:
        raise ValueError("latency_summary_ms needs at least one duration")
    in_ms = [duration * 1e3 for duration in durations_s]
    return {
        "p50_ms": percentile(in_ms, 50),
        "p90_ms": percentile(in_ms, 90),
        "p99_ms": percentile(in_ms, 99),
        "max_ms": max(in_ms),
        "mean_ms": sum(in_ms) / len(in_ms),
        "samples": len(in_ms),
    }


def time_each_call(fn: Callable[[], Any], repeats: int, warmup: int) -> list[float]:
    """Calls `fn` warmup + repeats times and returns the `repeats` individual durations (s)."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    for _ in range(warmup):
        fn()
    durations = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        durations.append(time.perf_counter() - start)
    return durations


def best_rate(
    fn: Callable[[], Any], work_per_call: float, min_seconds: float, rounds: int = 3
) -> tuple[float, float]:
    """Work per second of `fn`, best of `rounds` timed rounds of at least `min_seconds` each.

    The best round is reported because on a shared machine the noise is one-sided (other
    processes only ever slow us down). Returns (best rate, median rate) so both can be shown.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    fn()
    rates = []
    for _ in range(rounds):
        calls = 0
        start = time.perf_counter()
        while True:
            fn()
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds:
                break
        rates.append(calls * work_per_call / elapsed)
    return max(rates), percentile(rates, 50)


def torch_device(name: str) -> Any:
    """torch.device for --device, with a clear error when CUDA is asked for but absent."""
    import torch

    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine")
    return device


def synchronise(device: Any) -> None:
    """Waits for queued GPU work so that wall-clock timings include it (no-op on CPU)."""
    import torch

    if getattr(device, "type", "cpu") == "cuda":
        torch.cuda.synchronize(device)
