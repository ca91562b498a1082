from pathlib import Path

import pytest

from gateway.config import ConfigError, load_config, parse_config

BASE = """
providers:
  - name: openai
    kind: openai
    api_base: https://api.openai.com/v1
    api_key: ${OPENAI_API_KEY}
models:
  - name: gpt-4o-mini
    provider: openai
"""


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "gw.yaml"
    p.write_text(text)
    return p


def test_env_vars_are_expanded(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, BASE), environ={"OPENAI_API_KEY": "sk-x"})
    assert cfg.providers[0].api_key == "sk-x"
    assert cfg.database_url.startswith("sqlite+aiosqlite")


def test_missing_env_var_names_key_and_file(tmp_path: Path) -> None:
    path = _write(tmp_path, BASE)
    with pytest.raises(ConfigError) as e:
        load_config(path, environ={})
    assert str(path) in str(e.value)
    assert "providers[0].api_key" in str(e.value) and "OPENAI_API_KEY" in str(e.value)


def test_default_in_var_reference(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, BASE.replace("${OPENAI_API_KEY}", "${K:-sk-d}")), environ={})
    assert cfg.providers[0].api_key == "sk-d"


def test_database_url_env_override(tmp_path: Path) -> None:
    cfg = load_config(
        _write(tmp_path, BASE),
        environ={"OPENAI_API_KEY": "k", "GATEWAY_DATABASE_URL": "sqlite+aiosqlite:///x.db"},
    )
    assert cfg.database_url == "sqlite+aiosqlite:///x.db"


@pytest.mark.parametrize(
    "mutation, message",
    [
        (lambda t: t.replace("kind: openai", "kind: azure"), "providers[0].kind"),
        (
            lambda t: t.replace("    provider: openai", "    provider: nope"),
            "unknown provider 'nope'",
        ),
        (lambda t: t + "bogus_key: 1\n", "bogus_key: unknown key"),
        (
            lambda t: t.replace("  - name: gpt-4o-mini", "  - name: gpt-4o-mini\n    colour: red"),
            "models[0].colour: unknown key",
        ),
        (lambda t: t + "  - name: gpt-4o-mini\n    provider: openai\n", "used twice"),
        (lambda t: "- a\n- b\n", "top level must be a mapping"),
        (lambda t: t + "  bad: [\n", "not valid YAML"),
    ],
)
def test_bad_configs_name_the_problem(tmp_path: Path, mutation: object, message: str) -> None:
    path = _write(tmp_path, mutation(BASE))  # type: ignore[operator]
    with pytest.raises(ConfigError) as e:
        load_config(path, environ={"OPENAI_API_KEY": "k"})
    assert message in str(e.value)
    assert str(path) in str(e.value)


def test_demo_config_loads_without_keys() -> None:
    cfg = load_config(Path(__file__).parents[2] / "config" / "demo.yaml", environ={})
    assert cfg.simulator is not None
    assert all(p.simulated for p in cfg.providers)


def test_idle_client_connections_outlive_the_sdks_pools() -> None:
    from gateway.runner import uvicorn_options

    config = parse_config(
        {
            "providers": [{"name": "p", "kind": "openai"}],
            "models": [{"name": "gpt-4o-mini", "provider": "p"}],
        },
        source="t",
        environ={},
    )
    # httpx (the OpenAI and Anthropic SDKs) keeps idle connections 5 s, aiohttp 15 s
    assert uvicorn_options(config, "127.0.0.1", 1)["timeout_keep_alive"] == 75


def test_limits_default_to_the_protocol_defaults_and_stay_re_encodable() -> None:
    from gateway.protocol.limits import DEFAULT_LIMITS

    raw = {
        "providers": [{"name": "p", "kind": "openai"}],
        "models": [{"name": "gpt-4o-mini", "provider": "p"}],
    }
    limits = parse_config(raw, source="t", environ={}).limits
    assert (limits.max_json_depth, limits.max_messages, limits.max_content_parts) == (
        DEFAULT_LIMITS.max_json_depth,
        DEFAULT_LIMITS.max_messages,
        DEFAULT_LIMITS.max_content_parts,
    )
    # orjson re-encodes at most 254 levels: a deeper limit would let 500s back in
    with pytest.raises(ConfigError, match="limits.max_json_depth"):
        parse_config({**raw, "limits": {"max_json_depth": 300}}, source="t", environ={})
    with pytest.raises(ConfigError, match="limits.max_header_bytes"):
        parse_config({**raw, "limits": {"max_header_bytes": 10}}, source="t", environ={})
