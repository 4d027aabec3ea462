"""Read the experience of a recorded rosbag2 (MCAP storage, CDR) back into arrays, without ROS.

A bag recorded by the trainer holds ``mdemorl_msgs/msg/Transition`` messages on
``/mdemorl/transition``. :func:`read_transitions` streams the ``.mcap`` files record by record, so a
bag whose recorder was killed (no ``metadata.yaml``, no MCAP summary, a cut last record) still gives
every complete message before the cut; the report says what was dropped and why. Message types are
taken from the schemas stored in the bag itself, so no ROS install is needed to read one.
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from mcap.exceptions import McapError
from mcap.records import Channel, Message, Schema
from mcap.stream_reader import StreamReader
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

TRANSITION_TOPIC = "/mdemorl/transition"
TRANSITION_TYPE = "mdemorl_msgs/msg/Transition"


class BagError(ValueError):
    """A bag that cannot give any transitions (missing, not MCAP, wrong topic types)."""


@dataclass
class TransitionArrays:
    """Experience read from a bag; N transitions, O observation dims, A action dims.

    Attributes:
        obs: N x O float32.
        act: N x A float32, normalised actions in [-1, 1].
        rew: N float32.
        next_obs: N x O float32.
        terminated: N bool.
        truncated: N bool.
        episode: N uint32, the controller's episode counter.
        step: N uint32, the step within the episode.
        policy_version: N uint32, the policy version that acted (0 in bags recorded before
            Transition carried it).
    """

    obs: np.ndarray
    act: np.ndarray
    rew: np.ndarray
    next_obs: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    episode: np.ndarray
    step: np.ndarray
    policy_version: np.ndarray

    def __len__(self) -> int:
        return int(self.rew.shape[0])


@dataclass
class BagReadReport:
    """What :func:`read_transitions` read and what it had to leave out."""

    files: list[str] = field(default_factory=list)
    transitions: int = 0
    rejected_non_finite: int = 0
    rejected_wrong_dims: int = 0
    truncated_files: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{self.transitions} transitions from {len(self.files)} file(s)"]
        if self.rejected_non_finite:
            parts.append(f"{self.rejected_non_finite} rejected for NaN/Inf")
        if self.rejected_wrong_dims:
            parts.append(f"{self.rejected_wrong_dims} rejected for inconsistent dimensions")
        if self.truncated_files:
            parts.append(f"truncated (read up to the cut): {', '.join(self.truncated_files)}")
        return "; ".join(parts)


def _mcap_files(bag: Path) -> list[Path]:
    if bag.is_file():
        return [bag]
    if not bag.is_dir():
        raise BagError(f"bag not found: {bag}")
    files = sorted(bag.glob("*.mcap"))
    if not files:
        raise BagError(f"no .mcap files in {bag} (only MCAP storage is supported)")
    return files


def _messages(path: Path, topic: str, report: BagReadReport) -> Iterator[tuple[str, str, bytes]]:
    """Yield (schema name, schema text, CDR bytes) of every complete message on ``topic``."""
    schemas: dict[int, Schema] = {}
    channels: dict[int, Channel] = {}
    records_read = 0
    with path.open("rb") as stream:
        try:
            for record in StreamReader(stream).records:
                records_read += 1
                if isinstance(record, Schema):
                    schemas[record.id] = record
                elif isinstance(record, Channel):
                    channels[record.id] = record
                elif isinstance(record, Message):
                    channel = channels.get(record.channel_id)
                    if channel is None or channel.topic != topic:
                        continue
                    schema = schemas[channel.schema_id]
                    yield schema.name, schema.data.decode(), record.data
        except (McapError, EOFError, struct.error) as error:
            if records_read == 0:
                raise BagError(f"{path} is not a readable MCAP file: {error!r}") from error
            report.truncated_files.append(path.name)


def read_transitions(
    bag: Path | str, topic: str = TRANSITION_TOPIC
) -> tuple[TransitionArrays, BagReadReport]:
    """Read every valid ``Transition`` of a bag directory (or one ``.mcap`` file).

    Transitions with NaN/Inf values, or whose dimensions differ from those of most transitions,
    are counted and left out. Raises :class:`BagError` when the bag holds no valid transition.
    """
    bag = Path(bag)
    report = BagReadReport()
    typestore = get_typestore(Stores.ROS2_KILTED)
    registered: set[str] = set()
    rows: list[tuple[Any, ...]] = []
    for path in _mcap_files(bag):
        for type_name, type_text, data in _messages(path, topic, report):
            if type_name != TRANSITION_TYPE:
                raise BagError(
                    f"{topic} in {path} has type {type_name}, expected {TRANSITION_TYPE}"
                )
            if type_name not in registered:
                typestore.register(get_types_from_msg(type_text, type_name))
                registered.add(type_name)
            msg: Any = typestore.deserialize_cdr(data, type_name)
            obs, act, next_obs = msg.observation, msg.action, msg.next_observation
            values = np.concatenate([obs, act, next_obs, [msg.reward]])
            if not np.all(np.isfinite(values)):
                report.rejected_non_finite += 1
                continue
            rows.append(
                (
                    obs,
                    act,
                    next_obs,
                    msg.reward,
                    msg.terminated,
                    msg.truncated,
                    msg.episode,
                    msg.step,
                    getattr(msg, "policy_version", 0),
                )
            )
        report.files.append(path.name)
    # The task's dimensions are those of the bulk of the data; a stray malformed message (or one
    # from another task) must not decide them.
    dims = Counter((r[0].size, r[1].size, r[2].size) for r in rows)
    if dims:
        (obs_dim, act_dim, next_dim), _ = dims.most_common(1)[0]
        consistent = [
            r for r in rows if (r[0].size, r[1].size, r[2].size) == (obs_dim, act_dim, next_dim)
        ]
        report.rejected_wrong_dims = len(rows) - len(consistent)
        rows = consistent if obs_dim == next_dim else []
    if not rows:
        raise BagError(f"no valid {TRANSITION_TYPE} on {topic} in {bag} ({report.summary()})")
    columns = list(zip(*rows, strict=True))
    arrays = TransitionArrays(
        obs=np.stack(columns[0]).astype(np.float32),
        act=np.stack(columns[1]).astype(np.float32),
        next_obs=np.stack(columns[2]).astype(np.float32),
        rew=np.asarray(columns[3], dtype=np.float32),
        terminated=np.asarray(columns[4], dtype=bool),
        truncated=np.asarray(columns[5], dtype=bool),
        episode=np.asarray(columns[6], dtype=np.uint32),
        step=np.asarray(columns[7], dtype=np.uint32),
        policy_version=np.asarray(columns[8], dtype=np.uint32),
    )
    report.transitions = len(arrays)
    return arrays, report
