"""The pip-only launch runner: argument handling, node command lines and process supervision."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from stochlite_bringup import launch_compat as lc
from stochlite_bringup.runner import (
    load_launch_description,
    node_command,
    parse_launch_arguments,
)

LAUNCH_FILE = textwrap.dedent(
    """
    import sys
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, ExecuteProcess, Shutdown
    from launch.substitutions import LaunchConfiguration

    SERVER = '''
    import signal, sys, time
    def stop(*_):
        open(sys.argv[1], "w").write("clean")
        sys.exit(0)
    signal.signal(signal.SIGINT, stop)
    print("server up", flush=True)
    while True:
        time.sleep(0.05)
    '''

    def generate_launch_description():
        marker = LaunchConfiguration("marker")
        return LaunchDescription([
            DeclareLaunchArgument("marker", description="file the server writes on SIGINT"),
            DeclareLaunchArgument("job_seconds", default_value="1.0"),
            ExecuteProcess(cmd=[sys.executable, "-c", SERVER, marker], name="server"),
            ExecuteProcess(
                cmd=[sys.executable, "-c", "import sys, time; time.sleep(float(sys.argv[1]))",
                     LaunchConfiguration("job_seconds")],
                name="job",
                on_exit=Shutdown(),
            ),
        ])
    """
)


def _write_launch_file(tmp_path: Path) -> Path:
    path = tmp_path / "demo.launch.py"
    path.write_text(LAUNCH_FILE)
    return path


def test_arguments_are_checked_against_declarations(tmp_path: Path) -> None:
    description = load_launch_description(_write_launch_file(tmp_path))
    declared = [e for e in description.entities if isinstance(e, lc.DeclareLaunchArgument)]
    assert parse_launch_arguments(["marker:=/x"], declared) == {
        "marker": "/x",
        "job_seconds": "1.0",
    }
    with pytest.raises(ValueError, match="unknown launch argument 'nope'"):
        parse_launch_arguments(["marker:=/x", "nope:=1"], declared)
    with pytest.raises(ValueError, match="without a value: \\['marker'\\]"):
        parse_launch_arguments([], declared)
    with pytest.raises(ValueError, match="name:=value"):
        parse_launch_arguments(["marker=/x"], declared)


@pytest.mark.ros
def test_node_command_matches_ros2_launch_conventions(tmp_path: Path) -> None:
    node = lc.Node(
        package="leg2r_driver",
        executable="sim_robot_node",
        name=lc.LaunchConfiguration("node_name"),
        namespace="leg",
        parameters=["/cfg/a.yaml", {"rate": 500.0}],
        remappings=[("/joint_states", "/leg/joint_states")],
    )
    cmd = node_command(node, {"node_name": "runner_under_test"}, tmp_path)
    assert cmd[0].endswith("lib/leg2r_driver/sim_robot_node")
    assert cmd[1:] == [
        "--ros-args",
        "-r",
        "__node:=runner_under_test",
        "-r",
        "__ns:=leg",
        "--params-file",
        "/cfg/a.yaml",
        "--params-file",
        str(tmp_path / "sim_robot_node_1.yaml"),
        "-r",
        "/joint_states:=/leg/joint_states",
    ]
    assert "rate: 500.0" in (tmp_path / "sim_robot_node_1.yaml").read_text()


def test_shutdown_on_exit_stops_every_process_cleanly(tmp_path: Path) -> None:
    marker = tmp_path / "marker.txt"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "stochlite_bringup.runner",
            "stochlite_bringup",
            str(_write_launch_file(tmp_path)),
            f"marker:={marker}",
            "job_seconds:=1.5",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[server] server up" in result.stdout
    assert marker.read_text() == "clean"


def test_ctrl_c_forwards_sigint_to_children(tmp_path: Path) -> None:
    marker = tmp_path / "marker.txt"
    runner = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stochlite_bringup.runner",
            "stochlite_bringup",
            str(_write_launch_file(tmp_path)),
            f"marker:={marker}",
            "job_seconds:=60",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert runner.stdout is not None
    for line in runner.stdout:
        # The runner echoes the command line (which contains the text too): wait for the output.
        if line.startswith("[server] server up"):
            break
    time.sleep(0.2)
    runner.send_signal(signal.SIGINT)
    runner.communicate(timeout=30)
    assert runner.returncode == 0
    assert marker.read_text() == "clean"


def test_equals_conditions_and_defaults_made_of_substitutions() -> None:
    robot = lc.LaunchConfiguration("robot")
    declared = [
        lc.DeclareLaunchArgument("robot", default_value="leg2r"),
        lc.DeclareLaunchArgument("config", default_value=["/cfg/trainer_", robot, ".yaml"]),
        lc.DeclareLaunchArgument("mode", default_value="policy", choices=["policy", "mpc"]),
    ]
    context = parse_launch_arguments(["robot:=quad"], declared)
    assert context["config"] == "/cfg/trainer_quad.yaml"
    mpc_only = lc.IfCondition(lc.EqualsSubstitution(lc.LaunchConfiguration("mode"), "mpc"))
    assert not mpc_only.evaluate(context)
    assert mpc_only.evaluate(parse_launch_arguments(["mode:=mpc"], declared))
    with pytest.raises(ValueError, match="must be one of"):
        parse_launch_arguments(["mode:=both"], declared)
