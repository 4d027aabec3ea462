"""Package boundaries: mdemorl_ros imports no robot package and the trainer's package imports no
driver, so the trainer runs beside any robot; the protocol records and the parameter rules stay
free of rclpy (the controller cores use them without ROS)."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2]
ROBOT_PACKAGES = {"leg2r_driver", "stochlite_driver", "stochlite_bringup"}


def imported_packages(path: Path) -> set[str]:
    """Top-level package names of every import in the module at ``path`` (nested ones too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def modules(package: str) -> list[Path]:
    found = sorted((SRC / package / package).rglob("*.py"))
    assert found, f"no modules found for {package}"
    return found


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("mdemorl_ros", ROBOT_PACKAGES | {"mdemorl_planner_node"}),
        ("mdemorl_planner_node", ROBOT_PACKAGES),
        ("mdemorl_core", {"rclpy", "mdemorl_ros", "mdemorl_planner_node", *ROBOT_PACKAGES}),
    ],
)
def test_package_imports_none_of(package: str, forbidden: set[str]) -> None:
    offending = {
        path.name: sorted(imported_packages(path) & forbidden) for path in modules(package)
    }
    assert {name: found for name, found in offending.items() if found} == {}


@pytest.mark.parametrize("module", ["protocol.py", "node_parameters.py", "loop_timing.py"])
def test_ros_free_modules_do_not_import_rclpy(module: str) -> None:
    imports = imported_packages(SRC / "mdemorl_ros" / "mdemorl_ros" / module)
    assert not imports & {"rclpy", "builtin_interfaces", "diagnostic_msgs"}
