"""Auth on a real gateway: master key, virtual keys through the official SDKs, the admin API,
and that no bad credential is told apart from another."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import anthropic
import httpx
import openai
import pytest

from tests.conftest import GatewayFactory
from tests.governance_support import MASTER, MASTER_HEADERS, AdminClient, gov_config
from tests.support import ServerThread, wait_rows

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
MESSAGES = {
    "model": "gpt-4o-mini",
    "max_tokens": 20,
    "messages": [{"role": "user", "content": "hi"}],
}


@pytest.fixture()
def gw(sim: ServerThread, sqlite_url: str, gateway_factory: GatewayFactory) -> ServerThread:
    return gateway_factory(gov_config(sim.url, sqlite_url))


def bad_credentials(admin: AdminClient) -> dict[str, dict[str, str]]:
    admin.team("t")
    expired = admin.key("t", expires_at=(datetime.now(UTC) - timedelta(seconds=1)).isoformat())
    revoked = admin.key("t")
    admin.revoke(revoked["id"])
    unknown = "sk-gw-" + "0" * 48
    return {
        "missing": {},
        "malformed": {"authorization": "Bearer sk-gw-nope"},
        "other scheme": {"authorization": f"Basic {MASTER}"},
        "unknown": {"authorization": f"Bearer {unknown}"},
        "expired": {"authorization": f"Bearer {expired['key']}"},
        "revoked": {"authorization": f"Bearer {revoked['key']}"},
        "empty": {"authorization": "Bearer"},
    }


def test_every_bad_credential_gets_the_same_401(gw: ServerThread, sqlite_url: str) -> None:
    cases = bad_credentials(AdminClient(gw.url))
    bodies = set()
    for name, headers in cases.items():
        r = httpx.post(f"{gw.url}/v1/chat/completions", json=CHAT, headers=headers)
        assert r.status_code == 401, name
        bodies.add(r.content)
        for path in ("/v1/models", "/admin/keys"):
            other = httpx.request("GET", f"{gw.url}{path}", headers=headers)
            assert (other.status_code, other.content) == (401, r.content), (name, path)
    assert len(bodies) == 1
    error = httpx.post(f"{gw.url}/v1/chat/completions", json=CHAT).json()["error"]
    assert error["type"] == "authentication_error" and error["code"] == "invalid_api_key"
    # the same through the SDKs: OpenAI's on chat, Anthropic's (x-api-key) on /v1/messages
    anthropic_bodies = set()
    for name, headers in cases.items():
        token = headers.get("authorization", "").removeprefix("Bearer ")
        client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=token or "x", max_retries=0)
        if name != "other scheme":
            with pytest.raises(openai.AuthenticationError):
                client.chat.completions.create(**CHAT)  # type: ignore[call-overload]
        r = httpx.post(f"{gw.url}/v1/messages", json=MESSAGES, headers={"x-api-key": token})
        assert r.status_code == 401
        anthropic_bodies.add(r.content)
    assert len(anthropic_bodies) == 1
    body = httpx.post(f"{gw.url}/v1/messages", json=MESSAGES).json()
    assert body["type"] == "error" and body["error"]["type"] == "authentication_error"
    sdk = anthropic.Anthropic(base_url=gw.url, api_key="sk-gw-" + "1" * 48, max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        sdk.messages.create(**MESSAGES)  # type: ignore[call-overload]
    # refused API requests have ledger rows too, with no key
    rows = wait_rows(sqlite_url, 3 * len(cases), status_code=401)
    assert rows and all(r["api_key_id"] is None for r in rows)


def test_keys_work_through_both_sdks_and_every_row_is_attributed(
    gw: ServerThread, sqlite_url: str
) -> None:
    admin = AdminClient(gw.url)
    admin.team("research")
    key = admin.key("research", name="notebook")
    assert key["key"].startswith("sk-gw-") and key["prefix"] == key["key"][:10] + "…"
    oa = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=key["key"], max_retries=0)
    assert oa.chat.completions.create(**CHAT).choices[0].message.content  # type: ignore[call-overload]
    stream = oa.chat.completions.create(**CHAT, stream=True)  # type: ignore[call-overload]
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    an = anthropic.Anthropic(base_url=gw.url, api_key=key["key"], max_retries=0)
    assert an.messages.create(**MESSAGES).content  # type: ignore[call-overload]
    master = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=MASTER, max_retries=0)
    master.chat.completions.create(**CHAT)  # type: ignore[call-overload]
    rows = wait_rows(sqlite_url, 4, status_code=200)
    by_key = sorted((r["endpoint"], r["api_key_id"], r["team"] or "") for r in rows)
    assert by_key == sorted(
        [
            ("chat", "master", ""),
            ("chat", key["id"], "research"),
            ("chat", key["id"], "research"),
            ("messages", key["id"], "research"),
        ]
    )


def test_admin_needs_the_master_key_and_health_stays_open(
    sim: ServerThread, sqlite_url: str, gateway_factory: GatewayFactory
) -> None:
    gw = gateway_factory(gov_config(sim.url, sqlite_url, auth={"metrics_token": "m" * 20}))
    admin = AdminClient(gw.url)
    admin.team("t")
    key = admin.key("t")
    as_key = httpx.get(f"{gw.url}/admin/keys", headers={"authorization": f"Bearer {key['key']}"})
    assert as_key.status_code == 403
    assert as_key.json()["error"]["type"] == "permission_error"
    assert "master key" in as_key.json()["error"]["message"]
    assert httpx.get(f"{gw.url}/health").status_code == 200
    assert httpx.get(f"{gw.url}/health/ready").status_code == 200
    assert httpx.get(f"{gw.url}/metrics").status_code == 401
    assert httpx.get(
        f"{gw.url}/metrics", headers={"authorization": "Bearer " + "m" * 20}
    ).is_success
    # a virtual key may list models; without a key even unknown paths say nothing but 401
    assert httpx.get(
        f"{gw.url}/v1/models", headers={"authorization": f"Bearer {key['key']}"}
    ).is_success
    assert httpx.get(f"{gw.url}/nowhere").status_code == 401


def test_metrics_are_open_unless_a_token_is_configured(gw: ServerThread) -> None:
    assert httpx.get(f"{gw.url}/metrics").status_code == 200


def test_a_key_limited_to_some_models_gets_a_clear_403_on_others(
    sim: ServerThread, sqlite_url: str, gateway_factory: GatewayFactory
) -> None:
    route = {"name": "auto", "policy": "cost", "candidates": ["gpt-4o-mini", "llama-3.1-8b"]}
    gw = gateway_factory(gov_config(sim.url, sqlite_url, routes=[route]))
    admin = AdminClient(gw.url)
    admin.team("t")
    key = admin.key("t", models=["llama-3.1-8b", "auto"])
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=key["key"], max_retries=0)
    for allowed in ("llama-3.1-8b", "auto"):
        client.chat.completions.create(**{**CHAT, "model": allowed})  # type: ignore[call-overload]
    with pytest.raises(openai.PermissionDeniedError) as e:
        client.chat.completions.create(**CHAT)  # type: ignore[call-overload]
    assert e.value.status_code == 403
    err = e.value.body  # the SDK hands over the envelope's `error`
    assert isinstance(err, dict)
    assert err["code"] == "model_not_allowed" and err["param"] == "model"
    assert "`gpt-4o-mini`" in err["message"] and "auto, llama-3.1-8b" in err["message"]
    r = httpx.post(f"{gw.url}/v1/messages", json=MESSAGES, headers={"x-api-key": key["key"]}).json()
    assert r["error"]["type"] == "permission_error"
    rows = wait_rows(sqlite_url, 2, status_code=403)
    assert {r["api_key_id"] for r in rows} == {key["id"]}


def test_the_admin_api_never_shows_a_secret_again(gw: ServerThread) -> None:
    http = httpx.Client(base_url=gw.url, headers=MASTER_HEADERS)
    team = http.post("/admin/teams", json={"name": "ops", "rpm": 10, "budget_usd_day": "2.5"})
    assert team.status_code == 201 and team.json()["budget_usd_day"] == "2.5"
    assert http.post("/admin/teams", json={"name": "ops"}).status_code == 409
    bad = http.post("/admin/teams", json={"name": "x", "rpm_limit": 3})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "rpm_limit"
    # past what the ledger keeps exactly (picodollars in SQLite's 64-bit integers): a 400
    huge = http.post("/admin/teams", json={"name": "big", "budget_usd_month": "10000000"})
    assert huge.status_code == 400 and huge.json()["error"]["param"] == "budget_usd_month"
    assert http.post("/admin/teams", json={"name": "big", "rpm": 2**31}).status_code == 400
    created = http.post("/admin/keys", json={"team": "ops", "models": ["gpt-4o-mini"]}).json()
    secret = created.pop("key")
    assert http.post("/admin/keys", json={"team": "nope"}).status_code == 400
    listed = http.get("/admin/keys").text
    one = http.get(f"/admin/keys/{created['id']}")
    patched = http.patch(f"/admin/keys/{created['id']}", json={"rpm": 5, "expires_in": "30d"})
    assert patched.json()["rpm"] == 5 and patched.json()["expires_at"]
    revoked = http.delete(f"/admin/keys/{created['id']}")
    assert revoked.json()["status"] == "revoked"
    for answer in (listed, one.text, patched.text, revoked.text, http.get("/admin/teams").text):
        assert secret not in answer and secret[10:] not in answer and "key_hash" not in answer
    assert http.get("/admin/keys/key_nope").status_code == 404
    assert http.delete("/admin/teams/ops").status_code == 409  # it has (revoked) keys
    http.post("/admin/teams", json={"name": "empty"})
    assert http.delete("/admin/teams/empty").status_code == 200
    assert http.get("/admin/teams/empty").status_code == 404
    assert http.patch("/admin/teams/ops", json={"rpm": None}).json()["rpm"] is None


def test_without_a_master_key_auth_is_off_and_start_up_says_so(
    sim: ServerThread,
    sqlite_url: str,
    gateway_factory: GatewayFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from tests.conftest import sim_config

    with caplog.at_level(logging.INFO, logger="gateway"):
        gw = gateway_factory(sim_config(sim.url, sqlite_url))
    off = [r.getMessage() for r in caplog.records if "auth is OFF" in r.getMessage()]
    assert len(off) == 1
    assert httpx.post(f"{gw.url}/v1/chat/completions", json=CHAT).status_code == 200
    admin = httpx.get(f"{gw.url}/admin/keys")
    assert admin.status_code == 403 and "auth is off" in admin.json()["error"]["message"].lower()
