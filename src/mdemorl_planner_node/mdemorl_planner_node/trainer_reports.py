"""What the trainer node reports: the per-epoch TrainingStatus and the level of its /diagnostics.

Plain functions of the trainer's numbers, so the rules are testable without a running node.
"""

from __future__ import annotations

import math

from diagnostic_msgs.msg import DiagnosticStatus

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
