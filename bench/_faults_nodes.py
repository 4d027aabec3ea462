"""Node parameter fuzzing (issue 14): every parameter of every node, bad values one at a time.

The parameters are enumerated from each node module's ``DEFAULTS`` table (a new one is fuzzed
automatically) and each gets the bad values of its type: ``wrong_type`` (a string for a number, a
number for a string, an integer for a double, ...), ``empty`` (``''`` or ``[]``), ``zero``,
``negative``, ``nan``, ``inf`` and ``huge``. Two ways:

- in-process: a bare rclpy Node given the override as ``--ros-args -p key:=value`` (parsed as
  on the command line) declares the node's ``DEFAULTS`` through ``ros_common.declare`` with the
  node's ``PARAMETER_RULES``: the node's own parameter resolution, without its hardware;
- real starts: ``python -m <module> --ros-args -p key:=value`` in an isolated ROS domain, a few
  per node, must exit 2 within ``START_TIMEOUT`` naming the key, with no traceback.

Outcomes: ``rejected_naming_key``; ``accepted`` (a value inside the declared rule, e.g. a zero
seed); ``rejected_other_key``, ``traceback`` and ``started`` (a real start that kept running)
are misbehaving, and so is any ``accepted`` NaN/inf/huge/wrong-type/empty-list value, or a
numeric parameter with no declared range.
"""

from __future__ import annotations

import importlib
import math
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mdemorl_ros.node_parameters import NODE_MODULES

# Families whose acceptance is always a bug, whatever the rule (the others may be in range).
MUST_REJECT = {"wrong_type", "nan", "inf", "huge"}
START_TIMEOUT = 20.0  # s; a node that is still up by then started on the bad value
REAL_STARTS = {True: 1, False: 4}  # per node, quick / full
# Never written: the fuzzed key is rejected first (a node that took it would write here, not in /).
PLACEHOLDER = str(Path(tempfile.gettempdir()) / "mdemorl_fuzz_run")


def _number_cases(integer: bool) -> list[tuple[str, str]]:
    if integer:
        return [
            ("wrong_type", "abc"),
            ("wrong_type", "1.5"),
            ("empty", "''"),
            ("zero", "0"),
            ("negative", "-1"),
            ("nan", ".nan"),
            ("huge", "9223372036854775807"),
        ]
    return [
        ("wrong_type", "abc"),
        ("wrong_type", "1"),
        ("wrong_type", "true"),
        ("empty", "''"),
        ("zero", "0.0"),
        ("negative", "-1.0"),
        ("nan", ".nan"),
        ("inf", ".inf"),
        ("inf", "-.inf"),
        ("huge", "1.0e300"),
    ]


def fuzz_cases(default: Any) -> list[tuple[str, str]]:
    """(family, ``-p`` value) pairs of bad values for a parameter with this default."""
    if isinstance(default, bool):
        return [("wrong_type", "abc"), ("wrong_type", "1"), ("empty", "''")]
    if isinstance(default, int | float):
        return _number_cases(isinstance(default, int))
    if isinstance(default, str):
        return [("wrong_type", "5"), ("wrong_type", "[1.5, 2.5]"), ("empty", "''")]
    first = default[0]
    if isinstance(first, str):
        return [("wrong_type", "[1, 2]"), ("wrong_type", "abc"), ("empty", "[]"), ("empty", "['']")]
    integer = isinstance(first, int)
    n = len(default)

    def of(item: str) -> str:
        return "[" + ", ".join([item] * n) + "]"

    return [
        ("wrong_type", "[a, b]"),
        ("wrong_type", "1" if integer else "1.0"),
        ("wrong_type", of("1.5" if integer else "1")),
        ("empty", "[]"),
        ("zero", of("0" if integer else "0.0")),
        ("negative", of("-1" if integer else "-1.0")),
        ("huge", of("9223372036854775807" if integer else "1.0e300")),
        *([] if integer else [("nan", of(".nan")), ("inf", of(".inf"))]),
    ]


def base_overrides(module_name: str, fuzzed: str) -> list[str]:
    """``-p`` overrides giving each REQUIRED parameter with an empty default (a run directory)
    a placeholder, so that the fuzzed key is the only bad one."""
    from mdemorl_ros.node_parameters import REQUIRED

    defaults, rules = _parameters(module_name)
    args: list[str] = []
    for key, rule in (rules or {}).items():
        if rule == REQUIRED and defaults[key] == "" and key != fuzzed:
            args += ["-p", f"{key}:={PLACEHOLDER}"]
    return args


def _parameters(module_name: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    module = importlib.import_module(module_name)
    return dict(module.DEFAULTS), getattr(module, "PARAMETER_RULES", None)


def injections() -> Iterator[tuple[str, str, str, str]]:
    """Every (node, key, family, value) the in-process fuzzing injects."""
    for node, module_name in NODE_MODULES.items():
        defaults, _ = _parameters(module_name)
        for key, default in defaults.items():
            for family, value in fuzz_cases(default):
                yield node, key, family, value


def _accepted_is_bad(family: str, value: str, resolved: Any) -> bool:
    if family in MUST_REJECT or resolved is None:
        return True
    items = resolved if isinstance(resolved, list) else [resolved]
    return any(isinstance(v, float) and not math.isfinite(v) for v in items)


def _in_process() -> tuple[Counter[str], dict[str, dict[str, Any]], list[dict[str, Any]]]:
    import rclpy
    from rclpy.node import Node

    from mdemorl_ros.node_parameters import ParameterError, unruled_numbers
    from mdemorl_ros.ros_common import declare

    misbehaving: list[dict[str, Any]] = []
    families: dict[str, dict[str, Any]] = {}
    per_node: Counter[str] = Counter()
    for node_name, module_name in NODE_MODULES.items():
        defaults, rules = _parameters(module_name)
        for key in unruled_numbers(defaults, rules or {}):
            misbehaving.append({"node": node_name, "key": key, "what": "no declared range"})
    rclpy.init()
    try:
        for node_name, key, family, value in injections():
            defaults, rules = _parameters(NODE_MODULES[node_name])
            entry = families.setdefault(family, {"injections": 0, "outcomes": Counter()})
            entry["injections"] += 1
            per_node[node_name] += 1
            node = Node(
                f"fuzz_{node_name}",
                cli_args=[
                    "--ros-args",
                    *base_overrides(NODE_MODULES[node_name], key),
                    "-p",
                    f"{key}:={value}",
                ],
                enable_rosout=False,
            )
            try:
                settings = declare(node, defaults, rules)
            except ParameterError as error:
                outcome = "rejected_naming_key" if error.name == key else "rejected_other_key"
                detail = str(error)
            except Exception as error:  # noqa: BLE001  # what the harness counts
                outcome, detail = "traceback", f"{type(error).__name__}: {error}"
            else:
                resolved = settings[key]
                bad = _accepted_is_bad(family, value, resolved)
                outcome, detail = ("accepted_bad" if bad else "accepted"), repr(resolved)
            finally:
                node.destroy_node()
            entry["outcomes"][outcome] += 1
            if outcome not in ("rejected_naming_key", "accepted"):
                misbehaving.append(
                    {
                        "node": node_name,
                        "key": key,
                        "family": family,
                        "value": value,
                        "outcome": outcome,
                        "detail": detail[:200],
                    }
                )
    finally:
        rclpy.try_shutdown()
    return per_node, families, misbehaving


def _start_cases(quick: bool) -> Iterator[tuple[str, str, str, str]]:
    """A spread of real starts: per node the first injection of each of N families that must
    be rejected, the families' order rotated from node to node so a quick run covers them all."""
    order = sorted(MUST_REJECT)
    by_node: dict[str, list[tuple[str, str, str]]] = {}
    for node, key, family, value in injections():
        by_node.setdefault(node, []).append((key, family, value))
    for index, (node, cases) in enumerate(by_node.items()):
        families = order[index % len(order) :] + order[: index % len(order)]
        picked = 0
        for wanted in families:
            match = next(((k, f, v) for k, f, v in cases if f == wanted), None)
            if match is None or picked >= REAL_STARTS[quick]:
                continue
            picked += 1
            yield node, *match


def real_start(module_name: str, key: str, value: str, salt: int) -> dict[str, Any]:
    """Start the node with one bad parameter; its exit code, time and what stderr named."""
    from stochlite_bringup.ros_test_env import isolated_ros_env

    with tempfile.TemporaryDirectory(prefix="fuzz_node_") as log_dir:
        env = isolated_ros_env(Path(log_dir), salt=salt)
        command = [sys.executable, "-m", module_name, "--ros-args"]
        command += [*base_overrides(module_name, key), "-p", f"{key}:={value}"]
        started = time.perf_counter()
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        try:
            output, _ = process.communicate(timeout=START_TIMEOUT)
            code: int | None = process.returncode
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
            code = None
    seconds = time.perf_counter() - started
    if code is None:
        outcome = "started"
    elif "Traceback" in output:
        outcome = "traceback"
    elif code == 2 and f"'{key}'" in output:
        outcome = "exit2_naming_key"
    else:
        outcome = f"exit{code}"
    last = [line for line in output.strip().splitlines() if line.strip()][-1:] or [""]
    return {"outcome": outcome, "seconds": round(seconds, 2), "message": last[0][:200]}


def run(quick: bool) -> dict[str, Any]:
    started = time.perf_counter()
    per_node, families, misbehaving = _in_process()
    starts: list[dict[str, Any]] = []
    outcomes: Counter[str] = Counter()
    for index, (node, key, family, value) in enumerate(_start_cases(quick)):
        record = real_start(NODE_MODULES[node], key, value, salt=os.getpid() + index)
        record.update({"node": node, "key": key, "family": family, "value": value})
        starts.append(record)
        outcomes[record["outcome"]] += 1
        if record["outcome"] != "exit2_naming_key":
            misbehaving.append(
                {k: record[k] for k in ("node", "key", "value", "outcome", "message")}
            )
    families["real_start"] = {"injections": len(starts), "outcomes": outcomes}
    for entry in families.values():
        entry["outcomes"] = dict(sorted(entry["outcomes"].items()))
    return {
        "suite": "nodes",
        "quick": quick,
        "seconds": round(time.perf_counter() - started, 1),
        "injections": sum(entry["injections"] for entry in families.values()),
        "per_node": dict(per_node),
        "families": dict(sorted(families.items())),
        "real_starts": starts,
        "misbehaving": misbehaving,
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick="--quick" in sys.argv), indent=1))
