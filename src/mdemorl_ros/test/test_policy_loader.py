"""PolicyLoader: a valid update becomes an ActingRequest whose policy is the actor's, a latched
update delivered again is loaded once, a checksum or size mismatch is rejected naming the cause."""

from __future__ import annotations

import gc

import numpy as np
import torch

from mdemorl_core.agents.sac import TanhGaussianActor
from mdemorl_core.policy_io import serialize_actor, sha256_hex
from mdemorl_msgs.msg import PolicyUpdate
from mdemorl_ros.policy_loader import PolicyLoader
from mdemorl_ros.protocol import ActingRequest

OBS, ACT = 6, 2


def update(actor: TanhGaussianActor, version: int, sec: int = 0) -> PolicyUpdate:
    blob = serialize_actor(actor, algorithm="sac", version=version)
    msg = PolicyUpdate(
        version=version,
        algorithm="sac",
        observation_dim=OBS,
        action_dim=ACT,
        weights=list(blob),
        checksum=sha256_hex(blob),
        acting_steps=7,
    )
    msg.header.stamp.sec = sec
    return msg


def check_dims(observation_dim: int, action_dim: int) -> None:
    if (observation_dim, action_dim) != (OBS, ACT):
        raise ValueError(f"dims ({observation_dim}, {action_dim})")


def run_loader(messages: list[PolicyUpdate]) -> tuple[list[ActingRequest], list[str]]:
    accepted: list[ActingRequest] = []
    rejected: list[str] = []
    loader = PolicyLoader(
        check_dims,
        deterministic=True,
        accept=lambda request, msg: accepted.append(request),
        reject=lambda msg, error: rejected.append(f"v{msg.version}: {error}"),
    )
    frozen_before = gc.get_freeze_count()
    loader.start()
    for msg in messages:
        loader.put(msg)
    loader.stop(timeout=60.0)
    assert loader.torch_frozen == bool(accepted)
    if not frozen_before:
        gc.unfreeze()  # the loader froze this test process's objects; later tests expect none
    assert not loader.thread.is_alive()
    return accepted, rejected


def test_updates_load_once_per_version_and_stamp_and_bad_ones_are_rejected() -> None:
    torch.manual_seed(0)
    actor = TanhGaussianActor(OBS, ACT, hidden_size=16).eval()
    tampered = update(actor, 3)
    tampered.checksum = "0" * 64
    wide = TanhGaussianActor(OBS + 1, ACT, hidden_size=16).eval()
    wrong_size = update(wide, 4)
    wrong_size.observation_dim = OBS  # the message lies; the deserialized actor does not
    first = update(actor, 1)
    accepted, rejected = run_loader([first, first, update(actor, 2), tampered, wrong_size])
    assert [(r.version, r.acting_steps) for r in accepted] == [(1, 7), (2, 7)]
    assert len(rejected) == 2
    assert rejected[0].startswith("v3: ") and "checksum" in rejected[0].lower()
    assert rejected[1] == f"v4: dims ({OBS + 1}, {ACT})"
    obs = np.linspace(-1.0, 1.0, OBS).astype(np.float32)
    expected = actor.act_numpy(obs, deterministic=True)
    np.testing.assert_allclose(accepted[0].policy(obs), expected)
