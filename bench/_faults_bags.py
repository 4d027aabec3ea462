"""Bag corruption for `mdemorl retrain` (issue 14's bag fault families).

A small valid bag (Pendulum-v1-sized transitions, written with ``bags.write_transitions``) is
damaged one way at a time and retrained from with ``cli.main(["retrain", ...])`` in-process:

- ``cut``: the ``.mcap`` file cut at 10 points spread over its length, ``metadata.yaml`` removed
  (what a recorder killed mid-write leaves);
- ``flip``: a byte flipped at a random offset (seeded): 10 such injections with ``quick=True``;
  100, plus 30 of 8 random bytes at once and 20 bursts of 64 contiguous bytes, with ``quick=False``;
- ``layout``: an empty ``.mcap``, garbage ``metadata.yaml``, a directory without ``.mcap`` files.

Outcomes: ``recovered`` (exit 0 and the report line "used N transitions (...)"), ``rejected_exit2``
(exit 2 with a message: nothing usable), ``traceback``, ``exit_other``. A recovered case that lost
transitions must say so in its report (else ``unreported_loss``), and a cut bag must give back
exactly the transitions whose records lie wholly before the cut, located in the intact file with
the ``mcap`` package's own reader (else ``lost_intact_transitions``). The rows read back are compared
with the rows written: ``altered_rows`` counts recovered rows that match no written row (a flipped
value bit that no check can see in a bag without CRCs); it is reported, not counted as a crash.
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from mcap.records import Message
from mcap.stream_reader import StreamReader

from mdemorl_core import cli
from mdemorl_core.bags import TransitionArrays, read_transitions, write_transitions
from mdemorl_core.config import BUNDLED_CONFIG_DIR

MSG_FILE = Path(__file__).resolve().parents[1] / "src" / "mdemorl_msgs" / "msg" / "Transition.msg"
ROWS = 240
CUTS = 10
# One final partial epoch on the salvaged rows; the smoke config keeps it to about a second.
RETRAIN_SETTINGS = ["--env", "Pendulum-v1", "--config", str(BUNDLED_CONFIG_DIR / "smoke.yaml")]
RETRAIN_SETTINGS += ["--set", "steps_per_epoch=100000", "--set", "agent.model.max_epochs=1"]
USED = re.compile(r": used (\d+) transitions \((.*)\)")


def _pendulum_rows(rows: int = ROWS) -> TransitionArrays:
    rng = np.random.default_rng(0)
    obs = rng.uniform(-1, 1, (rows + 1, 3)).astype(np.float32)
    return TransitionArrays(
        obs=obs[:-1],
        act=rng.uniform(-1, 1, (rows, 1)).astype(np.float32),
        rew=rng.normal(size=rows).astype(np.float32),
        next_obs=obs[1:],
        terminated=np.zeros(rows, bool),
        truncated=np.arange(rows) % 60 == 59,
        episode=(np.arange(rows) // 60).astype(np.uint32),
        step=(np.arange(rows) % 60).astype(np.uint32),
        policy_version=np.zeros(rows, np.uint32),
    )


def _row_keys(data: TransitionArrays) -> set[bytes]:
    packed = np.concatenate([data.obs, data.act, data.next_obs, data.rew[:, None]], axis=1)
    return {row.tobytes() for row in packed.astype(np.float32)}


def _injections(clean: Path, out: Path, quick: bool) -> list[tuple[str, str, Path, int | None]]:
    """(family, description, damaged bag directory, cut offset or None) for every injection."""
    mcap_name = next(clean.glob("*.mcap")).name
    data = (clean / mcap_name).read_bytes()
    made: list[tuple[str, str, Path, int | None]] = []

    def damaged(name: str, content: bytes, keep_metadata: bool = True) -> Path:
        bag = out / name
        shutil.copytree(clean, bag)
        (bag / mcap_name).write_bytes(content)
        if not keep_metadata:
            (bag / "metadata.yaml").unlink()
        return bag

    for k in range(1, CUTS + 1):
        at = len(data) * k // (CUTS + 1)
        what = f"cut at byte {at} of {len(data)}"
        made.append(("cut", what, damaged(f"cut{k}", data[:at], False), at))
    rng = np.random.default_rng(14)
    # (bytes flipped, contiguous burst) per injection, each at seeded random offsets.
    flips = (
        [(1, False)] * 10 if quick else [(1, False)] * 100 + [(8, False)] * 30 + [(64, True)] * 20
    )
    for i, (count, burst) in enumerate(flips):
        content = bytearray(data)
        if burst:
            start = int(rng.integers(0, len(data) - count))
            offsets = list(range(start, start + count))
        else:
            offsets = sorted(int(o) for o in rng.choice(len(data), count, replace=False))
        for offset in offsets:
            content[offset] ^= int(rng.integers(1, 256))
        what = f"{count} byte(s) flipped at {offsets[0]}" + ("..." if count > 1 else "")
        made.append(("flip", what, damaged(f"flip{i}", bytes(content)), None))
    made.append(("layout", "empty .mcap file", damaged("empty", b""), None))
    garbage = damaged("garbage_metadata", data)
    (garbage / "metadata.yaml").write_bytes(b"\x00\xffnot: [yaml")
    made.append(("layout", "garbage metadata.yaml", garbage, None))
    no_mcap = out / "no_mcap"
    no_mcap.mkdir()
    (no_mcap / "metadata.yaml").write_text("rosbag2_bagfile_information: {}\n")
    made.append(("layout", "directory without .mcap files", no_mcap, None))
    return made


def _retrain(bag: Path, out: Path) -> tuple[str, int | None, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    argv = ["retrain", "--bag", str(bag), "--out", str(out), *RETRAIN_SETTINGS]
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = cli.main(argv)
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    except Exception as error:  # noqa: BLE001  (an escape is what is being counted)
        return "traceback", None, "", f"{type(error).__name__}: {error}"[:300]
    if code == 0:
        return "recovered", code, stdout.getvalue(), ""
    return ("rejected_exit2" if code == 2 else "exit_other"), code, "", stderr.getvalue()[-300:]


def run(quick: bool) -> dict[str, Any]:
    """Inject every bag fault; see the module docstring for the families and outcomes."""
    started = time.perf_counter()
    original = _pendulum_rows()
    written = _row_keys(original)
    families: dict[str, Counter[str]] = {}
    cases: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="faults_bags_") as tmp:
        out = Path(tmp)
        write_transitions(out / "clean", original, MSG_FILE.read_text())
        clean = next((out / "clean").glob("*.mcap")).read_bytes()
        ends = _payload_ends(clean)
        for index, (family, what, bag, cut) in enumerate(_injections(out / "clean", out, quick)):
            outcome, code, stdout, stderr = _retrain(bag, out / f"run{index}")
            case: dict[str, Any] = {"family": family, "injection": what, "outcome": outcome}
            if outcome == "recovered":
                match = USED.search(stdout)
                recovered = int(match.group(1)) if match else -1
                case["transitions_recovered"] = recovered
                case["report"] = match.group(2) if match else stdout[-200:]
                arrays, _ = read_transitions(bag)
                case["altered_rows"] = len(_row_keys(arrays) - written)
                lost = recovered < ROWS
                if match is None or (lost and not _mentions_loss(case["report"])):
                    outcome = case["outcome"] = "unreported_loss"
            if cut is not None:
                # Every transition whose record lies wholly before the cut must come back.
                case["transitions_intact_before_cut"] = sum(end <= cut for end in ends)
                if case.get("transitions_recovered") != case["transitions_intact_before_cut"]:
                    outcome = case["outcome"] = "lost_intact_transitions"
            else:
                case["message"] = stderr.strip()
            families.setdefault(family, Counter())[outcome] += 1
            cases.append(case)
    bad = {"traceback", "exit_other", "unreported_loss", "lost_intact_transitions"}
    return {
        "suite": "bags",
        "quick": quick,
        "seconds": round(time.perf_counter() - started, 2),
        "transitions_written": ROWS,
        "injections": len(cases),
        "families": {
            name: {"injections": sum(c.values()), "outcomes": dict(sorted(c.items()))}
            for name, c in sorted(families.items())
        },
        "transitions_recovered": {
            family: [
                c["transitions_recovered"]
                for c in cases
                if c["family"] == family and "transitions_recovered" in c
            ]
            for family in sorted(families)
        },
        "altered_rows_accepted": sum(c.get("altered_rows", 0) for c in cases),
        "cases": cases,
        "misbehaving": [c for c in cases if c["outcome"] in bad],
    }


def _payload_ends(clean: bytes) -> list[int]:
    """File offset where each message's record ends in the intact file, found with the ``mcap``
    package's own reader (independent of the salvage code under test)."""
    return [
        clean.find(record.data) + len(record.data)
        for record in StreamReader(io.BytesIO(clean)).records
        if isinstance(record, Message)
    ]


def _mentions_loss(report: str) -> bool:
    return any(word in report for word in ("truncated", "rejected", "skipped", "undecodable"))
