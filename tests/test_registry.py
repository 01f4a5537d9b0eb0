"""The torch-free workflow layer: what the Snakefile imports loads without torch, and the registries of
architectures and datasets agree with the networks, the data code and the config schema."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lowrank import config, registry

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW_FILES = [ROOT / "Snakefile", *sorted((ROOT / "workflow" / "rules").glob("*.smk"))]


def workflow_modules() -> list[str]:
    """The lowrank modules the Snakefile and its rule files import (at DAG-build time)."""
    text = "\n".join(p.read_text() for p in WORKFLOW_FILES)
    names = [f"lowrank.{m.strip()}" for group in re.findall(r"^from lowrank import (.+)$", text, re.M)
             for m in group.split(",")]
    return sorted(set(names + re.findall(r"^from (lowrank\.\w+) import", text, re.M)))


def loads_torch(modules: list[str]) -> bool:
    """Whether importing `modules` in a fresh interpreter imports torch."""
    code = f"import sys\nfor m in {modules!r}: __import__(m)\nprint('torch' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return res.stdout.strip() == "True"


def test_the_workflow_layer_imports_without_torch():
    modules = workflow_modules()
    assert {"lowrank.plan", "lowrank.layout", "lowrank.registry", "lowrank.views", "lowrank.controller"} <= set(modules)
    assert not loads_torch(["lowrank.grid", "lowrank.config", "lowrank.frontpage", *modules])
    assert not loads_torch(["lowrank.status", "lowrank.preview"])  # the login node's watch: python -m lowrank.status


def test_the_torch_check_sees_a_module_that_loads_torch():
    assert loads_torch(["lowrank.grid", "lowrank.data"])


@pytest.mark.parametrize("name", registry.ARCHS)
def test_arch_options_are_the_constructors_keyword_parameters(name):
    from lowrank import models

    params = inspect.signature(models.model_class(name)).parameters.values()
    assert registry.arch_options(name) == {p.name: p.default for p in params if p.name not in registry.DATA_SHAPE}


@pytest.mark.parametrize("name", registry.ARCHS)
def test_has_batchnorm_says_whether_the_network_holds_a_batchnorm(name):
    from torch import nn

    from lowrank import models

    model = models.build(name)  # the paper-sized network: building one takes well under a second
    assert registry.has_batchnorm(name) == any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def test_signature_defaults_reads_positional_and_keyword_defaults(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("class Net:\n    def __init__(self, a, b=2, *, c='x', d, e=(1, 2.5)):\n        pass\n\n"
                      "def f(x, *, y=-1):\n    pass\n")
    assert registry.signature_defaults(source, "Net") == {"b": 2, "c": "x", "e": (1, 2.5)}
    assert registry.signature_defaults(source, "f") == {"y": -1}
    with pytest.raises(LookupError, match="defines no function or class 'g'"):
        registry.signature_defaults(source, "g")


def test_an_unknown_architecture_names_the_choices():
    with pytest.raises(ValueError, match="unknown architecture 'lenet'; choose one of: resnet18, vgg16_bn"):
        registry.arch_options("lenet")


# the flags every run needs besides its architecture's options
TINY_RUN = ["--arch", "mlp_bn", "--dataset", "synthetic", "--batch-size", "8", "--lr", "0.1", "--weight-decay", "0",
            "--epochs", "1", "--out", "x"]


def test_the_command_line_takes_every_architecture_option_typed_by_its_default():
    from lowrank.engine.cli import parse_args

    types = registry.arch_option_types()
    assert types["dropout"] is float and types["width"] is int and types["activation"] is str
    argv = [a for name, typ in types.items() for a in (f"--{name.replace('_', '-')}", str(typ(1)))]
    args = parse_args(argv + TINY_RUN)
    assert {name: getattr(args, f"arch_{name}") for name in types} == {name: typ(1) for name, typ in types.items()}


def test_the_synthetic_dataset_is_make_synthetics_defaults():
    from lowrank import data

    generated = data.make_synthetic()
    info = registry.DATASETS["synthetic"]
    assert registry.dataset_options("synthetic") == tuple(inspect.signature(data.make_synthetic).parameters)
    assert (info.train_size, info.channels, info.size, info.classes) == (2048, 3, 32, 10)
    assert tuple(generated.train_x.shape) == (info.train_size, info.channels, info.size, info.size)
    assert generated.classes == info.classes
    assert registry.train_size("synthetic", {"n_train": 96}) == 96


def test_train_size_counts_the_synthetic_option_and_lives_in_the_registry_only():
    from lowrank import data

    assert registry.train_size("synthetic", {"n_train": 384}) == 384
    assert registry.train_size("synthetic", {}) == registry.DATASETS["synthetic"].train_size
    assert registry.train_size("cifar10", {}) == 50_000
    assert not hasattr(data, "train_size")  # callers ask the registry, not a re-export in lowrank.data


def schema_lists(schema: dict) -> dict[str, list]:
    """The schema's enumerated names that registries and config.py also hold."""
    defs, props = schema["$defs"], schema["properties"]
    resources = props["resources"]["patternProperties"]
    return {
        "datasets": defs["dataset"]["enum"],
        "archs": props["models"]["additionalProperties"]["properties"]["arch"]["enum"],
        "resources": re.fullmatch(r"\^\((.*)\)\$", next(iter(resources))).group(1).split("|"),
        "augmentation": props["switches"]["properties"]["augmentation"]["enum"],
        "dtype": props["defaults"]["properties"]["dtype"]["enum"],
    }


def registry_lists() -> dict[str, list]:
    """The same lists as the code holds them (the schema may order them otherwise)."""
    return {"datasets": list(registry.DATASETS), "archs": list(registry.ARCHS),
            "resources": list(registry.ARCHS), "augmentation": list(config.AUGMENTATIONS),
            "dtype": list(config.DTYPES)}


def mismatches(schema: dict) -> list[str]:
    """The schema lists that differ (as sets) from the code's."""
    ours, theirs = registry_lists(), schema_lists(schema)
    return [key for key in ours if set(ours[key]) != set(theirs[key])]


def test_the_schemas_name_lists_are_the_registries():
    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    assert mismatches(schema) == []
    schema["$defs"]["dataset"]["enum"].remove("svhn")
    schema["properties"]["models"]["additionalProperties"]["properties"]["arch"]["enum"].append("lenet")
    assert mismatches(schema) == ["datasets", "archs"]
