"""What the trainer node reports: the per-epoch TrainingStatus and its /diagnostics.

``/mdemorl/training_status`` adds the protocol's accounting to the epoch's numbers: transitions
received, the epoch's stale transitions and their largest staleness (versions behind), the peak
of the queue during the update, the update time and the robot time acting / holding (from the
controller's ``/mdemorl/controller_phase``; a malformed report is ignored and counted as
``phase_rejected_*``). ``/diagnostics`` (``trainer_node``) reports the same live at
``diagnostics_rate``. Plain functions of the trainer's numbers, so the rules are testable
without a running node.
"""

from __future__ import annotations

import math
import time
from typing import Any

from diagnostic_msgs.msg import DiagnosticStatus

from mdemorl_core.training.checkpoint import checkpoint_path
from mdemorl_msgs.msg import ControllerPhase, TrainingStatus


def training_status(
    row: dict[str, float],
    stats: dict[str, int],
    *,
    protocol: str,
    policy_version: int,
    received: int,
    update_seconds: float,
    controller: ControllerPhase | None,
) -> TrainingStatus:
    """The epoch's TrainingStatus (header stamp left to the caller): ``row`` is the progress row
    of ``OnlineTrainer.run_epoch``, ``stats`` the epoch's transitions / stale / staleness_max /
    queue_peak counts, ``controller`` the controller's latest phase (its robot time)."""
    msg = TrainingStatus()
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
    msg.protocol = protocol
    msg.policy_version = policy_version
    msg.transitions_received = received
    msg.epoch_transitions = stats["transitions"]
    msg.stale_transitions = stats["stale"]
    msg.staleness_max = stats["staleness_max"]
    msg.queue_peak = stats["queue_peak"]
    msg.update_seconds = float(update_seconds)
    if controller is not None:
        msg.acting_seconds = controller.acting_seconds
        msg.holding_seconds = controller.holding_seconds
    return msg


def diagnostic_level(
    *,
    epoch: int,
    phase: str,
    controller_phase: str,
    rejected: int,
    stale: int,
    queue: int,
    steps_per_epoch: int,
    foreign_task: str,
    task_hash: str,
) -> tuple[bytes, str]:
    """Level and message of the trainer's diagnostics; the most severe condition wins.

    ``phase``: "collecting", "updating" or "done"; ``controller_phase``: the controller's phase,
    "unknown" before any ControllerPhase arrived. ERROR: the controller computes another task,
    or no controller was ever heard from while data is awaited. WARN: data awaited while the
    controller is not acting, a backlog over one epoch, stale or rejected transitions.
    """
    level, message = DiagnosticStatus.OK, f"epoch {epoch}: {phase}"
    if rejected:
        level, message = DiagnosticStatus.WARN, f"{rejected} transitions rejected"
    if stale:
        level, message = DiagnosticStatus.WARN, f"{stale} stale transitions"
    if queue > steps_per_epoch:
        # Async on a machine where updates are slower than acting: the backlog grows.
        level, message = DiagnosticStatus.WARN, f"{queue} transitions wait for the update"
    if phase == "collecting" and controller_phase != "acting":
        unknown = controller_phase == "unknown"
        level = DiagnosticStatus.ERROR if unknown else DiagnosticStatus.WARN
        message = f"epoch {epoch}: waiting for data, controller {controller_phase}"
    if foreign_task:
        level = DiagnosticStatus.ERROR
        message = f"controller task {foreign_task} is not {task_hash}: data refused"
    return level, message


def _count(value: float) -> int:
    return 0 if math.isnan(value) else int(value)


def trainer_diagnostics(
    trainer: Any,
    stats: dict[str, int],
    *,
    updating: bool,
    queue: int,
    protocol: str,
    policy_version: int,
    controller: ControllerPhase | None,
    received: int,
    refused: int,
    phase_rejected: dict[str, int],
    foreign_task: str,
    task_hash: str,
    last_update_at: float | None,
) -> tuple[int, str, dict[str, Any]]:
    """(level, message, key/values) of the ``trainer_node`` diagnostics status: ``trainer`` is the
    node's OnlineTrainer, ``stats`` the running epoch's transitions / stale / staleness_max
    counts, ``last_update_at`` the monotonic time the last update ended (None: none yet)."""
    checkpoint = checkpoint_path(trainer.paths.checkpoint_dir)
    checkpoint_age = time.time() - checkpoint.stat().st_mtime if checkpoint.exists() else -1.0
    phase = "done" if trainer.done else "updating" if updating else "collecting"
    controller_phase = controller.phase if controller is not None else "unknown"
    level, message = diagnostic_level(
        epoch=trainer.epoch,
        phase=phase,
        controller_phase=controller_phase,
        rejected=trainer.rejected,
        stale=stats["stale"],
        queue=queue,
        steps_per_epoch=trainer.config.steps_per_epoch,
        foreign_task=foreign_task,
        task_hash=task_hash,
    )
    since_last_update = time.monotonic() - last_update_at if last_update_at else math.nan
    return (
        level,
        message,
        {
            "epoch": trainer.epoch,
            "epochs": trainer.config.epochs,
            "phase": phase,
            "protocol": protocol,
            "policy_version": policy_version,
            "controller_phase": controller_phase,
            "epoch_transitions": stats["transitions"],
            "steps_per_epoch": trainer.config.steps_per_epoch,
            "transitions_received": received,
            "queue_depth": queue,
            "stale_transitions": stats["stale"],
            "staleness_max": stats["staleness_max"],
            "rejected": trainer.rejected,
            "refused_foreign_task": refused,
            **phase_rejected,
            "task_hash": task_hash,
            "last_update_seconds": trainer.last_update_seconds,
            "since_last_update_s": since_last_update,
            "checkpoint_age_s": checkpoint_age,
        },
    )
