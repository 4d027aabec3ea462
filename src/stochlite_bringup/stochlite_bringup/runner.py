"""``launch_runner PACKAGE FILE.launch.py [name:=value ...]`` — ``ros2 launch`` for pip-only machines.

Loads a standard ROS 2 launch file (with :mod:`launch_compat` standing in for ``launch`` and
``launch_ros`` where they are not installed), starts every process it describes, prefixes their
output with the process name, and shuts them all down on Ctrl-C / SIGTERM (SIGINT to each, then
SIGTERM, then SIGKILL after a grace period) or when a process marked ``on_exit=Shutdown()`` ends.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from stochlite_bringup import launch_compat as lc

GRACE_SECONDS = 10.0


def load_launch_description(path: Path) -> Any:
    """Import a launch file and return its ``generate_launch_description()``.

    The stand-ins replace ``launch`` / ``launch_ros`` in this process only; on a full ROS 2
    install use ``ros2 launch`` itself.
    """
    lc.install_as_launch_modules()
    spec = importlib.util.spec_from_file_location(path.stem.replace(".", "_"), path)
    if spec is None or spec.loader is None:
        raise ValueError(f"cannot load launch file {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generate_launch_description()


def parse_launch_arguments(
    items: list[str], declared: list[lc.DeclareLaunchArgument]
) -> dict[str, str]:
    """``name:=value`` pairs, checked against the declared arguments; defaults filled in (a
    default made of substitutions, e.g. a path naming another argument, is resolved last)."""
    known = {arg.name: arg for arg in declared}
    context: dict[str, Any] = {
        a.name: a.default_value for a in declared if a.default_value is not None
    }
    for item in items:
        name, sep, value = item.partition(":=")
        if not sep:
            raise ValueError(f"launch argument '{item}' is not of the form name:=value")
        if name not in known:
            raise ValueError(f"unknown launch argument '{name}'; declared: {sorted(known)}")
        choices = known[name].choices
        if choices is not None and value not in choices:
            raise ValueError(
                f"launch argument '{name}' must be one of {list(choices)}, not '{value}'"
            )
        context[name] = value
    missing = sorted(set(known) - set(context))
    if missing:
        raise ValueError(f"launch arguments without a value: {missing}")
    plain = {k: v for k, v in context.items() if isinstance(v, str)}
    return {k: v if isinstance(v, str) else str(lc.resolve(v, plain)) for k, v in context.items()}


def node_command(node: lc.Node, context: dict[str, str], scratch: Path) -> list[str]:
    """The command line of a ``launch_ros`` Node, as ``ros2 launch`` would build it."""
    from ament_index_python.packages import get_package_prefix

    executable = Path(get_package_prefix(node.package)) / "lib" / node.package / node.executable
    if not executable.exists():
        raise FileNotFoundError(
            f"executable '{node.executable}' not found in package '{node.package}'"
        )
    cmd = [str(executable), *[str(lc.resolve(a, context)) for a in node.arguments], "--ros-args"]
    if node.name:
        cmd += ["-r", f"__node:={lc.resolve(node.name, context)}"]
    if node.namespace:
        cmd += ["-r", f"__ns:={lc.resolve(node.namespace, context)}"]
    for index, params in enumerate(node.parameters):
        if isinstance(params, dict):
            # As launch_ros does: values produced by substitutions are parsed as YAML scalars.
            params = {
                name: yaml.safe_load(lc.resolve(value, context))
                if isinstance(value, lc.LaunchConfiguration)
                else lc.resolve(value, context)
                for name, value in params.items()
            }
            path = scratch / f"{node.executable}_{index}.yaml"
            path.write_text(yaml.safe_dump({"/**": {"ros__parameters": params}}))
            params = str(path)
        cmd += ["--params-file", str(lc.resolve(params, context))]
    for source, target in node.remappings:
        cmd += ["-r", f"{lc.resolve(source, context)}:={lc.resolve(target, context)}"]
    return cmd


class _Process:
    def __init__(
        self, name: str, cmd: list[str], env: dict[str, str], shutdown_on_exit: bool
    ) -> None:
        self.name = name
        self.shutdown_on_exit = shutdown_on_exit
        self.popen = subprocess.Popen(
            cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            sys.stdout.write(f"[{self.name}] {line}")
            sys.stdout.flush()


def run(description: Any, context: dict[str, str]) -> int:
    """Start every process of ``description`` and supervise them; returns the exit status."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    processes: list[_Process] = []
    with tempfile.TemporaryDirectory(prefix="launch_runner_") as scratch:
        for entity in description.entities:
            if isinstance(entity, lc.DeclareLaunchArgument):
                continue
            if entity.condition is not None and not entity.condition.evaluate(context):
                continue
            env = dict(os.environ, PYTHONUNBUFFERED="1", **(entity.additional_env or {}))
            if isinstance(entity, lc.Node):
                cmd = node_command(entity, context, Path(scratch))
                name = str(lc.resolve(entity.name, context) or entity.executable)
            elif isinstance(entity, lc.ExecuteProcess):
                cmd = [str(lc.resolve(part, context)) for part in entity.cmd]
                name = entity.name or Path(cmd[0]).name
            else:
                raise TypeError(f"unsupported launch entity {type(entity).__name__}")
            print(f"[launch_runner] starting {name}: {' '.join(cmd)}", flush=True)
            processes.append(_Process(name, cmd, env, entity.on_exit is not None))
        status = _supervise(processes, stop)
    return status


def _supervise(processes: list[_Process], stop: threading.Event) -> int:
    status = 0
    while not stop.is_set():
        running = [p for p in processes if p.popen.poll() is None]
        ended = [p for p in processes if p.popen.returncode is not None]
        if any(p.shutdown_on_exit for p in ended) or not running:
            break
        time.sleep(0.05)
    for p in processes:
        if p.popen.poll() is None:
            p.popen.send_signal(signal.SIGINT)
    deadline = time.monotonic() + GRACE_SECONDS
    for p in processes:
        try:
            p.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"[launch_runner] {p.name} ignored SIGINT; terminating", flush=True)
            p.popen.terminate()
            try:
                p.popen.wait(timeout=3.0)
            except subprocess.TimeoutExpired:
                p.popen.kill()
                p.popen.wait()
        code = p.popen.returncode
        print(f"[launch_runner] {p.name} exited with {code}", flush=True)
        if code not in (0, -signal.SIGINT, -signal.SIGTERM) and not stop.is_set():
            status = 1
    return status


def _shown(value: Any) -> str:
    """A default as ``ros2 launch --show-args`` writes it: substitutions as ``$(var name)``."""
    if isinstance(value, lc.LaunchConfiguration):
        return f"$(var {value.variable_name})"
    if isinstance(value, list | tuple):
        return "".join(_shown(v) for v in value)
    return str(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="launch_runner", description=__doc__.splitlines()[0])
    parser.add_argument("package", help="package whose share/<package>/launch holds the file")
    parser.add_argument("launch_file", help="launch file name, or a path to one")
    parser.add_argument("arguments", nargs="*", help="launch arguments, name:=value")
    parser.add_argument(
        "--show-args", action="store_true", help="list the launch arguments and exit"
    )
    args = parser.parse_args(argv)
    path = Path(args.launch_file)
    if not path.exists():
        from ament_index_python.packages import get_package_share_directory

        path = Path(get_package_share_directory(args.package)) / "launch" / args.launch_file
    if not path.exists():
        parser.error(f"launch file not found: {path}")
    description = load_launch_description(path)
    declared = [e for e in description.entities if isinstance(e, lc.DeclareLaunchArgument)]
    if args.show_args:
        for arg in declared:
            print(f"'{arg.name}': {arg.description} (default: '{_shown(arg.default_value)}')")
        return 0
    try:
        context = parse_launch_arguments(args.arguments, declared)
    except ValueError as error:
        parser.error(str(error))
    return run(description, context)


if __name__ == "__main__":
    sys.exit(main())
