"""The 500 Hz loop with the monitoring tools attached, against the same loop without them.

Runs :mod:`control_loop_bench`'s measurement twice, back to back with the same settings: "idle"
(sim robot + torque controller) and "monitored": the same plus the Foxglove bridge with a
WebSocket client subscribed to every channel it advertises (so the bridge forwards everything:
100 Hz tracking, 500 Hz joint states, IMU, diagnostics, ...) and ``mdemorl_monitor`` (the
terminal dashboard) drawing in a tmux pane. Prints the loop statistics of both as JSON, with the
messages the client received, and writes ``<results dir>/control_loop_monitored.json`` (``--out-dir``).

Run with the workspace sourced: ``python bench/control_loop_monitored.py [--seconds 30]
[--realtime-priority 10]``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import control_loop_bench as bench
from _common import base_parser, emit

from mdemorl_ros.ros_testing import RosHarness

KEYS = ("rate_hz", "period_p50_ms", "period_p99_ms", "period_max_ms", "missed", "window_closed")

CLIENT = """
import asyncio, json, signal, sys
import websockets

counts = {}

async def main(url, out):
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with websockets.connect(url, subprotocols=["foxglove.sdk.v1"], max_queue=None) as ws:
        topics = {}
        async def receive():
            async for message in ws:
                if isinstance(message, bytes):
                    sub = int.from_bytes(message[1:5], "little")
                    counts[topics[sub]] = counts.get(topics[sub], 0) + 1
                    continue
                body = json.loads(message)
                if body["op"] == "advertise":
                    subs = []
                    for channel in body["channels"]:
                        topics[channel["id"]] = channel["topic"]
                        subs.append({"id": channel["id"], "channelId": channel["id"]})
                    await ws.send(json.dumps({"op": "subscribe", "subscriptions": subs}))
        task = asyncio.create_task(receive())
        await stop.wait()
        task.cancel()
    open(out, "w").write(json.dumps(counts))

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


class Monitoring:
    """Starts the bridge, its client and the dashboard for a scenario; ``close`` collects."""

    def __init__(self) -> None:
        self.work = Path(tempfile.mkdtemp(prefix="monitored_"))
        self.socket = f"mdemorl_bench_{id(self)}"
        self.counts_file = self.work / "counts.json"
        self.client: subprocess.Popen[bytes] | None = None

    def start(self, harness: RosHarness) -> list[subprocess.Popen[bytes]]:
        bridge = harness.start("mdemorl_planner_node.foxglove_bridge", {"port": 0})
        url = ""
        deadline = time.monotonic() + 30.0
        while not url and time.monotonic() < deadline:
            found = re.search(r"foxglove bridge on (ws://\S+):", harness.output(bridge))
            url = found.group(1) if found else ""
            time.sleep(0.1)
        if not url:
            raise RuntimeError(f"bridge did not start:\n{harness.output(bridge)}")
        self.client = subprocess.Popen(
            [sys.executable, "-c", CLIENT, url, str(self.counts_file)], env=harness.env
        )
        variables = " ".join(f"{k}={v}" for k, v in harness.env.items() if k.startswith("ROS_"))
        dashboard = f"{sys.executable} -m mdemorl_planner_node.monitor_dashboard"
        subprocess.run(
            ["tmux", "-L", self.socket, "new-session", "-d", "-x", "130", "-y", "50"]
            + [f"env {variables} {dashboard}"],
            check=True,
            env=harness.env,
        )
        # The client last: run_scenario terminates these in order, after the measurement.
        return [bridge, self.client]

    def close(self) -> dict[str, object]:
        pane = subprocess.run(
            ["tmux", "-L", self.socket, "capture-pane", "-p"], capture_output=True, text=True
        ).stdout
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)
        counts = json.loads(self.counts_file.read_text()) if self.counts_file.exists() else {}
        return {
            "client_messages": counts,
            "dashboard_showed_controller_loop": "torque_controller_node" in pane,
        }


def main() -> None:
    parser = base_parser(__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="measured seconds per run")
    parser.add_argument("--realtime-priority", type=int, default=10)
    parser.add_argument("--executor", choices=["thread", "inline"], default="inline")
    args = parser.parse_args()
    monitoring = Monitoring()
    bench.SCENARIOS["monitored"] = monitoring.start
    results: dict[str, dict[str, object]] = {}
    for name in ("idle", "monitored"):
        record = bench.run_scenario(name, args.seconds, args.executor, args.realtime_priority)
        results[name] = {key: record[key] for key in KEYS}
        results[name].update(
            scheduling=record["scheduling"],
            load_average_1min=record["load_average_1min"],
            steal_s=record["steal_s"],
            transitions=record["transitions"],
        )
    results["monitored"].update(monitoring.close())
    payload = {"seconds": args.seconds, "cpu_count": os.cpu_count(), "runs": results}
    emit("control_loop_monitored", payload, quick=args.quick, out_dir=args.out_dir)


if __name__ == "__main__":
    main()
