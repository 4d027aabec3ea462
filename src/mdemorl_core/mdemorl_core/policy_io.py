"""Actor weights as bytes, for /mdemorl/policy and the torque controller.

The blob is ``torch.save`` of a dict holding only plain values and tensors (format version,
algorithm name, policy version, the actor's architecture incl. obs/act dims, CPU state_dict), so
the receiver loads it with ``weights_only=True`` (no code execution). The publisher sends
``sha256_hex(blob)`` next to the blob; the receiver calls :func:`verify_checksum` first.
"""

from __future__ import annotations

import hashlib
import io
from typing import Any

import torch

from mdemorl_core.agents.sac import TanhGaussianActor

BLOB_FORMAT = 1
_ARCHITECTURE_KEYS = (
    "obs_dim",
    "act_dim",
    "hidden_size",
    "num_layers",
    "log_std_min",
    "log_std_max",
)


def serialize_actor(actor: TanhGaussianActor, *, algorithm: str, version: int) -> bytes:
    """Actor -> bytes (architecture + float32 CPU weights + metadata)."""
    if not isinstance(actor, TanhGaussianActor):
        raise TypeError(f"actor must be a TanhGaussianActor, got {type(actor).__name__}")
    if version < 0:
        raise ValueError(f"version must be >= 0, got {version}")
    payload = {
        "format": BLOB_FORMAT,
        "algorithm": str(algorithm),
        "version": int(version),
        "architecture": actor.architecture(),
        "state_dict": {
            k: v.detach().to("cpu", torch.float32).clone() for k, v in actor.state_dict().items()
        },
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def _load_payload(data: bytes) -> dict[str, Any]:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"actor blob must be bytes, got {type(data).__name__}")
    try:
        payload = torch.load(io.BytesIO(bytes(data)), map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for corrupt input; report one.
        raise ValueError(f"actor blob is not a readable torch payload: {error}") from error
    if not isinstance(payload, dict) or payload.get("format") != BLOB_FORMAT:
        raise ValueError("actor blob has an unknown format")
    missing = [key for key in _ARCHITECTURE_KEYS if key not in payload.get("architecture", {})]
    if missing:
        raise ValueError(f"actor blob architecture lacks {missing}")
    return payload


def actor_blob_metadata(data: bytes) -> dict[str, Any]:
    """``{"algorithm", "version", "obs_dim", "act_dim", ...architecture}`` of a blob."""
    payload = _load_payload(data)
    return {
        "algorithm": payload["algorithm"],
        "version": payload["version"],
        **payload["architecture"],
    }


def deserialize_actor(data: bytes, expected_sha256: str | None = None) -> TanhGaussianActor:
    """Bytes -> a CPU float32 actor in eval mode. With ``expected_sha256`` the checksum is
    verified first (ValueError on mismatch)."""
    if expected_sha256 is not None:
        verify_checksum(data, expected_sha256)
    payload = _load_payload(data)
    architecture = payload["architecture"]
    try:
        actor = TanhGaussianActor(**{key: architecture[key] for key in _ARCHITECTURE_KEYS})
        actor.load_state_dict(payload["state_dict"])
    except (TypeError, ValueError, RuntimeError, AttributeError) as error:
        # A readable blob whose weights do not fit its own architecture (torch raises
        # RuntimeError for mismatched shapes): the same ValueError as any corrupt blob.
        raise ValueError(f"actor blob weights do not fit its architecture: {error}") from error
    actor.eval()
    return actor


def sha256_hex(data: bytes) -> str:
    """Lower-case hex SHA-256 of ``data``."""
    return hashlib.sha256(bytes(data)).hexdigest()


def verify_checksum(data: bytes, expected_sha256: str) -> None:
    """Raise ValueError unless ``sha256_hex(data)`` equals ``expected_sha256`` (case-insensitive)."""
    actual = sha256_hex(data)
    if actual != expected_sha256.strip().lower():
        raise ValueError(f"actor blob checksum mismatch: expected {expected_sha256}, got {actual}")
