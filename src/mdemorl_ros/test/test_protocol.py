"""protocol.phase_rejection: malformed controller phase reports are rejected under their counter."""

import math

import pytest

from mdemorl_ros.protocol import CONTROLLER_PHASES, PHASE_REJECTIONS, PROTOCOLS, phase_rejection

UNKNOWN_PHASE, UNKNOWN_PROTOCOL, BAD_SECONDS = PHASE_REJECTIONS


@pytest.mark.parametrize("phase", CONTROLLER_PHASES)
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_every_phase_a_controller_reports_is_accepted(phase: str, protocol: str) -> None:
    assert phase_rejection(phase, protocol, (0.0, 12.5)) is None


@pytest.mark.parametrize(
    ("phase", "protocol", "seconds", "counter"),
    [
        ("", "episodic", (0.0, 0.0), UNKNOWN_PHASE),
        ("Acting", "episodic", (0.0, 0.0), UNKNOWN_PHASE),
        ("resetting", "episodic", (0.0, 0.0), UNKNOWN_PHASE),  # internal, never reported
        ("holding\x00", "episodic", (0.0, 0.0), UNKNOWN_PHASE),
        ("acting", "", (0.0, 0.0), UNKNOWN_PROTOCOL),
        ("acting", "sync", (0.0, 0.0), UNKNOWN_PROTOCOL),
        ("acting", "async", (math.nan, 0.0), BAD_SECONDS),
        ("acting", "async", (0.0, math.inf), BAD_SECONDS),
        ("acting", "async", (-1.0, 0.0), BAD_SECONDS),
    ],
)
def test_malformed_reports_are_rejected_under_their_counter(
    phase: str, protocol: str, seconds: tuple[float, float], counter: str
) -> None:
    assert phase_rejection(phase, protocol, seconds) == counter
