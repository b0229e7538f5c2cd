"""The package list, found rather than listed: a new package folder (a model family, say) ships without an edit
here. Everything else is in pyproject.toml, whose package-dir installs builder/, client/ and training/ as
focoos.builder, focoos.client and focoos.training."""

from setuptools import find_namespace_packages, setup

PARTS = {"builder": "focoos.builder", "client": "focoos.client", "training": "focoos.training"}
SKIP = ["*.__pycache__", "*.egg-info"]


def packages() -> list[str]:
    found = find_namespace_packages(include=["focoos", "focoos.*"], exclude=SKIP)
    for folder, name in PARTS.items():
        found += [name + package[len(folder):]
                  for package in find_namespace_packages(include=[folder, f"{folder}.*"], exclude=SKIP)]
    return sorted(found)


setup(packages=packages())
