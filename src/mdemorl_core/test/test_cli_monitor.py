"""`mdemorl monitor` without the ROS workspace: a clear error, and mdemorl_core imports no ROS."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mdemorl_core.cli import main


def test_monitor_without_the_workspace_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setenv("AMENT_PREFIX_PATH", "")
    assert main(["monitor", "--duration", "1"]) == 2
    error = capsys.readouterr().err
    assert "mdemorl_monitor" in error and "source install/setup.bash" in error


def test_cli_imports_no_ros() -> None:
    code = "import sys, mdemorl_core.cli; print(sorted(m for m in sys.modules if 'rclpy' in m))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
