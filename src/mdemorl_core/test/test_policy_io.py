"""Actor serialisation for /mdemorl/policy: round trip, metadata, checksum, corrupt input."""

import io

import numpy as np
import pytest
import torch

from mdemorl_core.agents.sac import TanhGaussianActor
from mdemorl_core.policy_io import (
    actor_blob_metadata,
    deserialize_actor,
    serialize_actor,
    sha256_hex,
    verify_checksum,
)


def _actor() -> TanhGaussianActor:
    torch.manual_seed(3)
    return TanhGaussianActor(5, 2, hidden_size=24, num_layers=3)


def test_round_trip_gives_identical_actions() -> None:
    actor = _actor()
    blob = serialize_actor(actor, algorithm="mdemorl", version=7)
    restored = deserialize_actor(blob, expected_sha256=sha256_hex(blob))
    batch = np.random.default_rng(0).normal(size=(16, 5)).astype(np.float32)
    np.testing.assert_array_equal(restored.act_numpy(batch), actor.act_numpy(batch))
    single = restored.act_numpy(batch[0])
    assert single.shape == (2,) and single.dtype == np.float32
    np.testing.assert_array_equal(single, actor.act_numpy(batch[0]))
    assert actor_blob_metadata(blob) == {
        "algorithm": "mdemorl",
        "version": 7,
        "obs_dim": 5,
        "act_dim": 2,
        "hidden_size": 24,
        "num_layers": 3,
        "log_std_min": -10.0,
        "log_std_max": 2.0,
    }


def test_checksum_mismatch_is_detected() -> None:
    blob = serialize_actor(_actor(), algorithm="sac", version=1)
    digest = sha256_hex(blob)
    verify_checksum(blob, digest.upper())
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(ValueError, match="checksum"):
        verify_checksum(tampered, digest)
    with pytest.raises(ValueError, match="checksum"):
        deserialize_actor(tampered, expected_sha256=digest)


def test_corrupt_or_wrong_input_raises() -> None:
    with pytest.raises(ValueError, match="readable"):
        deserialize_actor(b"not a torch file")
    blob = serialize_actor(_actor(), algorithm="sac", version=1)
    with pytest.raises(ValueError, match="readable"):
        deserialize_actor(blob[: len(blob) // 2])
    payload = torch.load(io.BytesIO(blob), weights_only=True)
    for state_dict in (TanhGaussianActor(5, 2, hidden_size=8).state_dict(), [1.0]):
        payload["state_dict"] = state_dict
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        with pytest.raises(ValueError, match="do not fit its architecture"):
            deserialize_actor(buffer.getvalue())
    with pytest.raises(TypeError, match="TanhGaussianActor"):
        serialize_actor(torch.nn.Linear(2, 2), algorithm="sac", version=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="obs"):
        _actor().act_numpy(np.zeros(4, dtype=np.float32))


def test_stochastic_act_numpy_stays_in_the_box() -> None:
    actions = _actor().act_numpy(np.full((100, 5), 10.0, dtype=np.float32), deterministic=False)
    assert actions.shape == (100, 2) and bool(np.all(np.abs(actions) <= 1.0))
