"""Tolerant reading of MCAP files that a killed recorder or a bad disk left damaged.

The ``mcap`` package's stream reader gives up on the first damaged record, and it reads a chunk
record whole, so a recorder killed while filling a chunk (rosbag2 writes ~1 MB chunks) loses every
message of that chunk. This scanner walks the records itself (``opcode u8, length u64, content``)
and keeps going where it safely can:

- a record that runs past the end of the file (a cut) ends the scan, but a cut *chunk* still gives
  every complete record before the cut (uncompressed chunks; rosbag2's default);
- a chunk whose CRC does not match, or whose compression is unknown, is skipped and counted;
- a record that does not parse (a flipped length or string byte) is skipped and counted;
- a message on a channel that was never declared (a flipped channel id) is counted.

What it cannot see: a flipped byte inside a message's payload of a chunk without a CRC (rosbag2
writes none) decodes to a different, well-formed value; callers check values for plausibility.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from mcap.data_stream import ReadDataStream
from mcap.exceptions import McapError
from mcap.opcode import Opcode
from mcap.records import Channel, Chunk, Message, Schema
from mcap.stream_reader import get_chunk_data_stream

MAGIC = b"\x89MCAP0\r\n"
_RECORD_HEAD = struct.Struct("<BQ")  # opcode, content length
_CHUNK_HEAD = struct.Struct("<QQQII")  # start, end, uncompressed size, CRC, compression length
# What a damaged record raises inside the mcap record parsers.
_PARSE_ERRORS = (McapError, EOFError, struct.error, UnicodeDecodeError, ValueError, KeyError)


@dataclass
class ScanDamage:
    """What the scan of one file met. ``cut_at``: byte offset where the file ends inside a record
    (None: it does not); ``notes``: one line per problem, for the user."""

    cut_at: int | None = None
    skipped_chunks: int = 0
    bad_records: int = 0
    unknown_channel_messages: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass
class _State:
    topic: str
    damage: ScanDamage
    schemas: dict[int, Schema] = field(default_factory=dict)
    channels: dict[int, Channel] = field(default_factory=dict)


def _records(
    data: memoryview, base: int, damage: ScanDamage
) -> Iterator[tuple[int, int, memoryview, bool]]:
    """(file offset, opcode, content, complete) of each record in ``data``, which starts at file
    offset ``base``. The last record is incomplete when ``data`` ends inside it (a cut)."""
    position = 0
    while position < len(data):
        if len(data) - position < _RECORD_HEAD.size:
            damage.cut_at = base + position
            return
        opcode, length = _RECORD_HEAD.unpack_from(data, position)
        start = position + _RECORD_HEAD.size
        if length > len(data) - start:
            damage.cut_at = base + position
            yield base + position, opcode, data[start:], False
            return
        yield base + position, opcode, data[start : start + length], True
        position = start + length


def _stream(content: memoryview) -> ReadDataStream:
    return ReadDataStream(io.BytesIO(content))


def _handle(opcode: int, content: memoryview, state: _State) -> Iterator[tuple[str, str, bytes]]:
    """Register a schema or channel, or yield a message on the wanted topic."""
    if opcode == Opcode.SCHEMA:
        schema = Schema.read(_stream(content))
        state.schemas[schema.id] = schema
    elif opcode == Opcode.CHANNEL:
        channel = Channel.read(_stream(content))
        state.channels[channel.id] = channel
    elif opcode == Opcode.MESSAGE:
        message = Message.read(_stream(content), len(content))
        channel = state.channels.get(message.channel_id)
        if channel is None:
            state.damage.unknown_channel_messages += 1
        elif channel.topic == state.topic:
            schema = state.schemas[channel.schema_id]
            yield schema.name, schema.data.decode(), message.data


_KNOWN_OPCODES = frozenset(int(opcode) for opcode in Opcode)


def _guarded(opcode: int, content: memoryview, state: _State) -> Iterator[tuple[str, str, bytes]]:
    if opcode not in _KNOWN_OPCODES:  # allowed by MCAP, but rosbag2 writes none: a flipped byte
        state.damage.bad_records += 1
        return
    try:
        yield from _handle(opcode, content, state)
    except _PARSE_ERRORS:
        state.damage.bad_records += 1


def _chunk_records(
    content: memoryview, complete: bool, offset: int, damage: ScanDamage
) -> tuple[memoryview, int] | None:
    """The uncompressed records of the chunk record at file offset ``offset`` (those before the
    cut when it is cut) and their file offset, or None when they cannot be trusted (CRC
    mismatch, unknown compression, cut compressed data)."""
    head = _RECORD_HEAD.size + _CHUNK_HEAD.size
    if len(content) < _CHUNK_HEAD.size + 8:
        return None
    _, _, size, crc, name_length = _CHUNK_HEAD.unpack_from(content, 0)
    name_end = _CHUNK_HEAD.size + name_length
    if len(content) < name_end + 8:
        damage.bad_records += 1
        return None
    compression = bytes(content[_CHUNK_HEAD.size : name_end]).decode(errors="replace")
    (records_length,) = struct.unpack_from("<Q", content, name_end)
    records = content[name_end + 8 : name_end + 8 + records_length]
    whole = complete and len(records) == records_length
    if compression == "":
        if whole and crc != 0 and zlib.crc32(records) != crc:
            damage.skipped_chunks += 1
            damage.notes.append(f"chunk at byte {offset}: CRC mismatch, skipped")
            return None
        return records, offset + head + name_length + 8
    if not whole:
        damage.skipped_chunks += 1
        damage.notes.append(f"chunk at byte {offset}: cut {compression!r} data, skipped")
        return None
    chunk = Chunk(
        compression=compression,
        data=bytes(records),
        message_end_time=0,
        message_start_time=0,
        uncompressed_crc=crc,
        uncompressed_size=size,
    )
    try:
        stream, length = get_chunk_data_stream(chunk, validate_crc=True)
    except (McapError, ValueError, RuntimeError) as error:  # unknown codec, CRC, bad frame
        damage.skipped_chunks += 1
        damage.notes.append(f"chunk at byte {offset}: {error!r}, skipped")
        return None
    return memoryview(stream.read(length)), offset


def topic_messages(data: bytes, topic: str, damage: ScanDamage) -> Iterator[tuple[str, str, bytes]]:
    """Yield (schema name, schema text, payload) of every intact message on ``topic`` of the MCAP
    file content ``data`` (which starts with the MCAP magic), in file order; the problems met are
    recorded in ``damage``."""
    state = _State(topic, damage)
    view = memoryview(data)[len(MAGIC) :]
    for offset, opcode, content, complete in _records(view, len(MAGIC), damage):
        if opcode == Opcode.FOOTER:
            return  # the summary section before it repeats what the data section declared
        if opcode != Opcode.CHUNK:
            if complete and opcode != Opcode.DATA_END:
                yield from _guarded(opcode, content, state)
            continue
        found = _chunk_records(content, complete, offset, damage)
        if found is None:
            continue
        records, records_offset = found
        for _, inner_opcode, inner, inner_complete in _records(records, records_offset, damage):
            if inner_complete:
                yield from _guarded(inner_opcode, inner, state)
