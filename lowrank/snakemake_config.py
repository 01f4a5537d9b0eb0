"""Snakemake's config loader naming the file and line of a YAML error.

Snakemake reads every `--configfile` before any workflow code runs, and says of a YAML syntax error only "Config
file is not valid JSON or YAML" (9.x; --verbose shows PyYAML's traceback). This wraps its loader so that error
names the file, line and problem (lowrank.plan.read_yaml's sentence). It is installed at interpreter start by the
line `make setup` writes into the virtual environment (lowrank-snakemake.pth), and lazily: nothing is imported
until Snakemake imports its loader, so every other program in the environment starts as before.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys
from types import ModuleType

LOADER = "snakemake.common.configfile"  # the module whose _load_configfile Snakemake reads config files with
PTH = "lowrank-snakemake.pth"
PTH_LINE = "import lowrank.snakemake_config; lowrank.snakemake_config.install()"


def wrap(module: ModuleType) -> None:
    """Make module._load_configfile (Snakemake's) name the file and line of a YAML error, in its own error type."""
    load = module._load_configfile

    def load_naming_the_line(configpath_or_obj, filetype="Config"):
        try:
            return load(configpath_or_obj, filetype)
        except Exception as err:
            if not isinstance(configpath_or_obj, (str, os.PathLike)) or "not valid JSON or YAML" not in str(err):
                raise
            from lowrank.config import ConfigError
            from lowrank.plan import read_yaml

            try:
                read_yaml(configpath_or_obj)
            except ConfigError as named:
                err.args = (str(named),)  # Snakemake's own error, re-raised: it prints no frame of this wrapper
            raise

    module._load_configfile = load_naming_the_line


class _Finder(importlib.abc.MetaPathFinder):
    """Finds Snakemake's config loader once, as Python would, and wraps it once it is loaded."""

    def find_spec(self, name, path, target=None):
        if name != LOADER:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_wrap(module: ModuleType) -> None:
            exec_module(module)
            wrap(module)

        spec.loader.exec_module = exec_and_wrap
        return spec


def write_pth(site_packages: str | os.PathLike) -> None:
    """Write the .pth file that installs the wrapper at every interpreter start of the environment (make setup)."""
    with open(os.path.join(site_packages, PTH), "w") as fh:
        fh.write(PTH_LINE + "\n")


def install() -> None:
    """Wrap Snakemake's config loader when it is first imported (at once if it already is)."""
    if LOADER in sys.modules:
        wrap(sys.modules[LOADER])
    elif not any(isinstance(finder, _Finder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
