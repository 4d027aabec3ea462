"""The shipped rqt perspective and PlotJuggler layout name only fields that exist in the message
definitions (read from the installed .msg files), are plottable numbers, and lie on topics that
are published reliable (rqt_plot and PlotJuggler cannot subscribe to best-effort topics)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from ament_index_python.packages import get_package_share_directory

from mdemorl_planner_node.monitor_topics import MONITOR_TOPICS, TRAINING_STATUS_TOPIC
from stochlite_bringup.monitor_layouts import (
    FOXGLOVE_LAYOUT,
    PERSPECTIVE,
    PLOTJUGGLER_LAYOUT,
    Signal,
    field_parts,
    foxglove_panels,
    layout_signals,
    perspective_plugins,
    plotjuggler_streamer_topics,
    split_signal,
)

pytestmark = pytest.mark.ros

NUMERIC = {
    "bool",
    "byte",
    "float32",
    "float64",
    *(f"{sign}int{bits}" for sign in ("", "u") for bits in (8, 16, 32, 64)),
}
FIELD_LINE = re.compile(
    r"^(?P<type>[A-Za-z0-9_/]+)(?P<array>\[(?P<bound><=)?(?P<size>\d*)\])?\s+(?P<name>\w+)$"
)


def config_dir() -> Path:
    return Path(get_package_share_directory("stochlite_bringup")) / "config"


def message_fields(type_name: str) -> dict[str, tuple[str, int | None, bool]]:
    """{field: (type, fixed size or None, is array)} from the installed .msg of ``type_name``."""
    package, _, name = type_name.split("/")
    text = (Path(get_package_share_directory(package)) / "msg" / f"{name}.msg").read_text()
    fields = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or "=" in line:  # blank, comment or constant
            continue
        match = FIELD_LINE.match(line)
        assert match is not None, f"{type_name}: cannot parse {raw!r}"
        size = match.group("size")
        fixed = int(size) if size and not match.group("bound") else None
        fields[match.group("name")] = (match.group("type"), fixed, match.group("array") is not None)
    return fields


def check_signal(signal: Signal) -> None:
    """Raise AssertionError unless ``signal`` is a reliable, existing, numeric field."""
    spec = MONITOR_TOPICS[signal.topic]
    assert spec.reliable, f"{signal.topic} is not published reliable"
    type_name = spec.type_name
    parts = field_parts(signal.field)
    for position, (name, index) in enumerate(parts):
        fields = message_fields(type_name)
        assert name in fields, f"{type_name} has no field {name!r} ({signal})"
        field_type, fixed, is_array = fields[name]
        assert is_array == (index is not None), f"{signal}: index use does not match {name}"
        if fixed is not None and index is not None:
            assert index < fixed, f"{signal}: index {index} out of {name}[{fixed}]"
        last = position == len(parts) - 1
        if last:
            assert field_type in NUMERIC, f"{signal}: {field_type} is not a plottable number"
        else:
            assert "/" in field_type, f"{signal}: {name} is not a message"
            package, message = field_type.split("/")
            type_name = f"{package}/msg/{message}"


def test_layouts_are_installed() -> None:
    for name in (PERSPECTIVE, PLOTJUGGLER_LAYOUT, FOXGLOVE_LAYOUT):
        assert (config_dir() / name).is_file(), name


@pytest.mark.parametrize("layout", [PERSPECTIVE, PLOTJUGGLER_LAYOUT, FOXGLOVE_LAYOUT])
def test_every_signal_exists_and_is_reliable(layout: str) -> None:
    signals = layout_signals(config_dir(), MONITOR_TOPICS)[layout]
    assert len(signals) >= 8
    for signal in signals:
        check_signal(signal)
    fields = {(s.topic, s.field) for s in signals}
    # The panes the README describes: error and reward, foot x/z desired vs actual, returns.
    for expected in (
        ("/mdemorl/tracking", "tracking_error"),
        ("/mdemorl/tracking", "reward"),
        ("/mdemorl/tracking", "desired_position[0]"),
        ("/mdemorl/tracking", "actual_position[1]"),
        (TRAINING_STATUS_TOPIC, "train_return"),
        ("/mdemorl/loop_health", "period_p99_ms"),
    ):
        assert expected in fields, (layout, expected)


def test_plotjuggler_streams_exactly_the_plotted_topics() -> None:
    signals = layout_signals(config_dir(), MONITOR_TOPICS)[PLOTJUGGLER_LAYOUT]
    streamed = plotjuggler_streamer_topics(config_dir() / PLOTJUGGLER_LAYOUT)
    assert set(streamed) == {s.topic for s in signals}


def test_perspective_shows_diagnostics() -> None:
    plugins = perspective_plugins(config_dir() / PERSPECTIVE)
    # rqt_runtime_monitor reads /diagnostics as published (rqt_robot_monitor would need an
    # aggregator's /diagnostics_agg).
    assert plugins.get("rqt_runtime_monitor/RuntimeMonitor") == [1]
    assert len(plugins["rqt_plot/Plot"]) == 5


def test_foxglove_layout_shows_diagnostics() -> None:
    panels = foxglove_panels(config_dir() / FOXGLOVE_LAYOUT)
    summaries = [p for p in panels if p["panelType"] == "DiagnosticsSummary"]
    assert [p["config"]["topicToRender"] for p in summaries] == ["/diagnostics"]
    assert sum(p["panelType"] == "Plot" for p in panels) == 9


def test_checker_rejects_what_plotting_tools_could_not_show() -> None:
    for curve in (
        "/mdemorl/tracking/no_such_field",
        "/mdemorl/tracking/desired_position[2]",
        "/mdemorl/tracking/desired_position",
        "/mdemorl/tracking/reward[0]",
        "/mdemorl/controller_phase/phase",  # a string
        "/joint_states/position[0]",  # best effort
    ):
        with pytest.raises(AssertionError):
            check_signal(split_signal(curve, MONITOR_TOPICS))
    with pytest.raises(ValueError, match="none of the known topics"):
        split_signal("/no/such/topic", MONITOR_TOPICS)
    check_signal(split_signal("/mdemorl/tracking/header/stamp/sec", MONITOR_TOPICS))


def test_training_status_topic_is_the_trainers() -> None:
    from mdemorl_planner_node import trainer_node

    assert trainer_node.STATUS_TOPIC == TRAINING_STATUS_TOPIC
