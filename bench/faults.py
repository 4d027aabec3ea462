"""Fault-injection suite of issue 14: runs the fault families, writes bench/results/faults.json
and regenerates RELIABILITY.md from it.

    python bench/faults.py [--quick] [--only config,nodes,bags,ros,stochlite] [--out-dir DIR]
                           [--report-only]

Families (each a module exposing ``run(quick: bool) -> dict``): ``config`` (bench/_faults_config.py:
every config key and flag of mdemorl train/retrain fuzzed), ``nodes`` (bench/_faults_nodes.py:
every parameter of every node fuzzed, in-process and by real starts), ``bags`` (bench/_faults_bags.py:
cut and corrupted bags into mdemorl retrain), ``ros`` (bench/_faults_ros.py: killed nodes,
corrupted topics, CAN bus and IMU failures), ``stochlite`` (bench/_faults_stochlite.py: the
quadruped's servo driver on the simulated B3M bus and its gait controller). A family whose module is not there is recorded as
missing, never faked. ``--only`` reruns some families and keeps the others' last results from
the existing faults.json. ``--quick`` is the CI-sized run (its numbers are marked as such).
The exit code is 1 when any family reports misbehaving cases or is missing, else 0.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from _common import REPO_ROOT, emit, machine_info, results_dir
from _faults_report import render

FAMILIES = {
    "config": "_faults_config",
    "nodes": "_faults_nodes",
    "bags": "_faults_bags",
    "ros": "_faults_ros",
    "stochlite": "_faults_stochlite",
}
RESULT_NAME = "faults"
REPORT = REPO_ROOT / "RELIABILITY.md"


def run_family(name: str, quick: bool) -> dict[str, Any]:
    """The family's result, stamped with when, where and how long; or a ``missing`` record."""
    module_name = FAMILIES[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name != module_name:
            raise
        return {"suite": name, "status": "missing", "module": f"bench/{module_name}.py"}
    started = time.perf_counter()
    result = dict(module.run(quick))
    result.setdefault("suite", name)
    result["status"] = "ran"
    result["quick"] = quick
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    result["machine"] = machine_info()
    return result


def previous(out_dir: Path) -> dict[str, Any]:
    path = out_dir / f"{RESULT_NAME}.json"
    if not path.exists():
        return {}
    return dict(json.loads(path.read_text()).get("families", {}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI-sized run")
    parser.add_argument(
        "--only", default=",".join(FAMILIES), help=f"comma-separated subset of {list(FAMILIES)}"
    )
    parser.add_argument("--out-dir", default=None, help="results directory (bench/results)")
    parser.add_argument("--report", default=str(REPORT), help="markdown file to regenerate")
    parser.add_argument(
        "--report-only", action="store_true", help="regenerate the report from faults.json only"
    )
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(FAMILIES))
    if unknown:
        parser.error(f"--only: unknown families {unknown}; known: {list(FAMILIES)}")
    out_dir = results_dir(args.out_dir)
    families = previous(out_dir)
    if not args.report_only:
        for name in chosen:
            print(f"faults: running {name} ...", file=sys.stderr, flush=True)
            families[name] = run_family(name, args.quick)
        ordered = {name: families[name] for name in FAMILIES if name in families}
        emit(
            RESULT_NAME,
            {"families": ordered},
            quick=any(f.get("quick", False) for f in ordered.values()),
            out_dir=out_dir,
        )
    document = json.loads((out_dir / f"{RESULT_NAME}.json").read_text())
    Path(args.report).write_text(render(document))
    print(f"faults: wrote {out_dir / (RESULT_NAME + '.json')} and {args.report}", file=sys.stderr)
    bad = [
        name
        for name, family in document["families"].items()
        if family.get("status") == "missing" or family.get("misbehaving")
    ]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
