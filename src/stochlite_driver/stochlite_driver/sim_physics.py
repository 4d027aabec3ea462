"""The StochLite's PyBullet physics stepped one sim step at a time under servo run modes (no ROS).

The world, robot, servo model and start pose are the task's env's own
(``mdemorl_core.envs.stochlite.StochLiteEnv`` or ``stochlite_v1.StochLiteV1Env``) (its ``reset`` builds the sloped ground and spawns the robot standing; its servo command
applies the servo's torque limit, gains and speed), so the simulated robot is the one the policy
trains on. The env's ``step`` bundles the trajectory generator with the physics; a ROS robot gets
joint targets from outside instead, so this class drives the env's physics below ``step``:

- NORMAL: position control to the given targets (rate-limited to the servo speed by the env);
- HOLD: position control to where the joints were when HOLD began;
- FREE: motors off (zero-force velocity control): the joints are limp.

The IMU is the torso: orientation (quaternion x, y, z, w, world frame), body-frame angular
velocity (rad/s) and the specific force (m/s^2, body frame; +g up at rest), from the base
velocity's finite difference.
"""

from __future__ import annotations

import numpy as np
import pybullet

from mdemorl_core.envs.stochlite import StochLiteEnv
from mdemorl_core.envs.stochlite_gait import StochLiteParams, task_params
from mdemorl_core.envs.stochlite_v1 import StochLiteV1Env
from stochlite_driver.b3m import RunMode

GRAVITY = np.array([0.0, 0.0, -9.81])  # m/s^2, the env's


class StochLiteSimulation:
    """One simulated robot of ``task``'s env (``params`` default: the task's); ``slope`` (roll,
    pitch) rad of the ground. StochLite-v1's robot has its nominal torso mass (a robot has one
    mass; the env draws it per episode for training) and no pushes."""

    def __init__(
        self,
        params: StochLiteParams | None = None,
        slope: tuple[float, float] = (0.0, 0.0),
        task: str = "StochLite-v0",
    ) -> None:
        params = params if params is not None else task_params(task)
        self.env: StochLiteEnv = (
            StochLiteV1Env(params, mass_scale=0.0, push_force=0.0)
            if task == "StochLite-v1"
            else StochLiteEnv(params=params)
        )
        self.params = self.env.params
        self.slope = slope
        self.mode = RunMode.HOLD
        self._hold = np.zeros(12)
        self._velocity = np.zeros(3)
        self._acceleration = np.zeros(3)
        self.reset()

    @property
    def dt(self) -> float:
        return self.params.sim_dt

    def reset(self) -> None:
        """Respawn the robot standing at the start pose on the ground (HOLD)."""
        self.env.reset(options={"slope": self.slope})
        self.mode = RunMode.HOLD
        self._hold = self.env._joint_targets.copy()  # the start pose the env settled at
        self._velocity = np.zeros(3)
        self._acceleration = np.zeros(3)

    def joint_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Joint positions (rad), velocities (rad/s) and applied motor torques (N m), each [12]."""
        env = self.env
        states = env.client.getJointStates(env._robot, env._joint_ids)
        return tuple(np.array([s[k] for s in states]) for k in (0, 1, 3))  # type: ignore[return-value]

    def step(self, mode: RunMode, targets: np.ndarray | None) -> None:
        """Apply ``mode`` (with ``targets`` [12] rad in NORMAL) and advance one sim step."""
        env = self.env
        q = self.joint_state()[0]
        if mode is not self.mode:
            if self.mode is RunMode.FREE:
                # The servo model ramps from its last target: a limp joint's is where it is.
                env._joint_targets = q.copy()
            if mode is RunMode.HOLD:
                self._hold = q
            self.mode = mode
        if mode is RunMode.NORMAL:
            if targets is None:
                raise ValueError("StochLiteSimulation.step: NORMAL needs targets")
            env._command_joints(np.asarray(targets, dtype=np.float64))
        elif mode is RunMode.HOLD:
            env._command_joints(self._hold)
        else:
            env.client.setJointMotorControlArray(
                env._robot,
                env._joint_ids,
                pybullet.VELOCITY_CONTROL,
                targetVelocities=[0.0] * 12,
                forces=[0.0] * 12,
            )
        env.client.stepSimulation()
        linear = np.array(env.client.getBaseVelocity(env._robot)[0])
        self._acceleration = (linear - self._velocity) / self.dt
        self._velocity = linear

    def torso(self) -> tuple[np.ndarray, np.ndarray]:
        """World position [3] m and orientation quaternion [4] (x, y, z, w)."""
        env = self.env
        position, quaternion = env.client.getBasePositionAndOrientation(env._robot)
        return np.array(position), np.array(quaternion)

    def imu(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Orientation (x, y, z, w) [4], body angular velocity [3] rad/s, specific force [3]."""
        env = self.env
        _, quaternion = self.torso()
        angular = env.client.getBaseVelocity(env._robot)[1]
        rotation = np.array(env.client.getMatrixFromQuaternion(quaternion)).reshape(3, 3)
        specific_force = rotation.T @ (self._acceleration - GRAVITY)
        return quaternion, rotation.T @ np.array(angular), specific_force

    def close(self) -> None:
        self.env.close()
