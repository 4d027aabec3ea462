"""trainer_node — Algorithm 1 on a live robot: learns from ``/mdemorl/transition``, publishes
versioned actors on ``/mdemorl/policy`` and progress on ``/mdemorl/training_status``, checkpoints
every epoch and records the experience to a rosbag2 (MCAP) for offline retraining.

Transitions are queued by the subscription callback and consumed by a training thread, so the
robot keeps acting (with the previous policy) and nothing is lost while an epoch's model, planner
and SAC updates run. All learning is ``mdemorl_core.training.online.OnlineTrainer``.

Parameters (see stochlite_bringup/config/trainer.yaml):
  run_dir (string, required), env_id ("Leg2R-v0"), algo ("mdemorl"), epochs (20),
  steps_per_epoch (1000), seed (0), device ("cpu"), config_file ("": YAML of mdemorl train's
  config), overrides (string[]: "key=value" as mdemorl train --set), resume (false),
  record_bag (true), torch_threads (1: leave the other core to the 500 Hz loop), niceness (0: the
  trainer raises its main thread's nice value by this much at start-up, before the training
  thread and torch's worker threads start, so they inherit it and yield the CPU to the control
  loops where they run without SCHED_FIFO; launch argument trainer_niceness).
"""

from __future__ import annotations

import collections
import math
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

from leg2r_driver.ros_common import (
    EFFORT_COMMAND_TOPIC,
    IMU_TOPIC,
    JOINT_STATES_TOPIC,
    MONITOR_QOS,
    POLICY_QOS,
    POLICY_TOPIC,
    TRANSITION_QOS,
    TRANSITION_TOPIC,
)
from mdemorl_core.config import ConfigError, build_train_config, read_yaml_mapping
from mdemorl_core.envs_util import make_env, space_dims
from mdemorl_core.policy_io import sha256_hex
from mdemorl_core.training.online import OnlineTrainer
from mdemorl_msgs.msg import PolicyUpdate, TrainingStatus, Transition
from mdemorl_planner_node.bag_recorder import BagRecorder

STATUS_TOPIC = "/mdemorl/training_status"
# The recorder listens best effort (matches the loop's best-effort publishers) with a deeper queue.
RECORD_STATE_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.BEST_EFFORT
)


class TrainerNode(Node):
    def __init__(self) -> None:
        super().__init__("trainer_node")
        p = {
            name: self.declare_parameter(name, default).value
            for name, default in (
                ("run_dir", ""),
                ("env_id", "Leg2R-v0"),
                ("algo", "mdemorl"),
                ("epochs", 20),
                ("steps_per_epoch", 1000),
                ("seed", 0),
                ("device", "cpu"),
                ("config_file", ""),
                ("overrides", [""]),
                ("resume", False),
                ("record_bag", True),
                ("torch_threads", 1),
                ("niceness", 0),
            )
        }
        if not p["run_dir"]:
            raise ValueError("parameter 'run_dir' is required (where the run is written)")
        if p["niceness"] < 0:
            raise ValueError(f"parameter 'niceness' must be >= 0, got {p['niceness']}")
        if p["niceness"]:
            self.get_logger().info(f"nice value now {os.nice(p['niceness'])}")
        document: dict[str, Any] = (
            read_yaml_mapping(Path(p["config_file"])) if p["config_file"] else {}
        )
        for key in (
            "env_id",
            "algo",
            "epochs",
            "steps_per_epoch",
            "seed",
            "device",
            "torch_threads",
        ):
            document[key] = p[key]
        config = build_train_config(document, [o for o in p["overrides"] if o])
        if config.torch_threads:
            import torch

            torch.set_num_threads(config.torch_threads)
        env = make_env(config.env_id, config.seed, config.max_episode_steps, **config.env_kwargs)
        obs_dim, act_dim = space_dims(env)
        env.close()
        run_dir = Path(str(p["run_dir"]))
        self.trainer = OnlineTrainer(config, run_dir, obs_dim, act_dim, resume=bool(p["resume"]))
        self.queue: collections.deque[Transition] = collections.deque()
        self.finished = threading.Event()
        self.stopping = threading.Event()
        self.policy_pub = self.create_publisher(PolicyUpdate, POLICY_TOPIC, POLICY_QOS)
        self.status_pub = self.create_publisher(TrainingStatus, STATUS_TOPIC, MONITOR_QOS)
        self.create_subscription(Transition, TRANSITION_TOPIC, self.on_transition, TRANSITION_QOS)
        self.recorder: BagRecorder | None = None
        if p["record_bag"]:
            bag = run_dir / f"bag_{time.strftime('%Y%m%d_%H%M%S')}"
            self.recorder = BagRecorder(
                self,
                bag,
                {
                    TRANSITION_TOPIC: ("mdemorl_msgs/msg/Transition", TRANSITION_QOS),
                    JOINT_STATES_TOPIC: ("sensor_msgs/msg/JointState", RECORD_STATE_QOS),
                    EFFORT_COMMAND_TOPIC: ("mdemorl_msgs/msg/EffortCommand", RECORD_STATE_QOS),
                    IMU_TOPIC: ("sensor_msgs/msg/Imu", RECORD_STATE_QOS),
                },
            )
            self.get_logger().info(f"recording {bag}")
        if self.trainer.epoch > 0:
            self.publish_policy()
        self.worker = threading.Thread(target=self.train_forever, name="training", daemon=True)
        self.worker.start()
        self.get_logger().info(
            f"training {config.algo} on {config.env_id}: {config.epochs} epochs x "
            f"{config.steps_per_epoch} transitions, run {run_dir}"
        )

    def on_transition(self, msg: Transition) -> None:
        self.queue.append(msg)

    def train_forever(self) -> None:
        while not self.stopping.is_set() and not self.trainer.done:
            if not self.queue:
                time.sleep(0.005)
                continue
            msg = self.queue.popleft()
            try:
                self.trainer.add(
                    msg.observation,
                    msg.action,
                    msg.reward,
                    msg.next_observation,
                    msg.terminated,
                    msg.truncated,
                )
            except ValueError as error:
                self.get_logger().warning(str(error), throttle_duration_sec=5.0)
                continue
            if self.trainer.epoch_ready():
                row = self.trainer.run_epoch()
                self.publish_policy()
                self.publish_status(row)
                self.get_logger().info(
                    f"epoch {int(row['epoch'])}/{self.trainer.config.epochs}: train return "
                    f"{row['train_return']:.2f}, model loss {row['model_loss']:.3f}, "
                    f"{row['epoch_seconds']:.1f} s; {len(self.queue)} transitions queued"
                )
        if self.trainer.done:
            self.finished.set()

    def publish_policy(self) -> None:
        blob = self.trainer.policy_blob()
        msg = PolicyUpdate()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.version = self.trainer.epoch
        msg.algorithm = self.trainer.config.algo
        msg.observation_dim = self.trainer.obs_dim
        msg.action_dim = self.trainer.act_dim
        msg.weights = blob
        msg.checksum = sha256_hex(blob)
        self.policy_pub.publish(msg)

    def publish_status(self, row: dict[str, float]) -> None:
        msg = TrainingStatus()
        msg.header.stamp = self.get_clock().now().to_msg()
        for name in ("eval_return", "train_return", "model_loss", "critic_loss", "actor_loss"):
            setattr(msg, name, float(row[name]))
        msg.alpha = float(row["alpha"])
        msg.epoch = int(row["epoch"])
        msg.env_steps = int(row["env_steps"])
        msg.horizon = _count(row["horizon"])
        msg.mpc_batch = _count(row["mpc_batch"])
        msg.d_env = _count(row["d_env"])
        msg.d_mpc = _count(row["d_mpc"])
        msg.epoch_seconds = float(row["epoch_seconds"])
        self.status_pub.publish(msg)

    def close(self) -> None:
        self.stopping.set()
        # An epoch in progress is abandoned: the last checkpoint and the bag keep the data.
        self.worker.join(timeout=5.0)
        if self.recorder is not None:
            self.recorder.close()


def _count(value: float) -> int:
    return 0 if math.isnan(value) else int(value)


def main(args: list[str] | None = None) -> None:
    rclpy.init(args=args)
    try:
        node = TrainerNode()
    except (ValueError, ConfigError, OSError) as error:
        print(f"trainer_node: {error}", file=sys.stderr)
        rclpy.try_shutdown()
        sys.exit(2)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        while rclpy.ok() and not node.finished.is_set():
            executor.spin_once(timeout_sec=0.1)
        if node.finished.is_set():
            rows = node.trainer.rows
            node.get_logger().info(
                f"training finished: {len(rows)} epochs, run directory {node.trainer.paths.root}"
            )
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.close()
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
