"""Topic names, QoS profiles, message helpers and the node runner of every robot's nodes and the
trainer's.

QoS choices (on purpose, see src/mdemorl_ros/README.md):
- ``STATE_QOS`` for ``/joint_states``, ``/imu/data`` and ``/effort_command``: best effort,
  keep-last-1. At 500 Hz only the newest sample matters and a retransmission would arrive after
  the next one. A *reliable* subscription does not match a best-effort publisher, so every
  subscriber of these topics (tests and tools included) must ask for best effort too.
- ``TRANSITION_QOS``: reliable, deep history: no transition may be lost.
- ``POLICY_QOS``: reliable + transient local, depth 1: a late controller gets the latest weights.
- ``PHASE_QOS`` (``/mdemorl/controller_phase``): as ``POLICY_QOS``, a late joiner (the sim
  robot, the trainer) learns the controller's current phase at once.
- ``MONITOR_QOS``: reliable, for ``/mdemorl/tracking``, ``/mdemorl/loop_health`` and
  ``/diagnostics`` (rqt_plot/monitor).
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from rclpy._rclpy_pybind11 import RCLInvalidROSArgsError
from rclpy.exceptions import InvalidParameterTypeException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions

from mdemorl_msgs.msg import ControllerPhase, Transition
from mdemorl_ros.loop_timing import DeadlineLoop
from mdemorl_ros.node_parameters import Rule, check_parameters, wrong_type
from mdemorl_ros.protocol import TransitionRecord, phase_rejection

STATE_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=ReliabilityPolicy.BEST_EFFORT,
    durability=DurabilityPolicy.VOLATILE,
)
TRANSITION_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=10_000, reliability=ReliabilityPolicy.RELIABLE
)
POLICY_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
MONITOR_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE
)
PHASE_QOS = POLICY_QOS

JOINT_STATES_TOPIC = "/joint_states"
IMU_TOPIC = "/imu/data"
EFFORT_COMMAND_TOPIC = "/effort_command"
POLICY_TOPIC = "/mdemorl/policy"
TRANSITION_TOPIC = "/mdemorl/transition"
TRACKING_TOPIC = "/mdemorl/tracking"
CONTROLLER_PHASE_TOPIC = "/mdemorl/controller_phase"
DIAGNOSTICS_TOPIC = "/diagnostics"
LOOP_HEALTH_TOPIC = "/mdemorl/loop_health"

CONTROL_SWITCH_INTERVAL = 0.0002  # s, GIL switch interval for the nodes with a 500 Hz thread


def stamp_to_seconds(stamp: Time) -> float:
    return float(stamp.sec) + 1e-9 * float(stamp.nanosec)


def stamp_to_nanoseconds(stamp: Time) -> int:
    """The stamp as an exact integer (a float of seconds since 1970 blurs below ~0.5 us, too
    coarse to tell a re-delivered message from the next one)."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def controller_phase_rejection(msg: ControllerPhase) -> str | None:
    """:func:`protocol.phase_rejection` of a ControllerPhase message (every subscriber's check)."""
    return phase_rejection(msg.phase, msg.protocol, (msg.acting_seconds, msg.holding_seconds))


def transition_message(record: TransitionRecord, stamp: Time) -> Transition:
    """The ``/mdemorl/transition`` message of one policy step."""
    msg = Transition(
        episode=record.episode,
        step=record.step,
        policy_version=record.policy_version,
        observation=record.observation.tolist(),
        action=record.action.tolist(),
        next_observation=record.next_observation.tolist(),
        reward=float(record.reward),
        terminated=record.terminated,
        truncated=record.truncated,
    )
    msg.header.stamp = stamp
    return msg


def diagnostic_status(
    name: str, hardware_id: str, level: bytes, message: str, values: Mapping[str, Any]
) -> DiagnosticStatus:
    """A DiagnosticStatus whose key/values are the ``values`` mapping, rendered with str()."""
    status = DiagnosticStatus(name=name, hardware_id=hardware_id, level=level, message=message)
    status.values = [KeyValue(key=str(k), value=_render(v)) for k, v in values.items()]
    return status


def _render(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, Iterable) and not isinstance(value, str):
        return "[" + ", ".join(_render(v) for v in value) + "]"
    return str(value)


EXECUTOR_STRATEGIES = ("inline", "thread")


def make_control_loop(node: Node, period: float, strategy: str) -> DeadlineLoop:
    """The node's deadline loop; ``inline`` makes the loop thread also spin the node.

    ``inline``: the node gets its own executor (``node.own_executor``) that the loop thread spins
    while it waits for the next deadline (``node.self_spinning`` tells :func:`run_node` not to
    spin it), so no second Python thread competes with the loop for the GIL, and under SCHED_FIFO
    no lower-priority thread holding the GIL can stall it. Callbacks must then be short.
    ``thread``: :func:`run_node` spins the node in the main thread.
    """
    if strategy not in EXECUTOR_STRATEGIES:
        raise ValueError(f"executor_strategy must be one of {EXECUTOR_STRATEGIES}, got {strategy}")
    node.self_spinning = strategy == "inline"  # type: ignore[attr-defined]
    if strategy == "thread":
        return DeadlineLoop(period)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    node.own_executor = executor  # type: ignore[attr-defined]

    def spin_for(seconds: float) -> None:
        end = time.perf_counter() + seconds
        remaining = seconds
        while remaining > 0.0:
            executor.spin_once(timeout_sec=remaining)
            remaining = end - time.perf_counter()

    return DeadlineLoop(period, sleep=spin_for)


def stop_own_executor(node: Node) -> None:
    """Shut down the executor :func:`make_control_loop` gave an ``inline`` node."""
    executor = getattr(node, "own_executor", None)
    if executor is not None:
        executor.shutdown()


def declare(
    node: Node, values: Mapping[str, Any], rules: Mapping[str, Rule] | None = None
) -> dict[str, Any]:
    """Declare each parameter with its default and return the effective values, checked against
    ``rules`` (node_parameters): a wrong type, an empty value or one outside its rule raises
    ParameterError naming the parameter (:func:`run_node` turns it into exit 2)."""
    settings: dict[str, Any] = {}
    for name, default in values.items():
        try:
            settings[name] = node.declare_parameter(name, default).value
        except InvalidParameterTypeException:
            raise wrong_type(name, default) from None
    check_parameters(settings, rules or {})
    return settings


def run_node(
    make_node: Callable[[], Node],
    args: list[str] | None,
    on_shutdown: Callable[[Node], None] | None = None,
    switch_interval: float | None = None,
) -> None:
    """Init rclpy, spin the node until Ctrl-C/SIGTERM, run ``on_shutdown``, shut down cleanly.

    rclpy's own signal handlers are disabled: SIGINT and SIGTERM only set a stop flag, so
    ``on_shutdown`` (e.g. stopping the loop thread and exiting motor mode) runs while the context
    is still valid and no thread publishes into a context that is already shut down.

    ``switch_interval`` (s) lowers Python's GIL switch interval (default 5 ms) for nodes whose
    control thread must not wait behind the executor thread for a whole interval.
    A node with a true ``self_spinning`` attribute runs its own executor (in its loop thread);
    the main thread then blocks until the stop signal, with no periodic wake-up: each wake-up
    takes the GIL, and a normal-priority main thread preempted while holding it stalls the
    real-time loop thread (a signal still interrupts the wait).
    """
    if switch_interval is not None:
        sys.setswitchinterval(switch_interval)
    try:
        rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
        node = make_node()
    except (ValueError, OSError, RCLInvalidROSArgsError) as error:
        # ParameterError, the nodes' own setting checks and a device that cannot be opened (a
        # serial port or CAN interface that is not there): the node refuses to start.
        print(f"error: {error}", file=sys.stderr)
        rclpy.try_shutdown()
        sys.exit(2)
    executor = SingleThreadedExecutor()
    if not getattr(node, "self_spinning", False):
        executor.add_node(node)
    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    self_spinning = bool(getattr(node, "self_spinning", False))
    try:
        if self_spinning:
            stop.wait()
        while rclpy.ok() and not stop.is_set():
            executor.spin_once(timeout_sec=0.05)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if on_shutdown is not None:
            on_shutdown(node)
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
