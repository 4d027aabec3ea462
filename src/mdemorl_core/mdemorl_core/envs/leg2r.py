"""Leg2R-v0: a torque-controlled 2R leg whose foot tracks a semi-ellipse (MuJoCo physics).

``Leg2RPhysics`` is the MuJoCo model alone (also driven by the ROS sim robot node);
``Leg2REnv`` is the Gymnasium task built on it and on the pure-numpy math of ``leg2r_task``,
which the ROS torque controller calls too. Per policy step the env holds the torque for
``decimation`` control ticks of ``physics_substeps`` MuJoCo steps each, then evaluates
observation and reward from the joint state at the end of the step.

Measured with the defaults (1000-step episodes, seeds 0-4; test_leg2r.py asserts the ordering):
the hand-written PD + IK + gravity-compensation controller ``tracking_controller_action`` earns
0.991 mean reward per step (range 0.990-0.992), zero torque 0.070 (the leg sags away from the
ellipse) and uniform random actions 0.027 (0.017-0.036).
"""

from __future__ import annotations

import dataclasses
from importlib import resources
from typing import Any

import gymnasium
import mujoco
import numpy as np
from gymnasium import spaces

from mdemorl_core.envs.leg2r_task import (
    ACTION_DIM,
    Leg2RParams,
    action_to_torque,
    build_observation,
    foot_velocity,
    forward_kinematics,
    initial_joint_state,
    observation_bound,
    reference,
    step_reward,
)
from mdemorl_core.envs.raster import Canvas

JOINT_NAMES: tuple[str, str] = ("hip", "knee")


def _rod_inertia(mass: float, length: float) -> np.ndarray:
    """Principal inertia [3] (kg m^2) of a slender rod along z about its centre of mass."""
    transverse = mass * length**2 / 12.0
    return np.array([transverse, transverse, 1e-5])


class Leg2RPhysics:
    """The MuJoCo leg alone: joint state in, torque in, no task logic.

    ``q`` / ``qd`` are [2] arrays (hip, knee) in rad and rad/s; ``time`` counts seconds since the
    last ``reset``. Torques are clipped to ``params.torque_limit`` before they are applied.
    """

    def __init__(self, params: Leg2RParams | None = None) -> None:
        self.params = params if params is not None else Leg2RParams()
        xml_text = resources.files("mdemorl_core.envs").joinpath("assets/leg2r.xml").read_text()
        self.model = mujoco.MjModel.from_xml_string(xml_text)
        self.data = mujoco.MjData(self.model)
        self._joint_qpos = np.array([self.model.joint(name).qposadr[0] for name in JOINT_NAMES])
        self._joint_dof = np.array([self.model.joint(name).dofadr[0] for name in JOINT_NAMES])
        self._foot_site = self.model.site("foot").id
        self._apply_params()
        self.reset(*initial_joint_state(self.params))

    def _apply_params(self) -> None:
        """Write the geometry, inertia, joint and timing fields of ``params`` into the model."""
        params, model = self.params, self.model
        model.opt.timestep = params.physics_dt
        model.opt.gravity[:] = (0.0, 0.0, -params.gravity)
        thigh, shank, foot = (model.body(name).id for name in ("thigh", "shank", "foot"))
        model.body_pos[shank] = (0.0, 0.0, -params.thigh_length)
        model.body_pos[foot] = (0.0, 0.0, -params.shank_length)
        model.body_ipos[thigh] = (0.0, 0.0, -params.thigh_com)
        model.body_ipos[shank] = (0.0, 0.0, -params.shank_com)
        model.body_mass[thigh] = params.thigh_mass
        model.body_mass[shank] = params.shank_mass
        model.body_mass[foot] = params.foot_mass
        model.body_inertia[thigh] = _rod_inertia(params.thigh_mass, params.thigh_length)
        model.body_inertia[shank] = _rod_inertia(params.shank_mass, params.shank_length)
        for geom_name, length in (
            ("thigh_geom", params.thigh_length),
            ("shank_geom", params.shank_length),
        ):
            geom = model.geom(geom_name).id
            model.geom_pos[geom] = (0.0, 0.0, -0.5 * length)
            model.geom_size[geom][1] = 0.5 * length
        for index, name in enumerate(JOINT_NAMES):
            joint, dof = model.joint(name).id, self._joint_dof[index]
            model.jnt_range[joint] = (params.joint_lower[index], params.joint_upper[index])
            model.dof_damping[dof] = params.joint_damping[index]
            model.dof_armature[dof] = params.armature[index]
            model.dof_frictionloss[dof] = params.friction_loss[index]
            limit = params.torque_limit[index]
            model.actuator_ctrlrange[model.actuator(f"{name}_motor").id] = (-limit, limit)
        mujoco.mj_setConst(model, self.data)

    def set_params(self, params: Leg2RParams) -> None:
        """Replace the physical parameters (geometry, masses, joints) of the model in place.

        The joint state is kept; call ``reset`` afterwards to start from a consistent state.
        """
        self.params = params
        self._apply_params()

    def reset(self, q: np.ndarray, qd: np.ndarray) -> None:
        """Set the joint state q, qd: [2] (rad, rad/s), zero torque and time."""
        q, qd = np.asarray(q, dtype=np.float64), np.asarray(qd, dtype=np.float64)
        if q.shape != (2,) or qd.shape != (2,):
            raise ValueError(f"Leg2RPhysics.reset: q, qd must be [2], got {q.shape}, {qd.shape}")
        if not (np.all(np.isfinite(q)) and np.all(np.isfinite(qd))):
            raise ValueError(f"Leg2RPhysics.reset: non-finite state q={q}, qd={qd}")
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[self._joint_qpos] = q
        self.data.qvel[self._joint_dof] = qd
        mujoco.mj_forward(self.model, self.data)

    def step(self, torque: np.ndarray, n_substeps: int | None = None) -> None:
        """Apply joint torques [2] (N m, clipped to the limits) for n_substeps physics steps.

        ``n_substeps`` defaults to ``params.physics_substeps``, i.e. one 500 Hz control tick.
        """
        torque = np.asarray(torque, dtype=np.float64)
        if torque.shape != (2,):
            raise ValueError(f"Leg2RPhysics.step: torque must be [2], got {torque.shape}")
        if not np.all(np.isfinite(torque)):
            raise ValueError(f"Leg2RPhysics.step: non-finite torque {torque}")
        steps = self.params.physics_substeps if n_substeps is None else n_substeps
        if not isinstance(steps, int) or steps < 1:
            raise ValueError(f"Leg2RPhysics.step: n_substeps must be an int >= 1, got {steps!r}")
        limit = np.asarray(self.params.torque_limit)
        self.data.ctrl[:] = np.clip(torque, -limit, limit)
        mujoco.mj_step(self.model, self.data, nstep=steps)

    @property
    def q(self) -> np.ndarray:
        """Joint angles [2] (rad), a copy."""
        return self.data.qpos[self._joint_qpos].copy()

    @property
    def qd(self) -> np.ndarray:
        """Joint velocities [2] (rad/s), a copy."""
        return self.data.qvel[self._joint_dof].copy()

    @property
    def applied_torque(self) -> np.ndarray:
        """Torques [2] (N m) currently applied by the motors."""
        return self.data.ctrl.copy()

    @property
    def foot_position(self) -> np.ndarray:
        """Foot site position [2] (x, z) in m, as MuJoCo computes it (for cross-checks)."""
        return self.data.site_xpos[self._foot_site][[0, 2]].copy()

    @property
    def time(self) -> float:
        """Simulated seconds since the last reset."""
        return float(self.data.time)

    @property
    def timestep(self) -> float:
        """Physics timestep in seconds."""
        return float(self.model.opt.timestep)


class Leg2REnv(gymnasium.Env[np.ndarray, np.ndarray]):
    """Gymnasium task: track the semi-elliptical foot reference with normalised joint torques.

    Observation [14] float32: see ``leg2r_task.OBSERVATION_LAYOUT``. Action [2] in [-1, 1]:
    hip and knee torque as a fraction of ``torque_limit``. Reward in [0, 1] per policy step
    (``leg2r_task.step_reward`` at the step's end). Never terminates; truncates after
    ``episode_steps`` policy steps. Keyword overrides of any ``Leg2RParams`` field are accepted,
    e.g. ``gymnasium.make("Leg2R-v0", decimation=10)``.
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 50}

    def __init__(
        self,
        params: Leg2RParams | None = None,
        render_mode: str | None = None,
        render_size: tuple[int, int] = (320, 320),
        **param_overrides: Any,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"Leg2REnv: unsupported render_mode {render_mode!r}")
        base = params if params is not None else Leg2RParams()
        unknown = set(param_overrides) - {field.name for field in dataclasses.fields(Leg2RParams)}
        if unknown:
            raise TypeError(f"Leg2REnv: unknown Leg2RParams fields {sorted(unknown)}")
        self.params = dataclasses.replace(base, **param_overrides)
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "render_fps": max(1, round(self.params.policy_hz))}
        self.render_size = render_size
        self.physics = Leg2RPhysics(self.params)
        self.observation_space = spaces.Box(
            -observation_bound(self.params), observation_bound(self.params), dtype=np.float32
        )
        self.action_space = spaces.Box(-1.0, 1.0, (ACTION_DIM,), np.float32)
        self._steps = 0
        self._last_torque = np.zeros(2)
        # Foot positions [N x 2] (m) that render() draws as a path (set by a viewer, e.g.
        # training/render.py; empty: no path).
        self.foot_trail = np.zeros((0, 2))

    @property
    def episode_time(self) -> float:
        """Seconds since the episode started (the reference clock)."""
        return self._steps * self.params.policy_dt

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start at the reference's first point (IK) plus uniform joint and velocity noise."""
        super().reset(seed=seed)
        self._new_episode()
        params = self.params
        start_q, start_qd = initial_joint_state(params)
        q = start_q + self.np_random.uniform(
            -params.reset_joint_noise, params.reset_joint_noise, size=2
        )
        q = np.clip(q, params.joint_lower, params.joint_upper)
        qd = start_qd + self.np_random.uniform(
            -params.reset_velocity_noise, params.reset_velocity_noise, size=2
        )
        self.physics.reset(q, qd)
        self._steps = 0
        self._last_torque = np.zeros(2)
        q, qd = self._measure()
        return build_observation(q, qd, 0.0, params), self._info()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Hold the torque for ``decimation`` control ticks, then observe and reward."""
        torque = action_to_torque(np.asarray(action, dtype=np.float64).reshape(-1), self.params)
        self._actuate(torque)
        self._steps += 1
        self._last_torque = torque
        true_q, true_qd = self.physics.q, self.physics.qd
        if not (np.all(np.isfinite(true_q)) and np.all(np.isfinite(true_qd))):
            raise RuntimeError(f"Leg2REnv: simulation diverged, q={true_q}, qd={true_qd}")
        q, qd, t = *self._measure(), self.episode_time
        reward = step_reward(q, qd, t, self.params)
        truncated = self._steps >= self.params.episode_steps
        return build_observation(q, qd, t, self.params), reward, False, truncated, self._info()

    def _new_episode(self) -> None:
        """Called at the start of ``reset``, after seeding and before the start state is drawn."""

    def _actuate(self, torque: np.ndarray) -> None:
        """Apply the step's commanded torque [2] (N m) for ``decimation`` control ticks."""
        for _ in range(self.params.decimation):
            self.physics.step(torque)

    def _measure(self) -> tuple[np.ndarray, np.ndarray]:
        """The joint state q, qd: [2] that observation and reward use: here the exact state."""
        return self.physics.q, self.physics.qd

    def _info(self) -> dict[str, Any]:
        q, qd = self.physics.q, self.physics.qd
        desired_position, desired_velocity = reference(self.episode_time, self.params)
        return {
            "foot_position": forward_kinematics(q, self.params),
            "foot_velocity": foot_velocity(q, qd, self.params),
            "desired_position": desired_position,
            "desired_velocity": desired_velocity,
            "torque": self._last_torque.copy(),
            "time": self.episode_time,
        }

    def render(self) -> np.ndarray | None:
        """Side view as an H x W x 3 uint8 image: stand, links, foot, reference ellipse, and the
        ``foot_trail`` path."""
        if self.render_mode != "rgb_array":
            return None
        params = self.params
        reach = params.thigh_length + params.shank_length
        canvas = Canvas(
            self.render_size[0],
            self.render_size[1],
            (-0.6 * reach, 0.6 * reach),
            (-1.1 * reach, 0.15 * reach),
        )
        ellipse_times = np.linspace(0.0, params.ref_period, 97)
        ellipse = np.array([reference(float(t), params)[0] for t in ellipse_times])
        canvas.polyline(ellipse, 0.003, (120, 190, 120))
        if len(self.foot_trail) > 1:
            canvas.polyline(self.foot_trail, 0.003, (220, 120, 120))
        q = self.physics.q
        hip = np.zeros(2)
        knee = np.array([params.thigh_length * np.sin(q[0]), -params.thigh_length * np.cos(q[0])])
        foot = forward_kinematics(q, params)
        canvas.segment(np.array([-0.05, 0.0]), np.array([0.05, 0.0]), 0.02, (80, 80, 80))
        canvas.segment(hip, knee, 0.024, (50, 100, 200))
        canvas.segment(knee, foot, 0.018, (230, 130, 30))
        canvas.disc(hip, 0.014, (30, 30, 30))
        canvas.disc(knee, 0.011, (30, 30, 30))
        canvas.disc(reference(self.episode_time, params)[0], 0.012, (40, 170, 40))
        canvas.disc(foot, 0.014, (200, 30, 30))
        return canvas.image
