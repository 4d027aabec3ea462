"""Environment for ROS processes started by tests and tools: isolated, local-only, quiet logs."""

from __future__ import annotations

import os
from pathlib import Path

# Domain ids 1..101 are free of the ephemeral port clashes documented for Fast DDS on Linux.
_DOMAIN_RANGE = 100


def isolated_ros_env(log_dir: Path, salt: int = 0) -> dict[str, str]:
    """Return a copy of ``os.environ`` for a process that must not hear any other test.

    Each caller gets its own ``ROS_DOMAIN_ID`` (from the pid and ``salt``), discovery is limited
    to localhost, and rclpy logs go to ``log_dir`` instead of ``~/.ros/log``.
    """
    env = dict(os.environ)
    env["ROS_DOMAIN_ID"] = str(1 + (os.getpid() + salt) % _DOMAIN_RANGE)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env["ROS_LOG_DIR"] = str(log_dir)
    env["PYTHONUNBUFFERED"] = "1"
    return env
