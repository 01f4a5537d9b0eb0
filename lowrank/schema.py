"""The config schema (workflow/schemas/config.schema.yaml): the one source of the config's types and ranges, and of
each key's role. Torch-free.

Every key of the top level, of `switches`, of a figure and of a panel carries `x-role`:
- `result`: decides which runs train or what a result holds (an edit re-trains or re-aggregates);
- `drawing`: only how results are drawn (an edit re-renders);
- `execution`: only where and how jobs run (an edit re-runs nothing).
lowrank.views derives what each job reads from these roles.
"""

from __future__ import annotations

import difflib
import functools
import json
import math
from pathlib import Path

import jsonschema
import yaml

FILE = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"
ROLES = ("result", "drawing", "execution")


@functools.cache
def load() -> dict:
    """The schema, read once per process."""
    return yaml.load(FILE.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def sections() -> dict[str, dict]:
    """The schema objects whose keys carry a role, by where they sit in the config."""
    schema = load()
    return {"(top level)": schema["properties"], "switches": schema["properties"]["switches"]["properties"],
            "figure": schema["$defs"]["figure"]["properties"], "panel": schema["$defs"]["panel"]["properties"]}


def unclassified() -> list[str]:
    """The keys (section.key) of the sections that carry roles whose `x-role` is missing or unknown: none may be."""
    return [f"{name}.{key}" for name, props in sections().items() for key, rule in props.items()
            if rule.get("x-role") not in ROLES]


def keys_with_role(section: str, role: str) -> tuple[str, ...]:
    """The keys of a schema section (sections()) that have role `role`."""
    return tuple(k for k, v in sections()[section].items() if v.get("x-role") == role)


def _nonfinite(node: object, key: str = ""):
    """(key, value) of every non-finite number in the config (YAML .inf and .nan pass the schema's bounds)."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for k, v in items:
        sub = f"{key}.{k}" if isinstance(k, str) else f"{key}[{k}]"
        if isinstance(v, float) and not math.isfinite(v):
            yield sub.lstrip("."), v
        yield from _nonfinite(v, sub)


def config_error(config: dict) -> str | None:
    """The config's first non-finite number or schema violation as one line naming its key, or None."""
    for key, value in _nonfinite(config):
        return f"Invalid config at {key}: {value} is not a finite number"
    schema = load()
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(config))
    if error is None:
        return None
    key = ".".join(str(k) for k in error.absolute_path) or "(top level)"
    hint = ""
    unknown = [k for k in config if k not in schema["properties"]]
    if unknown and not error.absolute_path:
        close = difflib.get_close_matches(unknown[0], schema["properties"], 1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
    message = error.message.splitlines()[0][:300]
    if error.validator == "not" and "description" in error.schema:  # a key the schema forbids here, and why
        message = f"not allowed here: {error.schema['description']}"
    return f"Invalid config at {key}: {message}{hint}"


@functools.cache
def _setting_validator(name: str) -> jsonschema.Draft202012Validator | None:
    """A validator of run setting `name`'s definition (`defaults.<name>`, else `$defs.<name>`), or None."""
    schema = load()
    rule = schema["properties"]["defaults"]["properties"].get(name) or schema["$defs"].get(name)
    return None if rule is None else jsonschema.Draft202012Validator({"$defs": schema["$defs"], **rule})


def setting_error(name: str, value: object) -> tuple[str, object, str] | None:
    """The key, value and reason of run setting `name`'s first break of its schema definition (e.g.
    ("data_options.n_train", 0, "0 is less than the minimum of 1")), or None: it complies, or the schema has none."""
    return _setting_error(name, json.dumps(value, sort_keys=True))


@functools.lru_cache(maxsize=4096)
def _setting_error(name: str, value_json: str) -> tuple[str, object, str] | None:
    """setting_error of a value given as JSON: each distinct value is validated once (a grid repeats them)."""
    validator = _setting_validator(name)
    value = json.loads(value_json)
    error = None if validator is None else jsonschema.exceptions.best_match(validator.iter_errors(value))
    if error is None:
        return None
    key = "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in error.absolute_path)
    return f"{name}{key}", error.instance, error.message.splitlines()[0]
