"""Read the experience of a recorded rosbag2 (MCAP storage, CDR) back into arrays, without ROS.

A bag recorded by the trainer holds ``mdemorl_msgs/msg/Transition`` messages on
``/mdemorl/transition``. :func:`read_transitions` streams the ``.mcap`` files record by record, so a
bag whose recorder was killed (no ``metadata.yaml``, no MCAP summary, a cut last record) still gives
every complete message before the cut; the report says what was dropped and why. Message types are
taken from the schemas stored in the bag itself, so no ROS install is needed to read one.
:func:`write_transitions` writes such a bag from arrays (test fixtures, fault injection).
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from mcap.records import Schema
from rosbags.serde import SerdeError
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.base import TypesysError

from mdemorl_core.mcap_salvage import MAGIC, ScanDamage, topic_messages

TRANSITION_TOPIC = "/mdemorl/transition"
TRANSITION_TYPE = "mdemorl_msgs/msg/Transition"
# Actions are normalised to [-1, 1]; no task's observation or reward comes near this magnitude, so
# a value beyond it is a damaged float (a flipped exponent bit), not data.
MAX_ABS_VALUE = 1e6


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
    rejected_out_of_range: int = 0
    undecodable: int = 0
    skipped_chunks: int = 0
    bad_records: int = 0
    unknown_channel_messages: int = 0
    truncated_files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{self.transitions} transitions from {len(self.files)} file(s)"]
        counts = (
            (self.rejected_non_finite, "rejected for NaN/Inf"),
            (self.rejected_wrong_dims, "rejected for inconsistent dimensions"),
            (self.rejected_out_of_range, "rejected for implausible values"),
            (self.undecodable, "undecodable messages skipped"),
            (self.skipped_chunks, "damaged chunks skipped"),
            (self.bad_records, "damaged records skipped"),
            (self.unknown_channel_messages, "messages on undeclared channels skipped"),
        )
        parts += [f"{count} {what}" for count, what in counts if count]
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
    """Yield (schema name, schema text, CDR bytes) of every intact message on ``topic``."""
    # Whole file in memory: a trainer's bag of an hour's transitions is tens of MB.
    try:
        data = path.read_bytes()
    except OSError as error:
        raise BagError(f"cannot read {path}: {error}") from error
    if not data.startswith(MAGIC):
        raise BagError(f"{path} is not a readable MCAP file (no MCAP magic at its start)")
    damage = ScanDamage()
    yield from topic_messages(data, topic, damage, _usable_schema)
    report.skipped_chunks += damage.skipped_chunks
    report.bad_records += damage.bad_records + damage.resynchronised
    report.unknown_channel_messages += damage.unknown_channel_messages
    report.notes += [f"{path.name}: {note}" for note in damage.notes]
    if damage.cut_at is not None:
        report.truncated_files.append(path.name)
        report.notes.append(
            f"{path.name}: ends inside the record at byte {damage.cut_at} of {len(data)} (cut, or "
            "a damaged length): read everything before it"
        )


_FIELDS_READ = {"observation", "action", "next_observation", "reward", "terminated", "truncated"}


def _usable_schema(schema: Schema) -> bool:
    """Whether ``schema`` is an intact ``Transition`` definition (parses, has the fields read)."""
    if schema.name != TRANSITION_TYPE:
        return False
    try:
        types = get_types_from_msg(schema.data.decode(), schema.name)
    except (TypesysError, UnicodeDecodeError):
        return False
    _, fields = types.get(TRANSITION_TYPE, ((), ()))
    return {name for name, _ in fields} >= _FIELDS_READ


def read_transitions(
    bag: Path | str, topic: str = TRANSITION_TOPIC
) -> tuple[TransitionArrays, BagReadReport]:
    """Read every valid ``Transition`` of a bag directory (or one ``.mcap`` file).

    Transitions with NaN/Inf values, actions outside [-1, 1], values beyond ``MAX_ABS_VALUE``, or
    dimensions that differ from those of most transitions are counted and left out, and so are
    messages that do not decode; damaged or cut files are read as far as they are intact
    (:mod:`mdemorl_core.mcap_salvage`), and the report says what was lost. Raises :class:`BagError` when the bag holds no valid transition.
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
                schema = Schema(id=0, name=type_name, encoding="ros2msg", data=type_text.encode())
                if not _usable_schema(schema):
                    raise BagError(f"every copy of the schema of {topic} in {path} is damaged")
                typestore.register(get_types_from_msg(type_text, type_name))
                registered.add(type_name)
            try:
                msg: Any = typestore.deserialize_cdr(data, type_name)
            except (SerdeError, ValueError, IndexError, struct.error, UnicodeDecodeError):
                report.undecodable += 1
                continue
            obs, act, next_obs = msg.observation, msg.action, msg.next_observation
            values = np.concatenate([obs, act, next_obs, [msg.reward]])
            if not np.all(np.isfinite(values)):
                report.rejected_non_finite += 1
                continue
            if np.any(np.abs(act) > 1.0) or np.any(np.abs(values) > MAX_ABS_VALUE):
                report.rejected_out_of_range += 1
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
        notes = "".join(f"; {note}" for note in report.notes)
        raise BagError(
            f"no valid {TRANSITION_TYPE} on {topic} in {bag} ({report.summary()}{notes})"
        )
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


def write_transitions(
    path: Path, data: TransitionArrays, msg_definition: str, topic: str = TRANSITION_TOPIC
) -> None:
    """Write ``data`` as a rosbag2 directory ``path`` (MCAP storage) in the trainer recorder's
    layout: one ``Transition`` per row on ``topic``, stamped 1 ms apart.

    ``msg_definition`` is the text of ``Transition.msg`` (mdemorl_msgs; the bag stores it as the
    schema, which :func:`read_transitions` reads back).
    """
    from rosbags.rosbag2 import StoragePlugin, Writer

    typestore = get_typestore(Stores.ROS2_KILTED)
    typestore.register(get_types_from_msg(msg_definition, TRANSITION_TYPE))
    transition = typestore.types[TRANSITION_TYPE]
    header = typestore.types["std_msgs/msg/Header"]
    stamp = typestore.types["builtin_interfaces/msg/Time"]
    with Writer(Path(path), version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        connection = writer.add_connection(topic, TRANSITION_TYPE, typestore=typestore)
        for i in range(len(data)):
            nanoseconds = i * 1_000_000
            msg = transition(
                header=header(
                    stamp=stamp(sec=nanoseconds // 10**9, nanosec=nanoseconds % 10**9), frame_id=""
                ),
                episode=int(data.episode[i]),
                step=int(data.step[i]),
                policy_version=int(data.policy_version[i]),
                observation=np.asarray(data.obs[i], dtype=np.float32),
                action=np.asarray(data.act[i], dtype=np.float32),
                next_observation=np.asarray(data.next_obs[i], dtype=np.float32),
                reward=np.float32(data.rew[i]),
                terminated=bool(data.terminated[i]),
                truncated=bool(data.truncated[i]),
            )
            writer.write(connection, nanoseconds, typestore.serialize_cdr(msg, TRANSITION_TYPE))
