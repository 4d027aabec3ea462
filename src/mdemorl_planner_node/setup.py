from setuptools import find_packages, setup

package_name = "mdemorl_planner_node"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="mdemorl maintainers",
    maintainer_email="maintainers@mdemorl.dev",
    description="ROS 2 adapters of the learning stack: the trainer node and the DMD-MPC planner service node.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "foxglove_bridge = mdemorl_planner_node.foxglove_bridge:main",
            "mdemorl_monitor = mdemorl_planner_node.monitor_dashboard:main",
            "planner_node = mdemorl_planner_node.planner_node:main",
            "policy_publisher = mdemorl_planner_node.policy_publisher:main",
            "trainer_node = mdemorl_planner_node.trainer_node:main",
        ],
    },
)
