"""Actor files: a run's actor on its own, to deploy or ship without the run directory.

``mdemorl export --run RUN --out FILE`` writes the deterministic-deployment actor of RUN's last
checkpoint as the ``/mdemorl/policy`` blob (``policy_io``: architecture, float32 weights,
algorithm, version = the checkpoint's epoch; ~0.3 MB for the 256 x 2 actor) instead of the
checkpoint's ~10 MB of replay buffers and optimiser state. The policy publisher (and with it
walk.launch.py's ``run_dir:=``) takes either a run directory or such a file; planning
(deploy.launch.py ``mode:=mpc``) needs the run directory, whose model the planner loads.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

from mdemorl_core.policy_io import actor_blob_metadata, deserialize_actor, sha256_hex
from mdemorl_core.training.checkpoint import atomic_write
from mdemorl_core.training.online import load_run_actor
from mdemorl_core.training.run_dir import RunDirError

DeployableActor = tuple[bytes, int, str, int, int]
"""(blob, version, algorithm, obs_dim, act_dim), as ``online.load_run_actor`` returns it."""


def export_actor(run_dir: Path, out: Path) -> dict[str, Any]:
    """Write the actor of ``run_dir``'s last checkpoint to ``out``, whole or not at all
    (``checkpoint.atomic_write``). Returns its metadata and sha256; RunDirError when ``out``
    cannot be written."""
    blob = load_run_actor(Path(run_dir))[0]
    out = Path(out)
    if out.is_dir():
        raise RunDirError(f"{out} is a directory; give the actor file's path")

    def write(handle: IO[bytes]) -> None:
        handle.write(blob)

    try:
        atomic_write(out, write)
    except OSError as error:
        raise RunDirError(f"cannot write the actor file {out}: {error}") from error
    return {**actor_blob_metadata(blob), "sha256": sha256_hex(blob), "bytes": len(blob)}


def load_deployable_actor(path: Path) -> DeployableActor:
    """A run directory's last actor, or an actor file written by :func:`export_actor`.
    RunDirError when ``path`` is neither; ValueError naming the file when it is not an actor."""
    path = Path(path)
    if path.is_dir():
        return load_run_actor(path)
    if not path.is_file():
        raise RunDirError(f"{path}: neither a run directory nor an actor file")
    blob = path.read_bytes()
    try:
        deserialize_actor(blob)  # weights that fit their architecture, or ValueError
        meta = actor_blob_metadata(blob)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from error
    return blob, int(meta["version"]), str(meta["algorithm"]), meta["obs_dim"], meta["act_dim"]
