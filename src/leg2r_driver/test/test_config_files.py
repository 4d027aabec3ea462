"""The shipped YAML parameter files name only declared parameters, with matching types."""

import importlib
from pathlib import Path

import pytest
import yaml

CONFIG = Path(__file__).resolve().parent.parent / "config"
NODES = {
    "motor_driver.yaml": ("leg2r_driver.motor_driver_node", "motor_driver_node"),
    "imu.yaml": ("leg2r_driver.imu_node", "imu_node"),
    "torque_controller.yaml": ("leg2r_driver.torque_controller_node", "torque_controller_node"),
    "sim_robot.yaml": ("leg2r_driver.sim_robot_node", "sim_robot_node"),
}


@pytest.mark.parametrize("filename", sorted(NODES))
def test_yaml_matches_declared_parameters(filename: str) -> None:
    module_name, node_name = NODES[filename]
    defaults = importlib.import_module(module_name).DEFAULTS
    parameters = yaml.safe_load((CONFIG / filename).read_text())[node_name]["ros__parameters"]
    assert set(parameters) == set(defaults), filename
    for key, value in parameters.items():
        default = defaults[key]
        if isinstance(default, float):
            assert isinstance(value, float), key  # ROS rejects an int for a double parameter
        else:
            assert type(value) is type(default), key
        if isinstance(default, list) and default:
            assert all(type(v) is type(default[0]) for v in value), key
        assert value == default, f"{filename}: {key} differs from the node's default"
