"""Tolerant reading of MCAP files that a killed recorder or a bad disk left damaged.

The ``mcap`` package's stream reader gives up on the first damaged record, and it reads a chunk
record whole, so a recorder killed while filling a chunk (rosbag2 writes ~1 MB chunks) loses every
message of that chunk. This scanner walks the records itself (``opcode u8, length u64, content``)
and keeps going where it safely can:

- a cut *chunk* still gives every complete record before the cut (uncompressed chunks, rosbag2's
  default);
- a record with an unknown opcode (MCAP allows them, rosbag2 writes none) or a length that runs
  past the end of its chunk or file is a damaged byte or a cut: the scan resumes at the next
  offset where two well-formed records follow each other (a resynchronisation, noted), or ends;
- a chunk whose CRC does not match, or whose compression is unknown, is skipped and counted;
- a record that does not parse (a flipped string or id byte) is skipped and counted;
- schemas and channels are collected from the whole file first, so a damaged copy in the data
  section is replaced by the summary section's copy (the first copy that ``schema_ok`` accepts);
- a message on a channel that was never declared (a flipped channel id) is counted.

What it cannot see: a flipped byte inside a message's payload of a chunk without a CRC (rosbag2
writes none) decodes to a different, well-formed value; callers check values for plausibility.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from mcap.data_stream import ReadDataStream
from mcap.exceptions import McapError
from mcap.opcode import Opcode
from mcap.records import Channel, Chunk, Message, Schema
from mcap.stream_reader import get_chunk_data_stream

MAGIC = b"\x89MCAP0\r\n"
_RECORD_HEAD = struct.Struct("<BQ")  # opcode, content length
_CHUNK_HEAD = struct.Struct("<QQQII")  # start, end, uncompressed size, CRC, compression length
_KNOWN_OPCODES = frozenset(int(opcode) for opcode in Opcode)
# Shortest content of a record (every MCAP record has at least 4 bytes: DataEnd's CRC); checking
# it keeps runs of zero bytes in a payload from passing for records when resynchronising.
_MIN_LENGTH = {Opcode.MESSAGE: 22, Opcode.CHUNK: _CHUNK_HEAD.size + 8, Opcode.SCHEMA: 10}
# What a damaged record raises inside the mcap record parsers.
_PARSE_ERRORS = (McapError, EOFError, struct.error, UnicodeDecodeError, ValueError, KeyError)


@dataclass
class ScanDamage:
    """What the scan of one file met. ``cut_at``: byte offset of the record where the file (or a
    chunk) ends mid-record with nothing readable after it (None: it does not); ``resynchronised``:
    damaged regions skipped; ``notes``: one line per problem, for the user."""

    cut_at: int | None = None
    resynchronised: int = 0
    skipped_chunks: int = 0
    bad_records: int = 0
    unknown_channel_messages: int = 0
    notes: list[str] = field(default_factory=list)


def _record_end(data: memoryview, position: int) -> int | None:
    """End offset of a well-formed record head at ``position`` (known opcode, length inside
    ``data``), else None."""
    if len(data) - position < _RECORD_HEAD.size:
        return None
    opcode, length = _RECORD_HEAD.unpack_from(data, position)
    end = position + _RECORD_HEAD.size + length
    well_formed = opcode in _KNOWN_OPCODES and _MIN_LENGTH.get(opcode, 4) <= length
    return end if well_formed and end <= len(data) else None


def _chained_end(data: memoryview, position: int) -> int | None:
    """End of the record at ``position`` if it is well-formed and so is the record after it (or
    it ends ``data``), or if it is a chunk whose own length fields agree: a damaged length that
    still fits would otherwise swallow what follows."""
    end = _record_end(data, position)
    if end is None:
        return None
    if end == len(data) or _record_end(data, end) is not None or _cut_chunk(data, end):
        return end
    return (
        end if data[position] == Opcode.CHUNK and _chunk_consistent(data, position, end) else None
    )


def _cut_chunk(data: memoryview, position: int) -> bool:
    """Whether a chunk starts at ``position`` and runs past the end of ``data`` (a cut file)."""
    if len(data) - position < _RECORD_HEAD.size:
        return False
    opcode, length = _RECORD_HEAD.unpack_from(data, position)
    return opcode == Opcode.CHUNK and position + _RECORD_HEAD.size + length > len(data)


def _chunk_consistent(data: memoryview, position: int, end: int) -> bool:
    content = data[position + _RECORD_HEAD.size : end]
    if len(content) < _CHUNK_HEAD.size:
        return False
    _, _, size, _, name_length = _CHUNK_HEAD.unpack_from(content, 0)
    name_end = _CHUNK_HEAD.size + name_length
    if len(content) < name_end + 8:
        return False
    (records_length,) = struct.unpack_from("<Q", content, name_end)
    compressed = bytes(content[_CHUNK_HEAD.size : name_end]) != b""
    return records_length == len(content) - name_end - 8 and (compressed or size == records_length)


def _records(
    data: memoryview, base: int, damage: ScanDamage
) -> Iterator[tuple[int, int, memoryview, bool]]:
    """(file offset, opcode, content, complete) of each record in ``data``, which starts at file
    offset ``base``. A chunk that runs past the end is yielded incomplete (a cut chunk still holds
    records); after any other damaged record the scan resumes at the next offset where two
    well-formed records follow each other, if there is one."""
    position = 0
    while position < len(data):
        end = _chained_end(data, position)
        if end is not None:
            opcode = data[position]
            yield base + position, opcode, data[position + _RECORD_HEAD.size : end], True
            position = end
            continue
        head_fits = len(data) - position >= _RECORD_HEAD.size
        if head_fits and data[position] == Opcode.CHUNK and _record_end(data, position) is None:
            # Its records run to the end of ``data``: a resumption would read them twice.
            damage.cut_at = base + position
            yield base + position, Opcode.CHUNK, data[position + _RECORD_HEAD.size :], False
            return
        resume = next(
            (q for q in range(position + 1, len(data)) if _chained_end(data, q) is not None), None
        )
        if resume is None:
            end = _record_end(data, position)
            if end is None:
                damage.cut_at = base + position
                return
            # The last intact record before a cut: there is nothing after it to check it against.
            yield base + position, data[position], data[position + _RECORD_HEAD.size : end], True
            position = end
            continue
        damage.resynchronised += 1
        damage.notes.append(
            f"damaged record at byte {base + position}: skipped to byte {base + resume}"
        )
        position = resume


def _chunk_records(
    content: memoryview, complete: bool, offset: int, damage: ScanDamage
) -> tuple[memoryview, int] | None:
    """The uncompressed records of the chunk record at file offset ``offset`` (those before the
    cut when it is cut) and their file offset, or None when they cannot be trusted (CRC
    mismatch, unknown compression, cut compressed data)."""
    if len(content) < _CHUNK_HEAD.size:
        return None
    _, _, size, crc, name_length = _CHUNK_HEAD.unpack_from(content, 0)
    name_end = _CHUNK_HEAD.size + name_length
    if len(content) < name_end + 8:
        damage.bad_records += 1
        return None
    compression = bytes(content[_CHUNK_HEAD.size : name_end]).decode(errors="replace")
    (records_length,) = struct.unpack_from("<Q", content, name_end)
    if compression == "" and records_length != size:
        # Three fields give an uncompressed chunk's length: the records length, the uncompressed
        # size and the chunk record's own length. One disagrees: trust the two that agree.
        implied = len(content) - name_end - 8
        records_length = size if complete and size == implied else min(records_length, implied)
        damage.notes.append(f"chunk at byte {offset}: damaged length field, used {records_length}")
    records = content[name_end + 8 : name_end + 8 + records_length]
    whole = complete and len(records) == records_length
    if compression == "":
        if whole and crc != 0 and zlib.crc32(records) != crc:
            damage.skipped_chunks += 1
            damage.notes.append(f"chunk at byte {offset}: CRC mismatch, skipped")
            return None
        return records, offset + _RECORD_HEAD.size + name_end + 8
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


def _all_records(data: bytes, damage: ScanDamage) -> Iterator[tuple[int, memoryview]]:
    """(opcode, content) of every complete record of the file, those inside chunks included."""
    # The closing magic after the footer is not a record.
    closing = len(MAGIC) if data.endswith(MAGIC) and len(data) >= 2 * len(MAGIC) else 0
    view = memoryview(data)[len(MAGIC) : len(data) - closing]
    for offset, opcode, content, complete in _records(view, len(MAGIC), damage):
        if opcode == Opcode.FOOTER:
            return  # only the closing magic follows
        if opcode != Opcode.CHUNK:
            if complete:
                yield opcode, content
            continue
        found = _chunk_records(content, complete, offset, damage)
        if found is not None:
            records, records_offset = found
            for _, inner_opcode, inner, inner_complete in _records(records, records_offset, damage):
                if inner_complete:
                    yield inner_opcode, inner


def _stream(content: memoryview) -> ReadDataStream:
    return ReadDataStream(io.BytesIO(content))


def _declarations(
    data: bytes, topic: str, schema_ok: Callable[[Schema], bool], damage: ScanDamage
) -> tuple[dict[int, Schema], dict[int, Channel]]:
    """Schemas and channels by id, from the whole file (data and summary sections); of several
    copies, the first that ``schema_ok`` accepts (schemas) or that names ``topic`` (channels)."""
    schemas: dict[int, list[Schema]] = {}
    channels: dict[int, list[Channel]] = {}
    for opcode, content in _all_records(data, ScanDamage()):
        try:
            if opcode == Opcode.SCHEMA:
                schema = Schema.read(_stream(content))
                schemas.setdefault(schema.id, []).append(schema)
            elif opcode == Opcode.CHANNEL:
                channel = Channel.read(_stream(content))
                channels.setdefault(channel.id, []).append(channel)
        except _PARSE_ERRORS:
            damage.bad_records += 1
    chosen = {
        i: next((s for s in copies if schema_ok(s)), copies[0]) for i, copies in schemas.items()
    }

    def usable(channel: Channel) -> bool:
        schema = chosen.get(channel.schema_id)
        return channel.topic == topic and schema is not None and schema_ok(schema)

    return chosen, {
        i: next((c for c in copies if usable(c)), copies[0]) for i, copies in channels.items()
    }


def topic_messages(
    data: bytes,
    topic: str,
    damage: ScanDamage,
    schema_ok: Callable[[Schema], bool] = lambda schema: True,
) -> Iterator[tuple[str, str, bytes]]:
    """Yield (schema name, schema text, payload) of every intact message on ``topic`` of the MCAP
    file content ``data`` (which starts with the MCAP magic), in file order; the problems met are
    recorded in ``damage``. ``schema_ok`` tells a usable schema copy from a damaged one."""
    schemas, channels = _declarations(data, topic, schema_ok, damage)
    for opcode, content in _all_records(data, damage):
        if opcode != Opcode.MESSAGE:
            continue
        try:
            message = Message.read(_stream(content), len(content))
            channel = channels.get(message.channel_id)
            if channel is None:
                damage.unknown_channel_messages += 1
            elif channel.topic == topic:
                schema = schemas[channel.schema_id]
                yield schema.name, schema.data.decode(), message.data
        except _PARSE_ERRORS:
            damage.bad_records += 1
