from glob import glob

from setuptools import find_packages, setup

package_name = "stochlite_bringup"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        ("share/" + package_name + "/launch", glob("launch/*.py")),
        (
            "share/" + package_name + "/config",
            [p for ext in ("yaml", "perspective", "xml", "json") for p in glob(f"config/*.{ext}")],
        ),
        # One source of truth: the URDF the StochLite env loads, installed from mdemorl_core.
        (
            "share/" + package_name + "/urdf",
            ["../mdemorl_core/mdemorl_core/envs/assets/stochlite.urdf"],
        ),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="mdemorl maintainers",
    maintainer_email="maintainers@mdemorl.dev",
    description="Launch files, parameters and robot descriptions of the mdemorl training graph, with a small runner for machines without ros2 launch.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            # On PATH after sourcing install/setup.bash: `ros2 launch` for pip-only machines.
            "launch_runner = stochlite_bringup.runner:main",
        ],
    },
)
