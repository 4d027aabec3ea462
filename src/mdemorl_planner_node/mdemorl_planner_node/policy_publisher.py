"""policy_publisher — deploys a finished run's actor: publishes it once on ``/mdemorl/policy``
(transient local, so a controller that starts later still gets it) as a continuous request
(``acting_steps`` 0), then stays up so the latched message stays available. No training.

Parameters: run_dir (string, required): a run directory (``mdemorl train``, the trainer node or
``mdemorl retrain``), whose last checkpoint's actor is published with version = its epoch, or an
actor file written by ``mdemorl export`` (published with the version it holds).
"""

from __future__ import annotations

import sys
from pathlib import Path

from rclpy.node import Node

from mdemorl_core.policy_io import sha256_hex
from mdemorl_core.training.actor_file import load_deployable_actor
from mdemorl_core.training.run_dir import RunDirError
from mdemorl_msgs.msg import PolicyUpdate
from mdemorl_ros.node_parameters import REQUIRED, Rule
from mdemorl_ros.ros_common import POLICY_QOS, POLICY_TOPIC, declare, run_node

DEFAULTS: dict[str, object] = {"run_dir": ""}
PARAMETER_RULES: dict[str, Rule] = {"run_dir": REQUIRED}
"""The value rules of DEFAULTS (node_parameters); ros_common.declare enforces them."""


class PolicyPublisher(Node):
    def __init__(self) -> None:
        super().__init__("policy_publisher")
        run_dir = str(declare(self, DEFAULTS, PARAMETER_RULES)["run_dir"])
        blob, version, algorithm, obs_dim, act_dim = load_deployable_actor(Path(run_dir))
        msg = PolicyUpdate(
            version=version,
            algorithm=algorithm,
            observation_dim=obs_dim,
            action_dim=act_dim,
            weights=blob,
            checksum=sha256_hex(blob),
            acting_steps=0,
        )
        msg.header.stamp = self.get_clock().now().to_msg()
        self.create_publisher(PolicyUpdate, POLICY_TOPIC, POLICY_QOS).publish(msg)
        self.get_logger().info(f"deployed the {algorithm} actor of {run_dir}, version {version}")


def main(args: list[str] | None = None) -> None:
    try:
        run_node(PolicyPublisher, args)
    except (ValueError, RunDirError, OSError) as error:
        print(f"policy_publisher: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
