"""Reading deploy/compose*.yaml as Compose does, for the checks in test_compose.py.

Only what the checks need: `${VAR}`, `${VAR:-default}`, `${VAR:?message}` interpolation (with
the variables given, or their defaults) and `extends` from another file (the extended service's
keys, overridden key by key; mappings such as `depends_on` and `environment` are merged, as the
Compose specification merges them). No engine is involved.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}, ${VAR?err}
VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")
MERGED_MAPPINGS = ("environment", "depends_on", "labels", "deploy")


def variables(text: str) -> dict[str, str | None]:
    """Every variable a compose file interpolates: its default, or None when it has none."""
    found: dict[str, str | None] = {}
    for name, op, arg in VARIABLE.findall(text):
        default = arg if op in (":-", "-") else None
        if found.get(name) is None:
            found[name] = default
    return found


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            name, op, arg = m.group(1), m.group(2), m.group(3)
            if env.get(name):
                return env[name]
            if op in (":-", "-"):
                return str(arg)
            if op in (":?", "?"):
                raise KeyError(f"${{{name}}} is required: {arg}")
            return ""

        return VARIABLE.sub(sub, value)
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    return value


def load(path: Path, env: Mapping[str, str]) -> dict[str, Any]:
    """A compose file, interpolated, with every `extends` resolved."""
    model: dict[str, Any] = interpolate(yaml.safe_load(path.read_text()), env)
    services = model.get("services", {})
    for name, service in list(services.items()):
        ext = service.pop("extends", None)
        if ext is None:
            continue
        source = load(path.parent / ext["file"], env) if "file" in ext else model
        merged = dict(source["services"][ext["service"]])
        for key, value in service.items():
            if key in MERGED_MAPPINGS and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **_as_mapping(value)}
            else:
                merged[key] = value
        services[name] = merged
    return model


def _as_mapping(value: Any) -> dict[str, Any]:
    if isinstance(value, list):  # the short syntax: [a, b]
        return {v: {"condition": "service_started"} for v in value}
    return dict(value)


def depends_on(service: Mapping[str, Any]) -> dict[str, str]:
    """{service: condition}, from the short or the long syntax."""
    deps = _as_mapping(service.get("depends_on") or {})
    return {k: (v or {}).get("condition", "service_started") for k, v in deps.items()}


def named_volumes(service: Mapping[str, Any]) -> list[str]:
    out = []
    for v in service.get("volumes", []):
        source = v.get("source", "") if isinstance(v, dict) else v.split(":", 1)[0]
        if source and not source.startswith((".", "/", "~")):
            out.append(source)
    return out


def bind_sources(service: Mapping[str, Any]) -> list[str]:
    out = []
    for v in service.get("volumes", []):
        source = v.get("source", "") if isinstance(v, dict) else v.split(":", 1)[0]
        if source.startswith((".", "/")):
            out.append(source)
    return out
