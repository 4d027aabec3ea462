"""bench/control_loop_bench.py --quick runs end to end and writes the documented JSON keys."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.ros

BENCH = Path(__file__).resolve().parents[3] / "bench" / "control_loop_bench.py"


def test_quick_bench_writes_results(tmp_path: Path) -> None:
    out = tmp_path / "control_loop.json"
    completed = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    printed = json.loads(completed.stdout)
    written = json.loads(out.read_text())
    assert printed == written
    idle = written["idle"]
    for key in ("rate_hz", "period_p50_ms", "period_p99_ms", "period_max_ms", "missed"):
        assert key in idle
    assert idle["rate_hz"] > 0 and idle["transitions"] > 0
    assert idle["window_closed"], "the controller was stopped before its window closed"
    longest = idle["longest_periods"]
    assert 0 < len(longest) <= 10
    assert [p["period_ms"] for p in longest] == sorted(
        (p["period_ms"] for p in longest), reverse=True
    )
    assert longest[0]["period_ms"] == pytest.approx(idle["period_max_ms"])
    assert set(longest[0]) >= {"at_s", "work_ms", "sleep_overrun_ms", "sleep_cpu_ms", "late_ms"}
    assert "counts" in idle["gc"] and "middleware_scheduling" in idle
