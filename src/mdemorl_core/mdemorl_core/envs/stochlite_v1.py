"""StochLite-v1: the StochLite quadruped as its authors model it, observed as the robot can.

Which is which: ``StochLite-v0`` (``stochlite.py``) is the first, generic ~3.4 kg servo
quadruped (30 Hz policy, the simulator's true slope and height in the observation); it stays
unchanged for existing runs. ``StochLite-v1`` (this module) takes the authors' PyBullet env
(UtkarshMishra04/DMD-MPC-RL, see ``shared/HARDWARE.md``) and the robot's measurable signals:

- geometry (``stochlite_gait.STOCHLITE_V1``): abduction axes at the corners of the 0.334 x
  0.192 m body, abduction offset 0.096 m, thigh 0.146 m, shank 0.172 m; 2.5 kg
  (``stochlite_urdf.StochLiteBuild``), URDF generated from these numbers;
- timing: physics, trajectory generator and IK at 200 Hz (StochLab's servo loop), the policy at
  100 Hz (decimation 2: a policy step is 10 ms of sim time); gait 2.5 Hz, walking height 0.25 m,
  swing height 0.08 m;
- servos: PD on the joint targets, kp ``servo_kp`` = 400 N m/rad, kd ``servo_kd`` = 10 N m s/rad,
  torque clipped at ``servo_torque`` = 7 N m (PyBullet's stable PD, implicit in the gains, so
  the authors' stiff gains hold at a 5 ms step), targets rate-limited to ``servo_speed``;
- observation [11] (``stochlite_estimator.StochLiteObserver``, the gait controller node's own
  code): IMU roll, pitch and body rates [3], the support plane's estimated height, roll and
  pitch (stance feet by forward kinematics, turned by the IMU attitude, contacts from the gait
  schedule), sin/cos of the gait phase, leg-odometry forward speed (m/s). No true slope, height
  or world velocity;
- action [12] in [-1, 1]: per-foot x, y, z shifts of the trajectory, x 0.1 m as the authors, y
  0.05 m, z 0.06 m (the leg's reach at the 0.25 m height); the authors' velocity-command actions
  are not modelled;
- reward: ``measured_reward`` on the observation (progress x odometry speed - tilt from the
  estimated slope - roll/pitch rates + an alive bonus of 10 per step that does not end the
  episode, see ``STOCHLITE_V1``; no energy term, power is not observed), so the known
  reward ``task_rewards.stochlite_v1_reward`` equals it; with ``progress_from="world"`` the
  progress term pays the simulator's true forward speed instead (no known reward then);
  termination ``measured_termination`` (absolute): IMU roll or pitch, or tilt from the
  estimated slope, beyond 0.6 rad, or estimated height below 0.08 m; truncation after 1000 steps (10 s). ``info`` carries the true forward
  distance and speed (the walking benchmark's measure) and the true slope: odometry counts feet
  sliding backwards as progress, so a policy that learns to slip shows up there, not in the
  return;
- transfer (:class:`StochLiteV1Options`, drawn per episode from the reset seed): slopes, roll
  and pitch each uniform in +-``max_slope`` = 0.15 rad (``options={"slope": ...}`` fixes them);
  torso mass scaled by 1 + U(-``mass_scale``, ``mass_scale``), default 0.1; pushes of
  ``push_force`` N (default 0: off) in a random horizontal direction for ``push_duration`` s every
  ``push_interval`` s; optionally (default off) a servo torque limit uniform in
  ``torque_range`` (the authors randomise 5-8 N m) and Gaussian IMU noise on roll/pitch
  (``imu_attitude_noise``) and rates (``imu_rate_noise``) at every tick.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pybullet
from gymnasium import spaces

from mdemorl_core.envs.stochlite import SETTLE_STEPS, StochLiteEnv
from mdemorl_core.envs.stochlite_estimator import (
    StochLiteObserver,
    measured_reward,
    measured_termination,
    quaternion_roll_pitch,
)
from mdemorl_core.envs.stochlite_gait import (
    STOCHLITE_V1,
    StochLiteParams,
    action_to_shifts,
    foot_targets,
    leg_inverse_kinematics,
)
from mdemorl_core.envs.stochlite_urdf import StochLiteBuild, stochlite_urdf


@dataclasses.dataclass(frozen=True)
class StochLiteV1Options:
    """Servo model and transfer randomisation of StochLite-v1 (defaults in the module doc)."""

    servo_kp: float = 400.0  # N m/rad
    servo_kd: float = 10.0  # N m s/rad
    mass_scale: float = 0.1  # torso mass x (1 + U(-mass_scale, mass_scale)) per episode
    push_force: float = 0.0  # N, horizontal push on the torso; 0 disables pushes
    push_interval: float = 2.0  # s between push starts
    push_duration: float = 0.1  # s
    torque_range: tuple[float, float] | None = None  # N m, per-episode limit; authors: (5, 8)
    imu_attitude_noise: float = 0.0  # rad, stddev added to the IMU roll and pitch each tick
    imu_rate_noise: float = 0.0  # rad/s, stddev added to the body rates each tick
    build: StochLiteBuild = dataclasses.field(default_factory=StochLiteBuild)

    def __post_init__(self) -> None:
        if not (self.servo_kp > 0.0 and self.servo_kd >= 0.0):
            raise ValueError(
                f"servo_kp must be > 0 and servo_kd >= 0, got {self.servo_kp}, {self.servo_kd}"
            )
        if not 0.0 <= self.mass_scale < 1.0:
            raise ValueError(f"mass_scale must be in [0, 1), got {self.mass_scale}")
        if self.push_force < 0.0 or not self.push_interval > self.push_duration > 0.0:
            raise ValueError(
                "push_force must be >= 0 and push_interval > push_duration > 0, got "
                f"{self.push_force}, {self.push_interval}, {self.push_duration}"
            )
        if self.torque_range is not None and not 0.0 < self.torque_range[0] <= self.torque_range[1]:
            raise ValueError(
                f"torque_range must be (low, high), 0 < low <= high: {self.torque_range}"
            )
        if self.imu_attitude_noise < 0.0 or self.imu_rate_noise < 0.0:
            raise ValueError(
                "imu_attitude_noise and imu_rate_noise must be >= 0, got "
                f"{self.imu_attitude_noise}, {self.imu_rate_noise}"
            )


OPTION_FIELDS = frozenset(field.name for field in dataclasses.fields(StochLiteV1Options))


class StochLiteV1Env(StochLiteEnv):
    """Gymnasium task StochLite-v1 (module docstring: spaces, reward, randomisation).

    Keyword overrides of ``StochLiteParams`` or ``StochLiteV1Options`` fields are accepted, e.g.
    ``gymnasium.make("StochLite-v1", max_slope=0.0, push_force=10.0)``.
    """

    progress_sources = ("odometry", "world")

    def __init__(
        self,
        params: StochLiteParams | None = None,
        options: StochLiteV1Options | None = None,
        render_mode: str | None = None,
        render_size: tuple[int, int] = (320, 240),
        **overrides: Any,
    ) -> None:
        option_overrides = {k: v for k, v in overrides.items() if k in OPTION_FIELDS}
        param_overrides = {k: v for k, v in overrides.items() if k not in OPTION_FIELDS}
        base = params if params is not None else STOCHLITE_V1
        super().__init__(base, render_mode, render_size, **param_overrides)
        self.options = dataclasses.replace(
            options if options is not None else StochLiteV1Options(), **option_overrides
        )
        self.observer = StochLiteObserver(self.params, "schedule", include_velocity=True)
        self._observation_bound = self.observer.bound
        self.observation_space = spaces.Box(-self.observer.bound, self.observer.bound)
        self._urdf_dir = tempfile.TemporaryDirectory(prefix="stochlite_v1_")
        urdf = Path(self._urdf_dir.name) / "stochlite_v1.urdf"
        urdf.write_text(stochlite_urdf(self.params, self.options.build))
        self._urdf_path = str(urdf)
        self._push = np.zeros(3)
        self._ticks = 0
        self.torso_mass = self.options.build.torso_mass
        self.servo_torque = self.params.servo_torque

    def _build_world(self) -> None:
        """The v0 world (sloped ground, robot standing on it), then this episode's torso mass."""
        super()._build_world()
        client = self.client
        for joint_id in self._joint_ids:  # the URDF joints' default velocity motors off
            client.setJointMotorControl2(self._robot, joint_id, pybullet.VELOCITY_CONTROL, force=0)
        scale = 1.0 + self.np_random.uniform(-self.options.mass_scale, self.options.mass_scale)
        self.torso_mass = self.options.build.torso_mass * scale
        low_high = self.options.torque_range
        self.servo_torque = (
            self.params.servo_torque if low_high is None else self.np_random.uniform(*low_high)
        )
        inertia = np.array(client.getDynamicsInfo(self._robot, -1)[2]) * scale
        client.changeDynamics(
            self._robot, -1, mass=self.torso_mass, localInertiaDiagonal=inertia.tolist()
        )
        for _ in range(SETTLE_STEPS):
            self._command_joints(self._joint_targets)
            client.stepSimulation()

    def _command_joints(self, targets: np.ndarray) -> None:
        """PD servos (stable PD) towards targets [12], rate-limited to the servo speed."""
        params, options = self.params, self.options
        max_change = params.servo_speed * params.sim_dt
        self._joint_targets = self._joint_targets + np.clip(
            targets - self._joint_targets, -max_change, max_change
        )
        count = len(self._joint_ids)
        self.client.setJointMotorControlMultiDofArray(
            self._robot,
            self._joint_ids,
            pybullet.STABLE_PD_CONTROL,
            targetPositions=[[float(t)] for t in self._joint_targets],
            targetVelocities=[[0.0]] * count,
            positionGains=[options.servo_kp] * count,
            velocityGains=[options.servo_kd] * count,
            forces=[[self.servo_torque]] * count,
        )

    def measure(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float, np.ndarray]:
        """What the robot's sensors read now: joint q, qd, effort [12]; IMU roll, pitch (rad)
        and body angular rates [3] (rad/s), with the options' IMU noise."""
        client = self.client
        states = client.getJointStates(self._robot, self._joint_ids)
        q, qd, effort = (np.array([state[k] for state in states]) for k in (0, 1, 3))
        _, quaternion = client.getBasePositionAndOrientation(self._robot)
        roll, pitch = quaternion_roll_pitch(*quaternion)
        rotation = np.array(client.getMatrixFromQuaternion(quaternion)).reshape(3, 3)
        rates = rotation.T @ np.array(client.getBaseVelocity(self._robot)[1])
        options = self.options
        if options.imu_attitude_noise > 0.0:
            noise = self.np_random.normal(0.0, options.imu_attitude_noise, 2)
            roll, pitch = roll + float(noise[0]), pitch + float(noise[1])
        if options.imu_rate_noise > 0.0:
            rates = rates + self.np_random.normal(0.0, options.imu_rate_noise, 3)
        return q, qd, effort, roll, pitch, rates

    def _observation(self) -> np.ndarray:
        return self.observer.observe(self._gait_phase)[0]

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Draw the slope and torso mass, spawn the robot standing; the first measurement."""
        self.observer.reset()
        self._ticks = 0
        self._push = np.zeros(3)
        super().reset(seed=seed, options=options)
        self.observer.tick(*self.measure(), self._gait_phase)
        observation = self._observation()
        return observation, self._info(0.0)

    def _apply_push(self) -> None:
        """Start a push every ``push_interval`` s (not at t = 0), hold it ``push_duration`` s."""
        options, rate = self.options, self.params.sim_hz
        if options.push_force <= 0.0:
            return
        since_start = self._ticks % max(1, round(options.push_interval * rate))
        if since_start == 0 and self._ticks > 0:
            angle = self.np_random.uniform(-math.pi, math.pi)
            self._push = options.push_force * np.array([math.cos(angle), math.sin(angle), 0.0])
        elif since_start >= round(options.push_duration * rate):
            self._push = np.zeros(3)
        if np.any(self._push):
            position = self._torso_state()[0]
            self.client.applyExternalForce(
                self._robot, -1, self._push.tolist(), position.tolist(), pybullet.WORLD_FRAME
            )

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """``decimation`` servo ticks of the shifted trajectory, each one measured."""
        params, client = self.params, self.client
        shifts = action_to_shifts(np.asarray(action, dtype=np.float64).reshape(-1), params)
        x_before = self._torso_state()[0][0]
        phase_increment = 2.0 * math.pi * params.sim_dt / params.gait_period
        for _ in range(params.decimation):
            self._gait_phase = (self._gait_phase + phase_increment) % (2.0 * math.pi)
            targets = leg_inverse_kinematics(foot_targets(self._gait_phase, shifts, params), params)
            self._command_joints(targets.reshape(12))
            self._apply_push()
            client.stepSimulation()
            self._ticks += 1
            self.observer.tick(*self.measure(), self._gait_phase)
        self._steps += 1
        observation, _, power = self.observer.observe(self._gait_phase)
        true_velocity = (self._torso_state()[0][0] - x_before) / params.policy_dt
        speed = float(observation[10]) if params.progress_from == "odometry" else true_velocity
        terminated = measured_termination(observation, params, absolute=True)
        reward = measured_reward(observation, speed, power, params, terminated)
        truncated = self._steps >= params.episode_steps
        return observation, reward, terminated, truncated, self._info(power, true_velocity)

    def _info(self, mean_power: float, true_velocity: float = 0.0) -> dict[str, Any]:
        info = super()._info(mean_power)
        info["true_forward_velocity"] = true_velocity
        info["torso_mass"] = self.torso_mass
        info["servo_torque"] = self.servo_torque
        info["push"] = self._push.copy()
        return info

    def close(self) -> None:
        """Disconnect the physics server and remove the generated URDF (idempotent)."""
        super().close()
        self._urdf_dir.cleanup()
