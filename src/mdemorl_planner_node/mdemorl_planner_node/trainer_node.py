"""trainer_node — Algorithm 1 on a live robot: learns from ``/mdemorl/transition``, publishes
versioned actors on ``/mdemorl/policy`` and progress on ``/mdemorl/training_status``, checkpoints
every epoch and records the experience to a rosbag2 (MCAP) for offline retraining.

Every valid transition received is stored in the agent's D_ENV by the subscription callback
itself; nothing is queued for later except the transitions that arrive while an update runs (the
update reads D_ENV), which are stored as soon as it ends. The update (``OnlineTrainer.run_epoch``,
the agent's once-per-epoch ``Agent.update``) runs in a training thread.

Protocols (``protocol``):
- ``episodic`` (default): each PolicyUpdate is an acting request for ``steps_per_epoch`` policy
  steps (version 0 at start, uniform random actions while D_ENV is below the agent's
  ``initial_random_steps``). The torque controller acts them in a new episode, then holds its
  safe pose while the trainer updates; the next version starts the next epoch. Only transitions
  of the latest published version count toward an epoch (older ones, e.g. the rest of a phase a
  killed trainer asked for, are stored and reported as stale). No request follows the last epoch.
- ``async``: the controller acts continuously with the latest policy; an epoch is due whenever
  ``steps_per_epoch`` new transitions arrived, whatever version produced them. With the agent's
  ``update_mode: epoch`` the update runs then; with ``update_mode: interleaved`` (the schedule
  of ``mdemorl train``'s interleaved runs) the training thread takes the transitions in arrival
  order and runs the agent's due work after each (``OnlineTrainer.add``), publishing the actor
  every ``policy_push_every`` SAC steps (version = SAC steps // policy_push_every) and at every
  epoch's end; the epoch itself only logs and checkpoints. ``episodic`` needs ``epoch`` (the
  robot holds while the trainer updates).

``/mdemorl/training_status`` and ``/diagnostics``: :mod:`mdemorl_planner_node.trainer_reports`.

Parameters: :mod:`mdemorl_planner_node.trainer_parameters`.
"""

from __future__ import annotations

import collections
import contextlib
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy._rclpy_pybind11 import RCLInvalidROSArgsError
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node

from mdemorl_core.config import ConfigError, build_train_config, read_yaml_mapping
from mdemorl_core.envs.task_hash import task_hash_of
from mdemorl_core.envs_util import make_env, space_dims
from mdemorl_core.policy_io import sha256_hex
from mdemorl_core.training.online import OnlineTrainer
from mdemorl_msgs.msg import ControllerPhase, PolicyUpdate, TrainingStatus, Transition
from mdemorl_planner_node.bag_recorder import TRAINING_TOPICS, BagRecorder
from mdemorl_planner_node.trainer_parameters import DEFAULTS, PARAMETER_RULES, resolve_node_config
from mdemorl_planner_node.trainer_reports import trainer_diagnostics, training_status
from mdemorl_ros.protocol import PHASE_REJECTIONS
from mdemorl_ros.ros_common import (
    CONTROLLER_PHASE_TOPIC,
    DIAGNOSTICS_TOPIC,
    MONITOR_QOS,
    PHASE_QOS,
    POLICY_QOS,
    POLICY_TOPIC,
    TRANSITION_QOS,
    TRANSITION_TOPIC,
    controller_phase_rejection,
    declare,
    diagnostic_status,
)

STATUS_TOPIC = "/mdemorl/training_status"


class TrainerNode(Node):
    def __init__(self) -> None:
        super().__init__("trainer_node")
        p = declare(self, DEFAULTS, PARAMETER_RULES)
        if p["niceness"]:
            self.get_logger().info(f"nice value now {os.nice(p['niceness'])}")
        document: dict[str, Any] = (
            read_yaml_mapping(Path(p["config_file"])) if p["config_file"] else {}
        )
        config = build_train_config(
            resolve_node_config(document, p), [o for o in p["overrides"] if o]
        )
        if config.torch_threads:
            import torch

            torch.set_num_threads(config.torch_threads)
        env = make_env(config.env_id, config.seed, config.max_episode_steps, **config.env_kwargs)
        obs_dim, act_dim = space_dims(env)
        params = getattr(env.unwrapped, "params", None)
        # The task the controller must be computing (the leg's and the quadruped's); the
        # controller's launch arguments and this node's YAML name it separately, this catches a
        # mismatch. Other tasks are not checked.
        self.task_hash = task_hash_of(params)
        self.foreign_task = ""  # the controller's task hash when it differs from ours
        self.refused = 0
        self.phase_rejected = dict.fromkeys(PHASE_REJECTIONS, 0)
        env.close()
        run_dir = Path(str(p["run_dir"]))
        self.trainer = OnlineTrainer(config, run_dir, obs_dim, act_dim, resume=bool(p["resume"]))
        self.episodic = p["protocol"] == "episodic"
        self.protocol = str(p["protocol"])
        if self.episodic and self.trainer.interleaved:
            raise ConfigError(
                "agent.update_mode",
                "'interleaved' learns while the robot acts: it needs protocol 'async' "
                "(protocol 'episodic' holds the robot while an epoch's update runs)",
            )
        self.push_every = int(p["policy_push_every"])
        self.lock = threading.Lock()
        self.updating = False
        # Epoch mode: received during an update, stored right after it. Interleaved: every
        # transition, in arrival order, until the training thread learns from it.
        self.waiting: collections.deque[Transition] = collections.deque()
        self.work_due = threading.Event()
        self.epoch_due = threading.Event()
        self.finished = threading.Event()
        self.stopping = threading.Event()
        self.published_version = self.current_version()
        self.received = 0
        self.epoch_stats = {"transitions": 0, "stale": 0, "staleness_max": 0, "queue_peak": 0}
        self.last_update_at: float | None = None
        self.controller: ControllerPhase | None = None
        self.policy_pub = self.create_publisher(PolicyUpdate, POLICY_TOPIC, POLICY_QOS)
        self.status_pub = self.create_publisher(TrainingStatus, STATUS_TOPIC, MONITOR_QOS)
        self.diag_pub = self.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, MONITOR_QOS)
        self.create_subscription(Transition, TRANSITION_TOPIC, self.on_transition, TRANSITION_QOS)
        self.create_subscription(ControllerPhase, CONTROLLER_PHASE_TOPIC, self.on_phase, PHASE_QOS)
        self.create_timer(1.0 / p["diagnostics_rate"], self.publish_diagnostics)
        self.recorder: BagRecorder | None = None
        if p["record_bag"]:
            bag = run_dir / f"bag_{time.strftime('%Y%m%d_%H%M%S')}"
            self.recorder = BagRecorder(self, bag, TRAINING_TOPICS)
            self.get_logger().info(f"recording {bag}")
        if self.episodic and not self.trainer.done:
            self.publish_policy()  # the first acting request
        elif self.trainer.epoch > 0:
            self.publish_policy()
        self.worker = threading.Thread(target=self.train_forever, name="training", daemon=True)
        self.worker.start()
        self.get_logger().info(
            f"training {config.algo} on {config.env_id} ({self.protocol}): {config.epochs} "
            f"epochs x {config.steps_per_epoch} transitions, run {run_dir}"
        )

    def on_phase(self, msg: ControllerPhase) -> None:
        rejected = controller_phase_rejection(msg)
        if rejected is not None:  # a NaN robot time must not reach the training status
            self.phase_rejected[rejected] += 1
            return
        self.controller = msg
        foreign = bool(self.task_hash and msg.task_hash and msg.task_hash != self.task_hash)
        self.foreign_task = msg.task_hash if foreign else ""
        if foreign:
            self.get_logger().error(
                f"the controller's task hash {msg.task_hash} differs from {self.task_hash} "
                f"({self.trainer.config.env_id}): its transitions are refused",
                throttle_duration_sec=10.0,
            )

    def on_transition(self, msg: Transition) -> None:
        with self.lock:
            self.received += 1
            if self.foreign_task:
                self.refused += 1
                return
            if self.updating or self.trainer.interleaved:
                self.waiting.append(msg)
                if self.trainer.interleaved:
                    self.work_due.set()
                peak = max(self.epoch_stats["queue_peak"], len(self.waiting))
                self.epoch_stats["queue_peak"] = peak
                return
            self.store(msg)

    def store(self, msg: Transition) -> None:
        """Store one transition (caller holds ``lock``; with the interleaved schedule the
        training thread calls it, and it learns too); flags an epoch-mode epoch as due."""
        staleness = max(0, self.published_version - int(msg.policy_version))
        fresh = staleness == 0 or not self.episodic
        try:
            self.trainer.add(
                msg.observation,
                msg.action,
                msg.reward,
                msg.next_observation,
                msg.terminated,
                msg.truncated,
                counts_for_epoch=fresh,
            )
        except ValueError as error:
            self.get_logger().warning(str(error), throttle_duration_sec=5.0)
            return
        stats = self.epoch_stats
        stats["transitions"] += 1
        if staleness:
            stats["stale"] += 1
            stats["staleness_max"] = max(stats["staleness_max"], staleness)
        if self.trainer.epoch_ready() and not self.trainer.done and not self.trainer.interleaved:
            self.updating = True
            self.epoch_due.set()

    def current_version(self) -> int:
        """The version of the actor the trainer holds now: its epoch, or with the interleaved
        schedule its SAC steps // policy_push_every (monotonic across a resume too)."""
        if self.trainer.interleaved:
            return self.trainer.agent.sac_updates // self.push_every
        return self.trainer.epoch

    def train_forever(self) -> None:
        if self.trainer.interleaved:
            self.learn_as_transitions_arrive()
        else:
            self.train_epochs()
        if self.trainer.done:
            self.finished.set()

    def learn_as_transitions_arrive(self) -> None:
        """Interleaved schedule: store each transition and run the agent's due work, push the
        actor when a new version is due, close the epoch when it is complete."""
        while not self.stopping.is_set() and not self.trainer.done:
            with self.lock:
                msg = self.waiting.popleft() if self.waiting else None
                if msg is None:
                    self.work_due.clear()
            if msg is None:
                self.work_due.wait(timeout=0.1)
                continue
            self.store(msg)
            warmed_up = (
                self.trainer.agent.env_steps >= self.trainer.config.agent.initial_random_steps
            )
            if warmed_up and self.current_version() > self.published_version:
                self.publish_policy()
            if self.trainer.epoch_ready():
                self.close_epoch(self.trainer.run_epoch())
                self.publish_policy()

    def close_epoch(self, row: dict[str, float]) -> None:
        """After an epoch's update: reset its accounting, publish its status, log it."""
        self.last_update_at = time.monotonic()
        with self.lock:
            stats, self.epoch_stats = self.epoch_stats, dict.fromkeys(self.epoch_stats, 0)
        self.publish_status(row, stats)
        self.get_logger().info(
            f"epoch {int(row['epoch'])}/{self.trainer.config.epochs}: train return "
            f"{row['train_return']:.2f}, model loss {row['model_loss']:.3f}, update "
            f"{self.trainer.last_update_seconds:.1f} s (CPU "
            f"{self.trainer.last_update_cpu_seconds:.1f} s) of {row['epoch_seconds']:.1f} s; "
            f"{stats['transitions']} transitions stored ({stats['stale']} stale), "
            f"queue peak {stats['queue_peak']}; robot time so far {self.robot_time()}"
        )

    def train_epochs(self) -> None:
        """Epoch mode: run each epoch's update in this thread when its data is complete."""
        while not self.stopping.is_set() and not self.trainer.done:
            if not self.epoch_due.wait(timeout=0.1):
                continue
            self.epoch_due.clear()
            try:
                row = self.trainer.run_epoch(self.abandon_if_stopping)
            except EpochAbandoned:
                return
            if not self.trainer.done or not self.episodic:
                self.publish_policy()
            self.close_epoch(row)
            with self.lock:
                self.updating = False
                waiting, self.waiting = self.waiting, collections.deque()
                for msg in waiting:
                    self.store(msg)

    def abandon_if_stopping(self, done: int, total: int) -> None:
        if self.stopping.is_set():
            raise EpochAbandoned(f"stopped after {done} of {total} SAC steps")

    def robot_time(self) -> str:
        c = self.controller
        if c is None:
            return "unknown (no controller phase received)"
        return f"{c.acting_seconds:.1f} s acting, {c.holding_seconds:.1f} s holding"

    def publish_policy(self) -> None:
        trainer = self.trainer
        blob = trainer.policy_blob()
        msg = PolicyUpdate()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.version = self.current_version()
        msg.algorithm = trainer.config.algo
        msg.observation_dim = trainer.obs_dim
        msg.action_dim = trainer.act_dim
        msg.weights = blob
        msg.checksum = sha256_hex(blob)
        if self.episodic:
            msg.acting_steps = trainer.config.steps_per_epoch
            msg.explore_uniform = (
                trainer.agent.env_steps < trainer.config.agent.initial_random_steps
            )
        with self.lock:
            self.published_version = msg.version
        self.policy_pub.publish(msg)

    def publish_status(self, row: dict[str, float], stats: dict[str, int]) -> None:
        msg = training_status(
            row,
            stats,
            protocol=self.protocol,
            policy_version=self.published_version,
            received=self.received,
            update_seconds=self.trainer.last_update_seconds,
            controller=self.controller,
        )
        msg.header.stamp = self.get_clock().now().to_msg()
        self.status_pub.publish(msg)

    def publish_diagnostics(self) -> None:
        with self.lock:
            queue, stats, updating = len(self.waiting), dict(self.epoch_stats), self.updating
        level, message, values = trainer_diagnostics(
            self.trainer,
            stats,
            updating=updating,
            queue=queue,
            protocol=self.protocol,
            policy_version=self.published_version,
            controller=self.controller,
            received=self.received,
            refused=self.refused,
            phase_rejected=self.phase_rejected,
            foreign_task=self.foreign_task,
            task_hash=self.task_hash,
            last_update_at=self.last_update_at,
        )
        array = DiagnosticArray(
            status=[diagnostic_status("trainer_node", "mdemorl", level, message, values)]
        )
        array.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(array)

    def close(self) -> bool:
        """Stop training and close the bag; False when the training thread is still inside an
        uninterruptible part of an update (model fit, inner loop), which the caller abandons."""
        self.stopping.set()
        # An epoch in progress is abandoned: the last checkpoint and the bag keep the data.
        if self.recorder is not None:
            self.recorder.close()
        with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl-C must not abort the exit
            self.worker.join(timeout=5.0)
        return not self.worker.is_alive()


class EpochAbandoned(Exception):
    """Raised inside an update to abandon it when the node stops."""


def main(args: list[str] | None = None) -> None:
    try:
        rclpy.init(args=args)
        node = TrainerNode()
    except (ValueError, ConfigError, OSError, RCLInvalidROSArgsError) as error:
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
        if not node.close():
            # torch work in the training thread would abort the interpreter's exit; the bag is
            # closed and the last checkpoint is complete, so nothing is lost by leaving now.
            node.get_logger().warning("update in progress abandoned")
            sys.stdout.flush()
            os._exit(0)
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
