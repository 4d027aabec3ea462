"""The watched-topics table, the bridge's topic selection and its exposure warning (no graph)."""

from __future__ import annotations

import pytest

from mdemorl_planner_node.foxglove_bridge import exposure_warning, project_typestore
from mdemorl_planner_node.monitor_topics import MONITOR_TOPICS, select_topics
from mdemorl_ros.ros_common import MONITOR_QOS, STATE_QOS

pytestmark = pytest.mark.ros


def test_select_topics() -> None:
    assert select_topics([]) == MONITOR_TOPICS
    assert list(select_topics(["/diagnostics", "/mdemorl/tracking"])) == [
        "/diagnostics",
        "/mdemorl/tracking",
    ]
    with pytest.raises(ValueError, match=r"topics: unknown topic\(s\) \['/nope'\]"):
        select_topics(["/mdemorl/tracking", "/nope"])


def test_table_qos_is_the_publishers() -> None:
    assert MONITOR_TOPICS["/mdemorl/tracking"].qos == MONITOR_QOS
    assert MONITOR_TOPICS["/joint_states"].qos == STATE_QOS
    assert not MONITOR_TOPICS["/joint_states"].reliable
    assert MONITOR_TOPICS["/mdemorl/loop_health"].reliable


def test_every_watched_type_has_a_schema() -> None:
    typestore = project_typestore()
    for spec in MONITOR_TOPICS.values():
        text, _ = typestore.generate_msgdef(spec.type_name, ros_version=2)
        assert text.strip()


def test_only_a_non_loopback_address_is_warned_about() -> None:
    assert exposure_warning("127.0.0.1") is None
    assert exposure_warning("localhost") is None
    warning = exposure_warning("0.0.0.0")
    assert warning is not None and "0.0.0.0" in warning and "explicit" in warning
