"""mdemorl_core: builds under colcon (ament_python) and installs alone with `pip install -e`."""

from setuptools import find_packages, setup

package_name = "mdemorl_core"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    package_data={package_name: ["envs/assets/*", "configs/*.yaml"]},
    include_package_data=True,
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
    ],
    python_requires=">=3.10",
    install_requires=[
        "numpy",
        "torch",
        "gymnasium",
        "mujoco",
        "pybullet",
        "pyyaml",
        "tqdm",
        "tensorboard",
        "matplotlib",
        "rosbags",
    ],
    zip_safe=False,
    maintainer="mdemorl maintainers",
    maintainer_email="maintainers@mdemorl.dev",
    description="M-DeMoRL: SAC + probabilistic ensemble + DMD-MPC, pure Python + torch, no ROS.",
    license="Apache-2.0",
    entry_points={"console_scripts": ["mdemorl = mdemorl_core.cli:main"]},
)
