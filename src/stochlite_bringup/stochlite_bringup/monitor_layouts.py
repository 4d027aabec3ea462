"""The signals that the shipped monitoring layouts plot, read back from the files themselves.

``config/monitor.perspective`` is an rqt perspective (rqt's JSON settings format: values stored as
Python ``repr`` strings); each rqt_plot pane lists its curves as ``/topic/field[index]``.
``config/monitor_plotjuggler.xml`` is a PlotJuggler layout: ``curve`` elements name a series
(``name``), or an XY plot's axes (``curve_x``, ``curve_y``), in the same ``/topic/field[index]``
form, and the ROS 2 streamer's ``selected_topics``. ``config/monitor_foxglove.json`` is a
Foxglove layout (made with foxglove-sdk's ``foxglove.layouts``): its Plot panels name message paths
``/topic.field[index]`` (and ``xValuePath`` for the x-z plot). Tests check every signal against the
message definitions and the topics' QoS.
"""

from __future__ import annotations

import ast
import json
import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PERSPECTIVE = "monitor.perspective"
PLOTJUGGLER_LAYOUT = "monitor_plotjuggler.xml"
FOXGLOVE_LAYOUT = "monitor_foxglove.json"
RQT_PLOT = "rqt_plot/Plot"


@dataclass(frozen=True)
class Signal:
    """One plotted value: ``topic`` and the ``field`` path inside its message, e.g.
    ``("/mdemorl/tracking", "desired_position[0]")``."""

    topic: str
    field: str


def _repr_value(entry: dict[str, str]) -> object:
    if entry.get("type") != "repr":
        raise ValueError(f"perspective value of type {entry.get('type')!r}, expected 'repr'")
    return ast.literal_eval(entry["repr"])


def perspective_plugins(path: Path) -> dict[str, list[int]]:
    """The perspective's running plugins: {plugin id: [instance serials]}."""
    data = json.loads(path.read_text())
    manager = data["groups"]["pluginmanager"]
    plugins = _repr_value(manager["keys"]["running-plugins"])
    if not isinstance(plugins, dict):
        raise ValueError(f"{path}: running-plugins is not a mapping")
    return {str(k): list(v) for k, v in plugins.items()}


def perspective_plot_curves(path: Path) -> list[str]:
    """Every curve of every rqt_plot pane of the perspective, as written."""
    data = json.loads(path.read_text())
    groups = data["groups"]["pluginmanager"]["groups"]
    curves: list[str] = []
    for serial in perspective_plugins(path).get(RQT_PLOT, []):
        plugin = groups[f"plugin__rqt_plot__Plot__{serial}"]["groups"]["plugin"]["keys"]
        topics = _repr_value(plugin["topics"])
        if not isinstance(topics, list):
            raise ValueError(f"{path}: rqt_plot pane {serial} topics is not a list")
        curves.extend(str(topic) for topic in topics)
    return curves


def plotjuggler_curves(path: Path) -> list[str]:
    """Every series a PlotJuggler layout plots (time series names and XY axes), as written."""
    root = ElementTree.parse(path).getroot()
    curves: list[str] = []
    for plot in root.iter("plot"):
        xy = plot.get("mode") == "XYPlot"
        for curve in plot.iter("curve"):
            keys = ("curve_x", "curve_y") if xy else ("name",)
            for key in keys:
                value = curve.get(key)
                if value is None:
                    raise ValueError(f"{path}: a curve has no {key}")
                curves.append(value)
    return curves


def plotjuggler_streamer_topics(path: Path) -> list[str]:
    """The topics the layout's ROS 2 streamer subscribes to."""
    root = ElementTree.parse(path).getroot()
    selected = root.find("./Plugins/plugin[@ID='ROS2 Topic Subscriber']/selected_topics")
    if selected is None:
        raise ValueError(f"{path}: no ROS2 Topic Subscriber selected_topics")
    return [topic for topic in selected.get("value", "").split(";") if topic]


def _panels(node: object) -> Iterator[dict[str, Any]]:
    """Every panel of a Foxglove layout (tabs and splits nest them)."""
    if isinstance(node, dict):
        if node.get("type") == "panel":
            yield node
        for value in node.values():
            yield from _panels(value)
    elif isinstance(node, list):
        for value in node:
            yield from _panels(value)


def foxglove_panels(path: Path) -> list[dict[str, Any]]:
    """The panels of a Foxglove layout file, in order."""
    return list(_panels(json.loads(path.read_text())["content"]))


def foxglove_curves(path: Path) -> list[str]:
    """Every message path a Foxglove layout's Plot panels plot, as ``/topic/field[index]`` (the
    form of the other layouts: Foxglove writes ``/topic.field[index]``)."""
    curves = []
    for panel in foxglove_panels(path):
        if panel.get("panelType") != "Plot":
            continue
        for series in panel["config"]["paths"]:
            for key in ("value", "xValuePath"):
                if key in series:
                    topic, _, field = str(series[key]).partition(".")
                    curves.append(f"{topic}/{field.replace('.', '/')}")
    return curves


def split_signal(curve: str, topics: Iterable[str]) -> Signal:
    """``/topic/field...`` -> Signal, taking the longest of ``topics`` that prefixes it.

    Raises ValueError when no known topic does.
    """
    matches = [t for t in topics if curve.startswith(t + "/")]
    if not matches:
        raise ValueError(f"curve {curve!r} is on none of the known topics")
    topic = max(matches, key=len)
    return Signal(topic, curve[len(topic) + 1 :])


FIELD_PART = re.compile(r"^(?P<name>[a-z][a-z0-9_]*)(\[(?P<index>\d+)\])?$")


def field_parts(field: str) -> list[tuple[str, int | None]]:
    """``a/b[1]`` (rqt, PlotJuggler) -> [("a", None), ("b", 1)]; ValueError if malformed."""
    parts = []
    for part in field.split("/"):
        match = FIELD_PART.match(part)
        if match is None:
            raise ValueError(f"malformed field path {field!r} at {part!r}")
        index = match.group("index")
        parts.append((match.group("name"), int(index) if index is not None else None))
    return parts


def layout_signals(config_dir: Path, topics: Iterable[str]) -> dict[str, list[Signal]]:
    """{layout file name: its signals}, for the shipped layouts in ``config_dir``."""
    known = list(topics)
    curves = {
        PERSPECTIVE: perspective_plot_curves(config_dir / PERSPECTIVE),
        PLOTJUGGLER_LAYOUT: plotjuggler_curves(config_dir / PLOTJUGGLER_LAYOUT),
        FOXGLOVE_LAYOUT: foxglove_curves(config_dir / FOXGLOVE_LAYOUT),
    }
    return {name: [split_signal(c, known) for c in found] for name, found in curves.items()}
