"""`mdemorl monitor`: a terminal dashboard of a running training graph, for machines without a GUI.

    mdemorl monitor [--duration S] [--refresh HZ]        (= mdemorl_monitor, from this package)

Attaches to the graph (same ROS domain; nothing to configure on the nodes) and shows, refreshed a
few times a second: the epoch and its progress (trainer ``/diagnostics``), the last epochs'
returns and losses with a sparkline of the training returns (``/mdemorl/training_status``), the
controller's phase (``/mdemorl/controller_phase``), the tracking error now and as a sparkline of
its last seconds (``/mdemorl/tracking``), every loop's rate, period p99 and missed deadlines (the
``rate_hz``/``period_p99_ms``/``missed`` values of the nodes' ``/diagnostics``), and every
diagnostics status that is not OK. :class:`DashboardState` holds what arrived and renders it
(rich), so it can be checked without a terminal.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

SPARK_CHARACTERS = "▁▂▃▄▅▆▇█"
LEVELS = {0: "OK", 1: "WARN", 2: "ERROR", 3: "STALE"}
LEVEL_STYLES = {"OK": "green", "WARN": "yellow", "ERROR": "bold red", "STALE": "magenta"}
TRACKING_BLOCK = 10  # tracking messages averaged into one sparkline sample (0.1 s at 100 Hz)
LOOP_KEYS = ("rate_hz", "period_p99_ms", "period_max_ms", "missed")


def sparkline(values: Sequence[float], width: int) -> str:
    """The last ``width`` values as block characters scaled from their min to their max (a
    constant series is drawn at the lowest level; NaN as a blank)."""
    shown = list(values)[-width:]
    finite = [v for v in shown if math.isfinite(v)]
    if not finite:
        return " " * len(shown)
    low, high = min(finite), max(finite)
    span = high - low
    top = len(SPARK_CHARACTERS) - 1
    return "".join(
        SPARK_CHARACTERS[round(top * (v - low) / span) if span > 0 else 0]
        if math.isfinite(v)
        else " "
        for v in shown
    )


def _level(value: Any) -> str:
    """DiagnosticStatus.level (bytes of length 1 in rclpy) as OK/WARN/ERROR/STALE."""
    number = value[0] if isinstance(value, bytes | bytearray) else int(value)
    return LEVELS.get(number, str(number))


def _number(text: str | None) -> float:
    try:
        return float(text) if text is not None else math.nan
    except ValueError:
        return math.nan


@dataclass
class StatusEntry:
    """The latest of one diagnostics status: level name, message and key/values."""

    level: str
    message: str
    values: dict[str, str]
    received: float


@dataclass
class DashboardState:
    """What the dashboard has received; ``on_*`` take the ROS messages (duck-typed)."""

    history: int = 60
    status: Any = None
    phase: Any = None
    tracking: Any = None
    # Per epoch: epoch, train return, eval return, model, critic and actor loss.
    epochs: deque[tuple[int, float, float, float, float, float]] = field(
        default_factory=lambda: deque(maxlen=200)
    )
    errors: deque[float] = field(default_factory=lambda: deque(maxlen=60))
    statuses: dict[str, StatusEntry] = field(default_factory=dict)
    _block: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.errors = deque(maxlen=self.history)

    def on_status(self, msg: Any) -> None:
        self.status = msg
        row = (int(msg.epoch), msg.train_return, msg.eval_return)
        row += (msg.model_loss, msg.critic_loss, msg.actor_loss)
        if self.epochs and self.epochs[-1][0] == msg.epoch:
            self.epochs.pop()
        self.epochs.append(row)

    def on_phase(self, msg: Any) -> None:
        self.phase = msg

    def on_tracking(self, msg: Any) -> None:
        self.tracking = msg
        self._block.append(float(msg.tracking_error))
        if len(self._block) >= TRACKING_BLOCK:
            self.errors.append(sum(self._block) / len(self._block))
            self._block.clear()

    def on_diagnostics(self, msg: Any) -> None:
        now = time.monotonic()
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            self.statuses[status.name] = StatusEntry(
                _level(status.level), status.message, values, now
            )

    def loops(self) -> list[tuple[str, dict[str, float]]]:
        """(status name, rate/p99/max/missed) of every status that reports loop statistics."""
        return [
            (name, {key: _number(entry.values.get(key)) for key in LOOP_KEYS})
            for name, entry in sorted(self.statuses.items())
            if all(key in entry.values for key in ("rate_hz", "period_p99_ms", "missed"))
        ]

    def render(self) -> Any:
        from rich.console import Group

        return Group(
            self._training_panel(),
            self._returns_panel(),
            self._tracking_panel(),
            self._loops_panel(),
            self._diagnostics_panel(),
        )

    def _training_panel(self) -> Any:
        from rich.panel import Panel
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        trainer = self.statuses.get("trainer_node")
        grid = Table.grid(padding=(0, 2))
        if trainer is None:
            grid.add_row("waiting for trainer_node on /diagnostics")
        else:
            v = trainer.values
            epochs = _number(v.get("epochs"))
            done, due = _number(v.get("epoch_transitions")), _number(v.get("steps_per_epoch"))
            epochs_text = f"/{epochs:.0f}" if epochs > 0 else ""
            total = due if due > 0 else 1.0
            bar = ProgressBar(total=total, completed=done if done >= 0 else 0.0, width=30)
            grid.add_row(
                f"epoch {v.get('epoch', '?')}{epochs_text}", bar, f"{done:.0f}/{due:.0f} steps"
            )
            grid.add_row(
                f"trainer {v.get('phase', '?')}",
                f"policy v{v.get('policy_version', '?')}",
                f"staleness max {v.get('staleness_max', '?')}, queue {v.get('queue_depth', '?')}",
            )
        if self.phase is not None:
            p = self.phase
            grid.add_row(
                f"controller {p.phase}",
                f"episode {p.episode}",
                f"{p.phase_steps}/{p.acting_steps} steps, policy v{p.policy_version}",
            )
        if self.status is not None:
            s = self.status
            grid.add_row(
                f"env steps {s.env_steps}",
                f"D_ENV {s.d_env}  D_MPC {s.d_mpc}",
                f"H {s.horizon}  B {s.mpc_batch}  alpha {s.alpha:.3g}",
            )
        return Panel(grid, title="training")

    def _returns_panel(self) -> Any:
        from rich.console import Group
        from rich.panel import Panel
        from rich.table import Table

        table = Table("epoch", "train return", "eval return", "model", "critic", "actor")
        for epoch, train, evaluation, *losses in list(self.epochs)[-5:]:
            table.add_row(
                str(epoch), f"{train:.1f}", f"{evaluation:.1f}", *(f"{v:.4g}" for v in losses)
            )
        trend = sparkline([row[1] for row in self.epochs], 40)
        return Panel(Group(table, f"train returns {trend}"), title="returns")

    def _tracking_panel(self) -> Any:
        from rich.panel import Panel

        if self.tracking is None:
            return Panel("waiting for /mdemorl/tracking", title="tracking")
        t = self.tracking
        text = (
            f"error {1000.0 * t.tracking_error:.1f} mm   reward {t.reward:.3f}   "
            f"foot x {t.actual_position[0]:+.3f} z {t.actual_position[1]:+.3f} m\n"
            f"error {sparkline(list(self.errors), self.history)} "
            f"(last {len(self.errors) * TRACKING_BLOCK} messages)"
        )
        return Panel(text, title="tracking")

    def _loops_panel(self) -> Any:
        from rich.panel import Panel
        from rich.table import Table

        table = Table("loop", "rate Hz", "p99 ms", "max ms", "missed")
        for name, stats in self.loops():
            table.add_row(
                name,
                f"{stats['rate_hz']:.1f}",
                f"{stats['period_p99_ms']:.2f}",
                f"{stats['period_max_ms']:.2f}",
                f"{stats['missed']:.0f}",
            )
        return Panel(table, title="control loops")

    def _diagnostics_panel(self) -> Any:
        from rich.panel import Panel
        from rich.text import Text

        text = Text()
        bad = [(n, e) for n, e in sorted(self.statuses.items()) if e.level != "OK"]
        for name, entry in bad:
            text.append(f"{entry.level:5s} ", style=LEVEL_STYLES.get(entry.level, ""))
            text.append(f"{name}: {entry.message}\n")
        text.rstrip()
        if not bad:
            text.append(f"all {len(self.statuses)} statuses OK", style="green")
        return Panel(text, title="diagnostics")


def parse_arguments(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="mdemorl monitor", description="Terminal dashboard of a running training graph."
    )
    parser.add_argument("--duration", type=float, default=0.0, help="exit after S s (0: never)")
    parser.add_argument("--refresh", type=float, default=4.0, help="redraws per second (4)")
    args = parser.parse_args(argv)
    if args.refresh <= 0.0:
        parser.error(f"--refresh must be > 0, got {args.refresh}")
    if args.duration < 0.0:
        parser.error(f"--duration must be >= 0, got {args.duration}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_arguments(sys.argv[1:] if argv is None else argv)
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rich.live import Live

    from mdemorl_planner_node.bag_recorder import message_class
    from mdemorl_planner_node.monitor_topics import MONITOR_TOPICS

    state = DashboardState()
    handlers = {
        "/mdemorl/training_status": state.on_status,
        "/mdemorl/controller_phase": state.on_phase,
        "/mdemorl/tracking": state.on_tracking,
        "/diagnostics": state.on_diagnostics,
    }
    rclpy.init()
    node = Node(f"mdemorl_monitor_{os.getpid()}")
    for topic, handler in handlers.items():
        spec = MONITOR_TOPICS[topic]
        node.create_subscription(message_class(spec.type_name), topic, handler, spec.qos)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    end = time.monotonic() + args.duration if args.duration > 0 else math.inf
    period = 1.0 / args.refresh
    try:
        with Live(state.render(), auto_refresh=False, screen=False) as live:
            while rclpy.ok() and time.monotonic() < end:
                redraw_at = time.monotonic() + period
                while (remaining := redraw_at - time.monotonic()) > 0:
                    executor.spin_once(timeout_sec=remaining)
                live.update(state.render(), refresh=True)
    except KeyboardInterrupt:
        pass
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
