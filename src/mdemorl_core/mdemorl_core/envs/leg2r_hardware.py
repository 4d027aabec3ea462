"""Leg2RHardware-v0: the Leg2R task on a hardware-realistic actuator and sensor (AK60-6-class joints).

Same observation layout, action meaning (action x ``torque_limit`` = commanded joint torque),
reference, reward formula, episode length and truncation as Leg2R-v0; what changes is what lies
between the command and the joint and between the joint and the observation:

1. Joint friction (``friction``): Coulomb ``friction_loss`` = the actuator's back-drive torque and
   viscous ``joint_damping`` from an identification of the same actuator class, with MuJoCo's
   friction constraint made stiff enough to hold a loaded joint (stiction); off -> v0's values.
2. Torque-speed limit (``torque_speed_limit``): the commanded torque is clipped, every control
   tick, to the four-quadrant envelope of a voltage-limited motor (``torque_envelope``): motoring
   torque falls linearly from ``stall_torque`` at rest to zero at the no-load speed, the line
   passing through the datasheet's rated point (3 N m at 233 rpm); braking torque grows with speed;
   both are capped at the peak torque. With the 3 N m command range the limit binds only above the
   rated speed (24.4 rad/s). Measured (3 episodes each): the tracking controller stays below
   2.3 rad/s and uniform random actions below 22.5 rad/s (never limited); bang-bang +-1 actions
   reach 29.9 rad/s and are limited on 0.4 % of policy steps.
3. Measurement (``quantisation``, ``sensor_noise``): the joint state the observation and reward
   use is the true state plus Gaussian noise, then quantised as the actuator's MIT-mode CAN reply
   encodes it (16-bit position over +-12.5 rad, 12-bit velocity over +-50 rad/s).
4. Actuation latency (``latency_ticks``): a command takes effect that many 2 ms control ticks
   later (the CAN round trip), so the first tick of every policy step still applies the previous
   step's torque. 0 = off.
5. Per-episode randomisation (``randomisation``): link lengths, centre-of-mass distances (with
   their link) and the three masses of the SIMULATED leg are each scaled by an independent uniform
   factor in [1 - r, 1 + r] drawn from the env's seeded generator at every reset. 0 = off.

Reward choice: the reward is ``step_reward`` of the MEASURED joint state with the NOMINAL
parameters, i.e. exactly what the ROS torque controller computes on the robot from the encoder
readings it receives (it knows neither the true link lengths nor the noise-free state). It is
therefore a known function of the observation (``task_rewards.TASK_REWARDS["Leg2RHardware-v0"]``), like
v0's; the true foot error differs from it by the sensor error and the geometry randomisation.

Measured with the defaults (1000-step episodes, seeds 0-4; test_leg2r_hardware.py asserts the
ordering): ``tracking_controller_action`` fed the MEASURED state earns 0.960 mean reward per step
(range 0.957-0.962; v0: 0.991), zero torque 0.311 (0.284-0.337; v0: 0.070, here stiction holds
the leg near its start pose instead of letting it sag) and uniform random actions 0.040
(0.028-0.062; v0: 0.027).

Values (all ``ActuatorSpec`` defaults; fixed before any learning algorithm was run on this env):

====================  ==================  ======================================================
quantity              value               source
====================  ==================  ======================================================
rated torque          3.0 N m             [1] CubeMars AK60-6 V1.1 KV80 product page, 24 V
peak torque           9.0 N m             [1]
rated speed           233 rpm (24.4 r/s)  [1] output side, 24 V
no-load speed         320 rpm (33.5 r/s)  [1] output side, 24 V
gear ratio            6:1                 [1] planetary
rotor inertia         2.435e-5 kg m^2     [1] -> armature 2.435e-5 x 6^2 = 8.77e-4 kg m^2
back-drive torque     0.2 N m             [1] -> Coulomb friction per joint
viscous friction      0.081 N m s/rad     [2] identified on T-Motor AK80-6 (same 6:1 class);
                                              AK60-6 has no published value
encoder               14 bit, motor side  [1] -> 2 pi / (2^14 x 6) = 6.4e-5 rad at the joint
CAN position          16 bit, +-12.5 rad  [3] MIT-mode limits for AK60-6 -> 3.8e-4 rad step
CAN velocity          12 bit, +-50 rad/s  [3] -> 0.0244 rad/s step
position noise        6.4e-5 rad (1 sd)   assumption: one encoder count at the joint
velocity noise        0.05 rad/s (1 sd)   assumption: two CAN velocity steps (the driver's
                                              differentiated, filtered encoder estimate)
latency               1 tick (2 ms)       assumption: one CAN command/reply round trip per tick
randomisation         +-10 %              the task statement (issue 10)
====================  ==================  ======================================================

[1] https://www.cubemars.com/product/ak60-6-v1-1-kv80-robotic-actuator.html (CubeMars is
    T-Motor's robotics brand), as tabulated in github.com/nathmo/highTorqueDensityMotorReview
    research/cubemars_rich.csv (scraped 2026-07-24).
[2] github.com/dfki-ric-underactuated-lab/double_pendulum
    data/system_identification/identified_parameters/tmotors_v1.0/model_parameters.yml (b1),
    which also identifies Coulomb friction 0.093-0.186 N m, the same order as [1]'s 0.2 N m.
[3] github.com/neurobionics/TMotorCANControl src/TMotorCANControl/mit_can.py,
    MIT_Params["AK60-6"] (P_min/P_max, V_min/V_max); bit widths of the MIT-mode reply frame.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from mdemorl_core.envs.leg2r import Leg2REnv
from mdemorl_core.envs.leg2r_task import Leg2RParams

RPM = 2.0 * math.pi / 60.0  # rad/s per rpm
STICTION_IMPEDANCE = 0.999  # MuJoCo solimp of the friction constraint (see Leg2RHardwareEnv)


@dataclass(frozen=True)
class ActuatorSpec:
    """AK60-6-class actuator and sensor values (SI units, joint side); see the module table."""

    rated_torque: float = 3.0  # N m
    peak_torque: float = 9.0  # N m
    rated_speed: float = 233.0 * RPM  # rad/s
    no_load_speed: float = 320.0 * RPM  # rad/s
    gear_ratio: float = 6.0
    rotor_inertia: float = 2.435e-5  # kg m^2, motor side
    backdrive_torque: float = 0.2  # N m
    viscous_friction: float = 0.081  # N m s/rad
    encoder_bits: int = 14  # motor side
    position_range: float = 12.5  # rad, CAN frame encodes [-range, range]
    position_bits: int = 16
    velocity_range: float = 50.0  # rad/s
    velocity_bits: int = 12
    velocity_noise: float = 0.05  # rad/s, 1 sd

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"ActuatorSpec.{field.name} must be finite and > 0, got {value}")
        if not self.rated_torque <= self.peak_torque:
            raise ValueError("ActuatorSpec.rated_torque must not exceed peak_torque")
        if not self.rated_speed < self.no_load_speed:
            raise ValueError("ActuatorSpec.rated_speed must be below no_load_speed")

    @property
    def armature(self) -> float:
        """Rotor inertia reflected to the joint, kg m^2."""
        return self.rotor_inertia * self.gear_ratio**2

    @property
    def stall_torque(self) -> float:
        """Zero-speed intercept (N m) of the motoring line through the rated point."""
        return self.rated_torque / (1.0 - self.rated_speed / self.no_load_speed)

    @property
    def position_noise(self) -> float:
        """Position noise (rad, 1 sd): one encoder count at the joint."""
        return 2.0 * math.pi / (2**self.encoder_bits * self.gear_ratio)

    @property
    def position_step(self) -> float:
        """Position quantum (rad) of the CAN reply."""
        return 2.0 * self.position_range / (2**self.position_bits - 1)

    @property
    def velocity_step(self) -> float:
        """Velocity quantum (rad/s) of the CAN reply."""
        return 2.0 * self.velocity_range / (2**self.velocity_bits - 1)


def torque_envelope(qd: np.ndarray, spec: ActuatorSpec) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest joint torque [...] (N m) the actuator can produce at joint speed qd [...].

    Motoring (torque along the motion) is voltage-limited: at most stall (1 - |qd| / no-load),
    never below 0; braking reaches stall (1 + |qd| / no-load); both are capped at the peak torque.
    """
    qd = np.asarray(qd, dtype=np.float64)
    speed_ratio = qd / spec.no_load_speed
    upper = np.clip(spec.stall_torque * (1.0 - speed_ratio), 0.0, spec.peak_torque)
    lower = -np.clip(spec.stall_torque * (1.0 + speed_ratio), 0.0, spec.peak_torque)
    return lower, upper


def quantise(value: np.ndarray, half_range: float, bits: int) -> np.ndarray:
    """``value`` [...] clipped to [-half_range, half_range] and rounded to the nearest of the
    2^bits evenly spaced codes of that interval (what an unsigned fixed-point field carries)."""
    step = 2.0 * half_range / (2**bits - 1)
    codes = np.round((np.clip(value, -half_range, half_range) + half_range) / step)
    return codes * step - half_range


RANDOMISED_FIELDS: tuple[tuple[str, ...], ...] = (
    ("thigh_length", "thigh_com"),
    ("shank_length", "shank_com"),
    ("thigh_mass",),
    ("shank_mass",),
    ("foot_mass",),
)
"""Groups of ``Leg2RParams`` fields scaled by one random factor each (a link's length and its
centre-of-mass distance move together)."""


class Leg2RHardwareEnv(Leg2REnv):
    """Leg2RHardware-v0 (see the module docstring). Each effect has a keyword to switch it off;
    ``Leg2RParams`` field overrides work as in v0 and set the NOMINAL leg (observation, reward,
    mean of the randomised physics).

    ``measured_q`` / ``measured_qd``: [2] joint state of the last observation (what a controller on
    the robot sees); ``physics.q`` / ``physics.qd`` stay the true state.
    """

    def __init__(
        self,
        params: Leg2RParams | None = None,
        render_mode: str | None = None,
        render_size: tuple[int, int] = (320, 320),
        actuator: ActuatorSpec | None = None,
        friction: bool = True,
        torque_speed_limit: bool = True,
        quantisation: bool = True,
        sensor_noise: bool = True,
        latency_ticks: int = 1,
        randomisation: float = 0.1,
        **param_overrides: Any,
    ) -> None:
        self.actuator = actuator if actuator is not None else ActuatorSpec()
        if not isinstance(latency_ticks, int) or latency_ticks < 0:
            raise ValueError(
                f"Leg2RHardwareEnv: latency_ticks must be an int >= 0, got {latency_ticks!r}"
            )
        if not (math.isfinite(randomisation) and 0.0 <= randomisation < 0.5):
            raise ValueError(
                f"Leg2RHardwareEnv: randomisation must be in [0, 0.5), got {randomisation}"
            )
        self.torque_speed_limit = torque_speed_limit
        self.quantisation = quantisation
        self.sensor_noise = sensor_noise
        self.latency_ticks = latency_ticks
        self.randomisation = randomisation
        spec = self.actuator
        actuator_fields: dict[str, Any] = {"armature": (spec.armature, spec.armature)}
        if friction:
            actuator_fields["friction_loss"] = (spec.backdrive_torque, spec.backdrive_torque)
            actuator_fields["joint_damping"] = (spec.viscous_friction, spec.viscous_friction)
        base = params if params is not None else Leg2RParams()
        # Explicit overrides win over the actuator's values (e.g. armature for a v0 comparison).
        nominal = dataclasses.replace(base, **actuator_fields)
        super().__init__(nominal, render_mode, render_size, **param_overrides)
        if friction:
            # MuJoCo's frictionloss is a soft constraint: at its defaults a leg held by friction
            # against gravity creeps at 0.06 rad/s (measured); a gearbox does not. The stiffest
            # stable setting (time constant 2 physics steps, impedance 0.999) leaves 1e-4 rad/s.
            self.physics.model.dof_solref[:] = (2.0 * self.params.physics_dt, 1.0)
            self.physics.model.dof_solimp[:, :2] = STICTION_IMPEDANCE
        self._commands: deque[np.ndarray] = deque()
        self.measured_q = np.zeros(2)
        self.measured_qd = np.zeros(2)

    def _new_episode(self) -> None:
        """Draw this episode's simulated leg and clear the command pipeline."""
        physics_params = self.params
        if self.randomisation > 0.0:
            factors = self.np_random.uniform(
                1.0 - self.randomisation, 1.0 + self.randomisation, size=len(RANDOMISED_FIELDS)
            )
            scaled = {
                name: getattr(self.params, name) * float(factor)
                for group, factor in zip(RANDOMISED_FIELDS, factors, strict=True)
                for name in group
            }
            physics_params = dataclasses.replace(self.params, **scaled)
        self.physics.set_params(physics_params)
        self._commands = deque(np.zeros(2) for _ in range(self.latency_ticks))

    def _actuate(self, torque: np.ndarray) -> None:
        """Per control tick: take the command issued ``latency_ticks`` ticks ago, clip it to the
        torque-speed envelope at the current joint speed, and step the physics."""
        for _ in range(self.params.decimation):
            self._commands.append(torque)
            command = self._commands.popleft()
            if self.torque_speed_limit:
                lower, upper = torque_envelope(self.physics.qd, self.actuator)
                command = np.clip(command, lower, upper)
            self.physics.step(command)

    def _measure(self) -> tuple[np.ndarray, np.ndarray]:
        """The joint state as the actuator reports it: true state + noise, then CAN-quantised."""
        q, qd = self.physics.q, self.physics.qd
        spec = self.actuator
        if self.sensor_noise:
            q = q + self.np_random.normal(0.0, spec.position_noise, size=2)
            qd = qd + self.np_random.normal(0.0, spec.velocity_noise, size=2)
        if self.quantisation:
            q = quantise(q, spec.position_range, spec.position_bits)
            qd = quantise(qd, spec.velocity_range, spec.velocity_bits)
        self.measured_q, self.measured_qd = q, qd
        return q.copy(), qd.copy()

    def _info(self) -> dict[str, Any]:
        info = super()._info()
        info["measured_q"] = self.measured_q.copy()
        info["measured_qd"] = self.measured_qd.copy()
        return info
