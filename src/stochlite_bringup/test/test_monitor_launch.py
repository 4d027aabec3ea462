"""monitor.launch.py: train.launch.py starts its Foxglove bridge only with monitor:=true, bound to
127.0.0.1:8765 by default; launched alone through launch_runner, the bridge serves WebSocket
clients and stops cleanly on SIGINT."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import websockets
import yaml
from ament_index_python.packages import get_package_share_directory

from stochlite_bringup import launch_compat as lc
from stochlite_bringup.ros_test_env import isolated_ros_env
from stochlite_bringup.runner import load_launch_description, node_command, parse_launch_arguments

pytestmark = pytest.mark.ros

LAUNCH_DIR = Path(get_package_share_directory("stochlite_bringup")) / "launch"


def started_nodes(launch_file: str, arguments: list[str]) -> tuple[dict[str, Any], dict[str, str]]:
    description = load_launch_description(LAUNCH_DIR / launch_file)
    declared = [e for e in description.entities if isinstance(e, lc.DeclareLaunchArgument)]
    context = parse_launch_arguments(arguments, declared)
    nodes = {
        e.name: e
        for e in description.entities
        if isinstance(e, lc.Node) and (e.condition is None or e.condition.evaluate(context))
    }
    return nodes, context


def bridge_parameters(node: Any, context: dict[str, str], scratch: Path) -> dict[str, Any]:
    command = node_command(node, context, scratch)
    files = [command[i + 1] for i, item in enumerate(command) if item == "--params-file"]
    parameters: dict[str, Any] = {}
    for path in files:
        parameters.update(yaml.safe_load(Path(path).read_text())["/**"]["ros__parameters"])
    return parameters


def test_train_launch_starts_the_bridge_only_with_monitor(tmp_path: Path) -> None:
    plain, _ = started_nodes("train.launch.py", [])
    assert "foxglove_bridge" not in plain
    assert {"torque_controller_node", "trainer_node"} <= set(plain)
    monitored, context = started_nodes("train.launch.py", ["monitor:=true"])
    assert set(monitored) == set(plain) | {"foxglove_bridge"}
    parameters = bridge_parameters(monitored["foxglove_bridge"], context, tmp_path)
    assert parameters == {"address": "127.0.0.1", "port": 8765}
    chosen, context = started_nodes(
        "train.launch.py", ["monitor:=true", "foxglove_address:=0.0.0.0", "foxglove_port:=9000"]
    )
    parameters = bridge_parameters(chosen["foxglove_bridge"], context, tmp_path)
    assert parameters == {"address": "0.0.0.0", "port": 9000}


async def _server_info(url: str) -> tuple[dict[str, Any], set[str]]:
    async with websockets.connect(url, subprotocols=["foxglove.sdk.v1"]) as ws:
        info = json.loads(await ws.recv())
        advertise = json.loads(await ws.recv())
    return info, {channel["topic"] for channel in advertise["channels"]}


def test_monitor_launch_serves_foxglove(tmp_path: Path) -> None:
    env = isolated_ros_env(tmp_path / "log", salt=29)
    runner = subprocess.Popen(
        ["launch_runner", "stochlite_bringup", "monitor.launch.py", "foxglove_port:=0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert runner.stdout is not None
    lines: list[str] = []
    url = ""
    deadline = time.monotonic() + 20.0
    try:
        while not url and time.monotonic() < deadline:
            line = runner.stdout.readline()
            if not line:
                break
            lines.append(line)
            found = re.search(r"foxglove bridge on (ws://\S+):", line)
            url = found.group(1) if found else ""
        assert url.startswith("ws://127.0.0.1:"), "".join(lines)
        info, topics = asyncio.run(asyncio.wait_for(_server_info(url), 10.0))
        assert info["op"] == "serverInfo"
        for topic in ("/mdemorl/tracking", "/joint_states", "/imu/data", "/diagnostics"):
            assert topic in topics
        assert "/robot_description" in topics
    finally:
        runner.send_signal(signal.SIGINT)
        output, _ = runner.communicate(timeout=30.0)
    assert runner.returncode == 0, "".join(lines) + output
