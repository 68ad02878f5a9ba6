"""What `pip install .` (and so every image) gets: each package of the tree, listed in pyproject.toml."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_of_the_tree_is_installed() -> None:
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(settings["packages"])
    found = {".".join(init.parent.relative_to(ROOT).parts) for top in ("broker", "client")
             for init in (ROOT / top).rglob("__init__.py")}
    found |= {name for name, path in settings["package-dir"].items() if (ROOT / path / "__init__.py").exists()}
    assert listed == found
