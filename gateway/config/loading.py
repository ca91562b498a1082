"""Loading a config: `${VAR}` expansion, the YAML parsed and validated, errors a user can act
on (the file and the key), and the config with calibrated GPU figures in place of guesses."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from gateway.config.base import ConfigError
from gateway.config.schema import GatewayConfig

DEFAULT_CONFIG = Path("config/demo.yaml")  # `--config`'s default, relative to the working dir


def with_calibrations(
    config: GatewayConfig, measured: Mapping[str, tuple[float, int | None]]
) -> GatewayConfig:
    """The config with measured GPU throughput (tokens/s) and concurrency per provider name,
    as `gateway bench calibrate` recorded them, in place of the configured guesses."""
    providers = []
    for p in config.providers:
        if p.gpu is not None and p.name in measured:
            tps, conc = measured[p.name]
            gpu = p.gpu.model_copy(
                update={
                    "throughput_tokens_per_s": tps,
                    "max_concurrency": conc or p.gpu.max_concurrency,
                }
            )
            p = p.model_copy(update={"gpu": gpu})
        providers.append(p)
    return config.model_copy(update={"providers": tuple(providers)})


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(value: Any, environ: Mapping[str, str], where: str = "") -> Any:
    """Replace `${VAR}` / `${VAR:-default}` in every string; a missing VAR names its key."""
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in environ:
                return environ[name]
            if default is not None:
                return default
            raise ConfigError(f"{where or 'value'}: environment variable ${{{name}}} is not set")

        return _VAR.sub(sub, value)
    if isinstance(value, dict):
        return {
            k: expand_env(v, environ, f"{where}.{k}" if where else str(k)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [expand_env(v, environ, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def parse_config(raw: Any, *, source: str, environ: Mapping[str, str]) -> GatewayConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of keys")
    try:
        data = expand_env(raw, environ)
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None
    if environ.get("GATEWAY_DATABASE_URL"):
        data["database_url"] = environ["GATEWAY_DATABASE_URL"]
    try:
        return GatewayConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(f"{source}: invalid config\n{_format(e)}") from None


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> GatewayConfig:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{p}: cannot read config file ({e.strerror})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML: {e}") from None
    return parse_config(raw, source=str(p), environ=os.environ if environ is None else environ)


def _format(e: ValidationError) -> str:
    lines = []
    for err in e.errors():
        loc = "".join(f"[{x}]" if isinstance(x, int) else f".{x}" for x in err["loc"]).lstrip(".")
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"  {loc or '(top level)'}: {msg}")
    return "\n".join(lines)
