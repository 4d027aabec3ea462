"""StochLite-v0: a 12-DoF quadruped trotting on flat and sloped planes (PyBullet, headless).

The policy shifts each foot's elliptical trajectory (``stochlite_gait``); inverse kinematics turns
the feet into joint targets for the servos (PyBullet position control with the servo's torque
limit, targets rate-limited to the servo's speed). Each env owns a private DIRECT physics server.

Observation [10] float32: torso roll, pitch (rad, world frame), body angular rates [3] (rad/s,
body frame), torso height above the ground plane (m), slope roll, slope pitch (rad), and the
sin/cos of the gait phase (the shifts mean different things in swing and stance).
Action [12] in [-1, 1]: per foot (FL, FR, BL, BR) x, y, z shifts, scaled by ``shift_limits``.
Reward per policy step: ``progress_weight`` x forward (world +x) torso velocity
- ``orientation_weight`` x ((roll - slope_roll)^2 + (pitch - slope_pitch)^2)
- ``angular_rate_weight`` x (roll rate^2 + pitch rate^2) - ``energy_weight`` x mean |tau * qd| (W)
+ ``alive_bonus`` (0 for v0) on a step that does not terminate.
Terminates when roll or pitch departs from the slope's by more than ``max_tilt`` or the torso
sinks below ``min_height``; truncates after ``episode_steps``. Each reset draws the slope's roll
and pitch uniformly in [-max_slope, max_slope] (``options={"slope": (roll, pitch)}`` fixes it,
``(0, 0)`` is flat ground).
"""

from __future__ import annotations

import dataclasses
import math
from importlib import resources
from typing import Any

import gymnasium
import numpy as np
import pybullet
from gymnasium import spaces
from pybullet_utils.bullet_client import BulletClient

from mdemorl_core.envs.stochlite_gait import (
    JOINTS_PER_LEG,
    LEG_NAMES,
    StochLiteParams,
    action_to_shifts,
    foot_targets,
    leg_inverse_kinematics,
)

OBSERVATION_DIM = 10
ACTION_DIM = 12
SETTLE_STEPS = 24  # sim steps holding the start pose after spawning (0.1 s at 240 Hz)
GROUND_HALF_EXTENTS = (25.0, 25.0, 0.5)  # m


class StochLiteEnv(gymnasium.Env[np.ndarray, np.ndarray]):
    """Gymnasium task for the StochLite quadruped (see the module docstring for spaces/reward).

    Keyword overrides of any ``StochLiteParams`` field are accepted, e.g.
    ``gymnasium.make("StochLite-v0", max_slope=0.0)`` for flat ground only.
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 30}
    # v0's observation has no odometry speed: its progress term can only pay the world's (the
    # ROS gait controller's v0 reward is leg odometry from its own measurements).
    progress_sources: tuple[str, ...] = ("world",)

    def __init__(
        self,
        params: StochLiteParams | None = None,
        render_mode: str | None = None,
        render_size: tuple[int, int] = (320, 240),
        **param_overrides: Any,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"StochLiteEnv: unsupported render_mode {render_mode!r}")
        base = params if params is not None else StochLiteParams()
        known = {field.name for field in dataclasses.fields(StochLiteParams)}
        unknown = set(param_overrides) - known
        if unknown:
            raise TypeError(f"StochLiteEnv: unknown StochLiteParams fields {sorted(unknown)}")
        self.params = dataclasses.replace(base, **param_overrides)
        if self.params.progress_from not in self.progress_sources:
            raise ValueError(
                f"{type(self).__name__}: progress_from {self.params.progress_from!r} is not one "
                f"of {self.progress_sources} (v0's observation has no odometry speed)"
            )
        self.render_mode = render_mode
        self.render_size = render_size
        self.metadata = {**self.metadata, "render_fps": max(1, round(1.0 / self.params.policy_dt))}
        bound = np.array(
            [math.pi, math.pi, 100.0, 100.0, 100.0, 10.0, 0.5, 0.5, 1.0, 1.0], dtype=np.float32
        )
        self._observation_bound = bound
        self.observation_space = spaces.Box(-bound, bound, dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (ACTION_DIM,), np.float32)
        self._client: BulletClient | None = BulletClient(connection_mode=pybullet.DIRECT)
        self._urdf_path = str(
            resources.files("mdemorl_core.envs").joinpath("assets/stochlite.urdf")
        )
        self._robot = -1
        self._joint_ids: list[int] = []
        self._slope = np.zeros(2)
        self._slope_rotation = np.eye(3)
        self._gait_phase = 0.0
        self._joint_targets = np.zeros(12)
        self._steps = 0
        self._start_position = np.zeros(3)

    @property
    def client(self) -> BulletClient:
        """The env's private PyBullet client (raises after ``close``)."""
        if self._client is None:
            raise RuntimeError("StochLiteEnv is closed")
        return self._client

    def _build_world(self) -> None:
        """Reset the physics server, create the sloped ground and spawn the robot on it."""
        client, params = self.client, self.params
        client.resetSimulation()
        client.setGravity(0.0, 0.0, -9.81)
        client.setTimeStep(params.sim_dt)
        client.setPhysicsEngineParameter(deterministicOverlappingPairs=1)
        slope_quaternion = client.getQuaternionFromEuler([self._slope[0], self._slope[1], 0.0])
        self._slope_rotation = np.array(client.getMatrixFromQuaternion(slope_quaternion)).reshape(
            3, 3
        )
        ground_shape = client.createCollisionShape(
            pybullet.GEOM_BOX, halfExtents=GROUND_HALF_EXTENTS
        )
        ground_visual = client.createVisualShape(
            pybullet.GEOM_BOX, halfExtents=GROUND_HALF_EXTENTS, rgbaColor=[0.75, 0.8, 0.75, 1.0]
        )
        # The box's top face passes through the world origin.
        ground_centre = self._slope_rotation @ np.array([0.0, 0.0, -GROUND_HALF_EXTENTS[2]])
        ground = client.createMultiBody(
            0.0, ground_shape, ground_visual, ground_centre.tolist(), slope_quaternion
        )
        client.changeDynamics(ground, -1, lateralFriction=params.lateral_friction)
        spawn_height = params.standing_height + params.foot_radius + 0.005
        spawn = self._slope_rotation @ np.array([0.0, 0.0, spawn_height])
        self._robot = client.loadURDF(
            self._urdf_path,
            spawn.tolist(),
            slope_quaternion,
            flags=pybullet.URDF_USE_INERTIA_FROM_FILE,
        )
        names = {
            client.getJointInfo(self._robot, index)[1].decode(): index
            for index in range(client.getNumJoints(self._robot))
        }
        self._joint_ids = [names[f"{leg}_{joint}"] for leg in LEG_NAMES for joint in JOINTS_PER_LEG]
        for leg in LEG_NAMES:
            client.changeDynamics(
                self._robot, names[f"{leg}_foot_fixed"], lateralFriction=params.lateral_friction
            )
        self._gait_phase = 0.0
        start_pose = leg_inverse_kinematics(
            foot_targets(0.0, np.zeros((4, 3)), params), params
        ).reshape(12)
        for joint_id, angle in zip(self._joint_ids, start_pose, strict=True):
            client.resetJointState(self._robot, joint_id, float(angle))
        self._joint_targets = start_pose
        for _ in range(SETTLE_STEPS):
            self._command_joints(start_pose)
            client.stepSimulation()

    def _command_joints(self, targets: np.ndarray) -> None:
        """Send joint targets [12] to the servos, rate-limited to the servo speed."""
        params = self.params
        max_change = params.servo_speed * params.sim_dt
        self._joint_targets = self._joint_targets + np.clip(
            targets - self._joint_targets, -max_change, max_change
        )
        self.client.setJointMotorControlArray(
            self._robot,
            self._joint_ids,
            pybullet.POSITION_CONTROL,
            targetPositions=self._joint_targets.tolist(),
            forces=[params.servo_torque] * 12,
            positionGains=[params.servo_position_gain] * 12,
            velocityGains=[params.servo_velocity_gain] * 12,
        )

    def _torso_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """World position [3], roll/pitch/yaw [3], body-frame angular velocity [3], linear vel [3]."""
        client = self.client
        position, quaternion = client.getBasePositionAndOrientation(self._robot)
        linear, angular = client.getBaseVelocity(self._robot)
        rotation = np.array(client.getMatrixFromQuaternion(quaternion)).reshape(3, 3)
        euler = np.array(client.getEulerFromQuaternion(quaternion))
        return np.array(position), euler, rotation.T @ np.array(angular), np.array(linear)

    def _observation(self) -> np.ndarray:
        position, euler, body_rates, _ = self._torso_state()
        height = float(self._slope_rotation[:, 2] @ position)
        observation = np.concatenate(
            [
                euler[:2],
                body_rates,
                [height],
                self._slope,
                [math.sin(self._gait_phase), math.cos(self._gait_phase)],
            ]
        )
        bound = self._observation_bound
        return np.clip(observation, -bound, bound).astype(np.float32)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Draw (or take from ``options["slope"]``) the terrain incline and spawn the robot."""
        super().reset(seed=seed)
        if options is not None and "slope" in options:
            slope = np.asarray(options["slope"], dtype=np.float64)
            if slope.shape != (2,) or not np.all(np.abs(slope) < 0.5):
                raise ValueError(
                    f"StochLiteEnv.reset: options['slope'] must be 2 angles, got {slope}"
                )
            self._slope = slope
        else:
            limit = self.params.max_slope
            self._slope = self.np_random.uniform(-limit, limit, size=2)
        self._build_world()
        self._steps = 0
        self._start_position = self._torso_state()[0]
        return self._observation(), self._info(0.0)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Advance ``decimation`` sim steps with the trajectory shifted by ``action``."""
        params, client = self.params, self.client
        shifts = action_to_shifts(np.asarray(action, dtype=np.float64).reshape(-1), params)
        x_before = self._torso_state()[0][0]
        phase_increment = 2.0 * math.pi * params.sim_dt / params.gait_period
        energy = 0.0
        for _ in range(params.decimation):
            self._gait_phase = (self._gait_phase + phase_increment) % (2.0 * math.pi)
            targets = leg_inverse_kinematics(foot_targets(self._gait_phase, shifts, params), params)
            self._command_joints(targets.reshape(12))
            client.stepSimulation()
            states = client.getJointStates(self._robot, self._joint_ids)
            energy += sum(abs(state[1] * state[3]) for state in states) * params.sim_dt
        self._steps += 1
        position, euler, body_rates, _ = self._torso_state()
        forward_velocity = (position[0] - x_before) / params.policy_dt
        tilt_sq = float(np.sum((euler[:2] - self._slope) ** 2))
        mean_power = energy / params.policy_dt
        height = float(self._slope_rotation[:, 2] @ position)
        terminated = bool(
            np.any(np.abs(euler[:2] - self._slope) > params.max_tilt) or height < params.min_height
        )
        reward = (
            params.progress_weight * forward_velocity
            - params.orientation_weight * tilt_sq
            - params.angular_rate_weight * float(np.sum(body_rates[:2] ** 2))
            - params.energy_weight * mean_power
            + (0.0 if terminated else params.alive_bonus)
        )
        truncated = self._steps >= params.episode_steps
        return self._observation(), float(reward), terminated, truncated, self._info(mean_power)

    def _info(self, mean_power: float) -> dict[str, Any]:
        position = self._torso_state()[0]
        return {
            "torso_position": position,
            "forward_distance": float(position[0] - self._start_position[0]),
            "slope": self._slope.copy(),
            "mean_power": mean_power,
        }

    def render(self) -> np.ndarray | None:
        """Chase-camera view (PyBullet TinyRenderer, headless) as an H x W x 3 uint8 image."""
        if self.render_mode != "rgb_array":
            return None
        client = self.client
        width, height = self.render_size
        target = self._torso_state()[0]
        view = client.computeViewMatrixFromYawPitchRoll(
            cameraTargetPosition=target.tolist(),
            distance=0.9,
            yaw=40.0,
            pitch=-25.0,
            roll=0.0,
            upAxisIndex=2,
        )
        projection = client.computeProjectionMatrixFOV(
            fov=60.0, aspect=width / height, nearVal=0.05, farVal=10.0
        )
        _, _, rgba, _, _ = client.getCameraImage(
            width, height, view, projection, renderer=pybullet.ER_TINY_RENDERER
        )
        image = np.asarray(rgba, dtype=np.uint8).reshape(height, width, 4)
        return np.ascontiguousarray(image[:, :, :3])

    def close(self) -> None:
        """Disconnect the private physics server (idempotent)."""
        if self._client is not None:
            self._client.disconnect()
            self._client = None
