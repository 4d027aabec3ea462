"""Global random generators (Python, numpy legacy, torch): seeding and checkpointable state.

The agent draws from its own generators; these global ones are seeded and checkpointed as well so
that library code which still uses them keeps a resumed run identical to an uninterrupted one.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def seed_global_rngs(seed: int) -> None:
    """Seed Python's, numpy's legacy and torch's global generators."""
    # The agent has its own generators; the legacy global ones are seeded (and checkpointed) too,
    # so library code that still draws from them stays reproducible.
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002
    torch.manual_seed(seed)


def global_rng_states() -> dict[str, Any]:
    """States of the global generators as tensors and plain Python values."""
    # numpy's legacy state holds an array; store it as a list so the checkpoint stays loadable
    # with torch.load(weights_only=True).
    numpy_state = np.random.get_state(legacy=False)  # noqa: NPY002
    numpy_state["state"]["key"] = numpy_state["state"]["key"].tolist()
    states: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": numpy_state,
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["torch_cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_global_rng_states(states: dict[str, Any]) -> None:
    """Restore what `global_rng_states` returned."""
    random.setstate(states["python"])
    numpy_state = dict(states["numpy"])
    numpy_state["state"] = dict(numpy_state["state"])
    numpy_state["state"]["key"] = np.asarray(numpy_state["state"]["key"], dtype=np.uint32)
    np.random.set_state(numpy_state)  # noqa: NPY002
    torch.set_rng_state(states["torch"])
    if "torch_cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["torch_cuda"])
