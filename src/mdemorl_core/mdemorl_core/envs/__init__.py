"""Robot tasks as Gymnasium environments; importing this package registers them.

After ``import mdemorl_core.envs``, ``gymnasium.make("Leg2R-v0")``, ``gymnasium.make("Leg2RHardware-v0")``
(the same task on a hardware-realistic actuator, ``leg2r_hardware``) and
``gymnasium.make("StochLite-v0")`` / ``"StochLite-v1"`` (the quadruped: v0 generic, v1 the
authors' robot with a measurable observation, see ``stochlite_v1``) work;
``gymnasium.make("mdemorl_core.envs:Leg2R-v0")`` imports this module itself. Entry points are strings, so registering imports neither MuJoCo nor PyBullet.
"""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

TASK_ENTRY_POINTS: dict[str, str] = {
    "Leg2R-v0": "mdemorl_core.envs.leg2r:Leg2REnv",
    "Leg2RHardware-v0": "mdemorl_core.envs.leg2r_hardware:Leg2RHardwareEnv",
    "StochLite-v0": "mdemorl_core.envs.stochlite:StochLiteEnv",
    "StochLite-v1": "mdemorl_core.envs.stochlite_v1:StochLiteV1Env",
}


def register_tasks() -> None:
    """Register every task with Gymnasium (idempotent, safe on re-import)."""
    for env_id, entry_point in TASK_ENTRY_POINTS.items():
        if env_id not in registry:
            register(id=env_id, entry_point=entry_point)


register_tasks()

__all__ = ["TASK_ENTRY_POINTS", "register_tasks"]
