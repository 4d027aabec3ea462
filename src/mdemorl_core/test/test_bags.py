"""Reading transitions back from rosbag2 MCAP bags, including bags whose recorder was killed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from mdemorl_core.bags import (
    TRANSITION_TOPIC,
    TRANSITION_TYPE,
    BagError,
    read_transitions,
    write_transitions,
)
from mdemorl_core.mcap_salvage import ScanDamage, topic_messages

MSG_DIR = Path(__file__).resolve().parents[2] / "mdemorl_msgs" / "msg"


def _write_bag(path: Path, rows: list[dict]) -> None:
    typestore = get_typestore(Stores.ROS2_KILTED)
    text = (MSG_DIR / "Transition.msg").read_text()
    typestore.register(get_types_from_msg(text, TRANSITION_TYPE))
    transition = typestore.types[TRANSITION_TYPE]
    header = typestore.types["std_msgs/msg/Header"]
    stamp = typestore.types["builtin_interfaces/msg/Time"]
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        connection = writer.add_connection(TRANSITION_TOPIC, TRANSITION_TYPE, typestore=typestore)
        other = writer.add_connection("/other", "std_msgs/msg/Header", typestore=typestore)
        for i, row in enumerate(rows):
            msg = transition(
                header=header(stamp=stamp(sec=i, nanosec=0), frame_id=""),
                episode=row["episode"],
                step=row["step"],
                policy_version=row["episode"] // 2,
                observation=np.asarray(row["obs"], dtype=np.float32),
                action=np.asarray(row["act"], dtype=np.float32),
                next_observation=np.asarray(row["next_obs"], dtype=np.float32),
                reward=np.float32(row["rew"]),
                terminated=row["terminated"],
                truncated=False,
            )
            writer.write(connection, i * 1000, typestore.serialize_cdr(msg, TRANSITION_TYPE))
            noise = header(stamp=stamp(sec=i, nanosec=0), frame_id="x")
            writer.write(other, i * 1000, typestore.serialize_cdr(noise, "std_msgs/msg/Header"))


def _rows(n: int) -> list[dict]:
    return [
        {
            "episode": i // 10,
            "step": i % 10,
            "obs": [i, 2.0 * i, -1.0],
            "act": [0.1 * (i % 5)],
            "next_obs": [i + 1, 2.0 * i + 2, -1.0],
            "rew": 0.5 - 0.01 * i,
            "terminated": i % 10 == 9,
        }
        for i in range(n)
    ]


def test_round_trip_and_invalid_messages_are_counted(tmp_path: Path) -> None:
    rows = _rows(40)
    rows[5]["obs"] = [float("nan"), 0.0, 0.0]
    rows[7]["act"] = [0.1, 0.2]
    _write_bag(tmp_path / "bag", rows)

    arrays, report = read_transitions(tmp_path / "bag")

    kept = [r for i, r in enumerate(rows) if i not in (5, 7)]
    assert len(arrays) == 38 and report.transitions == 38
    assert report.rejected_non_finite == 1 and report.rejected_wrong_dims == 1
    np.testing.assert_array_equal(arrays.obs, np.array([r["obs"] for r in kept], np.float32))
    np.testing.assert_array_equal(
        arrays.act[:, 0], np.array([r["act"][0] for r in kept], np.float32)
    )
    np.testing.assert_array_equal(arrays.next_obs[:, 1], [r["next_obs"][1] for r in kept])
    np.testing.assert_allclose(arrays.rew, [r["rew"] for r in kept], rtol=1e-6)
    np.testing.assert_array_equal(arrays.terminated, [r["terminated"] for r in kept])
    np.testing.assert_array_equal(arrays.step, [r["step"] for r in kept])
    np.testing.assert_array_equal(arrays.policy_version, [r["episode"] // 2 for r in kept])
    assert report.truncated_files == []


def test_killed_recorder_bag_keeps_every_complete_message(tmp_path: Path) -> None:
    _write_bag(tmp_path / "bag", _rows(30))
    mcap_file = next((tmp_path / "bag").glob("*.mcap"))
    (tmp_path / "bag" / "metadata.yaml").unlink()
    data = mcap_file.read_bytes()
    # A recorder killed after its last data chunk: no summary section, no footer, a cut record.
    data_end = data.index(b"\x0f" + (4).to_bytes(8, "little"))  # the DataEnd record
    mcap_file.write_bytes(data[: data_end + 5])

    arrays, report = read_transitions(tmp_path / "bag")

    assert len(arrays) == 30
    assert report.truncated_files == [mcap_file.name]
    assert "truncated" in report.summary()


def test_bag_cut_inside_its_chunk_keeps_the_messages_before_the_cut(tmp_path: Path) -> None:
    rows = _rows(60)
    _write_bag(tmp_path / "bag", rows)
    mcap_file = next((tmp_path / "bag").glob("*.mcap"))
    data = mcap_file.read_bytes()
    # rosbag2 writes one chunk here; the stream reader of the mcap package loses all of it.
    mcap_file.write_bytes(data[: len(data) // 2])

    arrays, report = read_transitions(tmp_path / "bag")

    assert 0 < len(arrays) < 60
    np.testing.assert_array_equal(arrays.obs, np.array([r["obs"] for r in rows[: len(arrays)]]))
    assert report.truncated_files == [mcap_file.name]
    assert any("ends inside the record" in note for note in report.notes)


def test_undecodable_and_implausible_messages_are_skipped_and_counted(tmp_path: Path) -> None:
    rows = _rows(20)
    rows[3]["act"] = [1.5]  # actions are normalised to [-1, 1]
    rows[4]["obs"] = [3e30, 0.0, 0.0]  # a float whose exponent bits were flipped
    _write_bag(tmp_path / "bag", rows)
    mcap_file = next((tmp_path / "bag").glob("*.mcap"))
    data = bytearray(mcap_file.read_bytes())
    first = next(topic_messages(bytes(data), TRANSITION_TOPIC, ScanDamage()))[2]
    # CDR: 4-byte encapsulation, stamp (8 bytes), then frame_id's length: make it absurd.
    length_at = bytes(data).index(first) + 12
    data[length_at : length_at + 4] = (10**9).to_bytes(4, "little")
    mcap_file.write_bytes(bytes(data))

    arrays, report = read_transitions(tmp_path / "bag")

    assert len(arrays) == 17
    assert report.undecodable == 1 and report.rejected_out_of_range == 2
    assert "1 undecodable messages skipped" in report.summary()
    assert "2 rejected for implausible values" in report.summary()


def test_write_transitions_round_trip(tmp_path: Path) -> None:
    rows = _rows(12)
    _write_bag(tmp_path / "source", rows)
    arrays, _ = read_transitions(tmp_path / "source")
    write_transitions(tmp_path / "copy", arrays, (MSG_DIR / "Transition.msg").read_text())
    copy, report = read_transitions(tmp_path / "copy")
    assert report.transitions == 12 and report.notes == []
    for name in ("obs", "act", "rew", "next_obs", "terminated", "episode", "step"):
        np.testing.assert_array_equal(getattr(copy, name), getattr(arrays, name), err_msg=name)


def test_unreadable_bags_raise_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(BagError, match="bag not found"):
        read_transitions(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BagError, match="no .mcap files"):
        read_transitions(tmp_path / "empty")
    (tmp_path / "junk.mcap").write_bytes(b"this is not a bag")
    with pytest.raises(BagError, match="not a readable MCAP file"):
        read_transitions(tmp_path / "junk.mcap")
    _write_bag(tmp_path / "bag", _rows(3))
    with pytest.raises(BagError, match="no valid"):
        read_transitions(tmp_path / "bag", topic="/nothing_here")


def test_retrain_from_bag_replays_epochs_in_recorded_order(tmp_path: Path) -> None:
    from mdemorl_core.config import build_train_config
    from mdemorl_core.training.online import retrain_from_bags
    from mdemorl_core.training.progress_log import read_progress

    _write_bag(tmp_path / "bag", _rows(50))
    config = build_train_config(
        {
            "env_id": "Pendulum-v1",
            "steps_per_epoch": 20,
            "agent": {
                "model": {"ensemble_size": 2, "num_elites": 1, "hidden_size": 16, "max_epochs": 2},
                "sac": {"hidden_size": 16, "batch_size": 8},
                "schedule": {"b_start": 4, "b_end": 4, "h_start": 2, "h_end": 2},
                "utd_ratio": 0.1,
                "min_model_data": 10,
            },
        }
    )
    _write_bag(tmp_path / "bag2", _rows(25))
    bags = [tmp_path / "bag", tmp_path / "bag2"]
    trainer, reports = retrain_from_bags(bags, config, tmp_path / "run", 3, 1)

    rows = read_progress(tmp_path / "run" / "progress.csv")
    assert [int(r["env_steps"]) for r in rows] == [20, 40, 60, 75]
    assert trainer.epoch == 4 and [r.transitions for _, r in reports] == [50, 25]
    with pytest.raises(ValueError, match="dims 3/1"):
        retrain_from_bags(bags, config, tmp_path / "other", 4, 1)
    assert not (tmp_path / "other").exists()  # every bag is checked before the run is created

    # --init: a new run continuing the first one's checkpoint (epoch, D_ENV) with more data.
    more, _ = retrain_from_bags([bags[1]], config, tmp_path / "cont", 3, 1, init=tmp_path / "run")
    assert more.epoch == 6 and more.agent.env_steps == 100
    rows = read_progress(tmp_path / "cont" / "progress.csv")
    assert [int(r["env_steps"]) for r in rows] == [20, 40, 60, 75, 95, 100]


def test_retrain_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mdemorl_core.cli import main

    _write_bag(tmp_path / "bag", _rows(30))
    tiny = [
        "agent.model.ensemble_size=2",
        "agent.model.num_elites=1",
        "agent.model.hidden_size=16",
        "agent.model.max_epochs=2",
        "agent.sac.hidden_size=16",
        "agent.sac.batch_size=8",
        "agent.schedule.b_start=4",
        "agent.schedule.b_end=4",
        "steps_per_epoch=15",
    ]
    args = ["retrain", "--bag", str(tmp_path / "bag"), "--out", str(tmp_path / "run")]
    args += ["--env", "Pendulum-v1", *[item for o in tiny for item in ("--set", o)]]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "2 epochs, 30 transitions in D_ENV" in out
    assert f"{tmp_path / 'bag'}: used 30 transitions" in out
    cont = ["retrain", "--bag", str(tmp_path / "bag"), "--bag", str(tmp_path / "bag")]
    cont += ["--out", str(tmp_path / "cont"), "--init", str(tmp_path / "run")]
    assert main(cont) == 0
    out = capsys.readouterr().out
    assert "60 transitions from 2 bag(s), continuing" in out and "6 epochs, 90 transitions" in out
    assert main([*cont[:-4], "--out", str(tmp_path / "x2"), "--init", str(tmp_path / "no")]) == 2
    assert main(["retrain", "--bag", str(tmp_path / "missing"), "--out", str(tmp_path / "x")]) == 2
    assert "bag not found" in capsys.readouterr().err
