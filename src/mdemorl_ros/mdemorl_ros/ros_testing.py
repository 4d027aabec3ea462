"""Harness for multi-process ROS tests and benchmarks: isolated domain, node subprocesses, probe.

Each harness picks a ROS domain from the process id, restricts discovery to localhost and puts
ROS logs in a temporary directory, so parallel test runs do not hear each other.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node

ROS_VARIABLES = ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_LOG_DIR")


def pick_domain_id(salt: int = 0) -> int:
    """A ROS domain in 0..101 derived from the pid (and a salt for several harnesses)."""
    return (os.getpid() + 37 * salt) % 100 + 1


def format_parameter(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(format_parameter(v) for v in value) + "]"
    if isinstance(value, str):
        return value
    return repr(value)


class RosHarness:
    """Owns an rclpy context (for a probe node in this process) and node subprocesses."""

    def __init__(self, salt: int = 0) -> None:
        self.log_dir = tempfile.mkdtemp(prefix="mdemorl_ros_log_")
        self.env = dict(os.environ)
        self.env.update(
            ROS_DOMAIN_ID=str(pick_domain_id(salt)),
            ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
            ROS_LOG_DIR=self.log_dir,
            PYTHONUNBUFFERED="1",
        )
        self._saved_environ = {key: os.environ.get(key) for key in ROS_VARIABLES}
        for key in ROS_VARIABLES:
            os.environ[key] = self.env[key]
        self.context = Context()
        rclpy.init(context=self.context, domain_id=int(self.env["ROS_DOMAIN_ID"]))
        self.executor = SingleThreadedExecutor(context=self.context)
        self.processes: list[subprocess.Popen[bytes]] = []
        self.outputs: dict[int, Path] = {}

    def node(self, name: str) -> Node:
        node = Node(name, context=self.context)
        self.executor.add_node(node)
        return node

    def start(
        self,
        module: str,
        parameters: dict[str, Any] | None = None,
        params_file: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start ``python -m <module>`` with ROS parameters; output goes to a log file."""
        command = [sys.executable, "-m", module, "--ros-args"]
        if params_file is not None:
            command += ["--params-file", str(params_file)]
        for key, value in (parameters or {}).items():
            command += ["-p", f"{key}:={format_parameter(value)}"]
        log_path = Path(self.log_dir) / f"{module.rsplit('.', 1)[-1]}_{len(self.processes)}.out"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.processes.append(process)
        self.outputs[process.pid] = log_path
        return process

    def output(self, process: subprocess.Popen[bytes]) -> str:
        return self.outputs[process.pid].read_text(errors="replace")

    def spin_until(self, condition: Callable[[], bool], timeout: float, step: float = 0.01) -> bool:
        """Spin the probe executor until ``condition()`` holds or ``timeout`` seconds pass."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=step)
            if condition():
                return True
        return condition()

    def spin_for(self, seconds: float) -> None:
        self.spin_until(lambda: False, seconds)

    def call(self, client: Any, request: Any, timeout: float = 10.0) -> Any:
        if not client.wait_for_service(timeout_sec=timeout):
            raise TimeoutError(f"service {client.srv_name} not available")
        future = client.call_async(request)
        self.spin_until(future.done, timeout)
        if not future.done():
            raise TimeoutError(f"service {client.srv_name} did not answer")
        return future.result()

    @staticmethod
    def terminate(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
        """Send ``sig`` and wait (killing after 10 s); returns the exit code."""
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout=10.0)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return int(process.returncode)

    def close(self, processes: Sequence[subprocess.Popen[bytes]] | None = None) -> None:
        for process in processes or self.processes:
            self.terminate(process)
        self.executor.shutdown()
        rclpy.try_shutdown(context=self.context)
        for key, value in self._saved_environ.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(self.log_dir, ignore_errors=True)
