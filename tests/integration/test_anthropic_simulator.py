"""The simulator's `/v1/messages` as a real server, driven by the official anthropic SDK (which
parses every answer and event into its own types), plus its refusals, faults and caching."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import pytest

from tests.support import ServerThread

KEY = "sk-ant-sim-secret"
HELLO: list[anthropic.types.MessageParam] = [{"role": "user", "content": "Hello simulator"}]
WEATHER: anthropic.types.ToolParam = {
    "name": "get_weather",
    "description": "Weather in a city",
    "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}},
}


def _error_type(e: anthropic.APIStatusError) -> object:
    """`type` of Anthropic's error envelope, which the SDK keeps as `body` (typed `object`)."""
    body = e.body
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), body
    return body["error"].get("type")


def blocks(content: list[Any]) -> list[dict[str, Any]]:
    """Content blocks comparable across answers (ids differ) and Message vs ParsedMessage."""
    return [b.model_dump(exclude={"parsed_output", "id"}) for b in content]


def claude(sim: ServerThread, prefix: str = "") -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=sim.url + prefix, api_key=KEY, max_retries=0)


@pytest.mark.parametrize("prefix", ["", "/instant"])
def test_message_and_stream_agree(sim: ServerThread, prefix: str) -> None:
    c = claude(sim, prefix)
    whole = c.messages.create(model="claude-3-5-haiku-20241022", max_tokens=64, messages=HELLO)
    assert whole.model == "claude-3-5-haiku-20241022" and whole.stop_reason == "end_turn"
    assert whole.id.startswith("msg_") and whole.usage.output_tokens > 0
    with c.messages.stream(
        model="claude-3-5-haiku-20241022", max_tokens=64, messages=HELLO
    ) as stream:
        kinds = [ev.type for ev in stream]
        final = stream.get_final_message()
    assert (
        blocks(final.content) == blocks(whole.content)
        and final.usage.output_tokens == whole.usage.output_tokens
    )
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"


def test_tool_use_round_trip(sim: ServerThread) -> None:
    c = claude(sim)
    ask: list[anthropic.types.MessageParam] = [{"role": "user", "content": "Weather in Paris?"}]
    first = c.messages.create(model="claude", max_tokens=64, messages=ask, tools=[WEATHER])
    assert first.stop_reason == "tool_use"
    call = next(b for b in first.content if b.type == "tool_use")
    assert call.name == "get_weather" and call.input == {"location": "Paris"}
    with c.messages.stream(model="claude", max_tokens=64, messages=ask, tools=[WEATHER]) as s:
        assert blocks(s.get_final_message().content) == blocks(first.content)
    answer = c.messages.create(
        model="claude",
        max_tokens=64,
        tools=[WEATHER],
        messages=[
            *ask,
            {"role": "assistant", "content": first.content},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "18°C"}],
            },
        ],
    )
    assert answer.stop_reason == "end_turn" and answer.content[0].type == "text"


def test_prompt_caching_reports_creation_then_read(sim: ServerThread) -> None:
    system: list[anthropic.types.TextBlockParam] = [
        {"type": "text", "text": "You know a lot. " * 400, "cache_control": {"type": "ephemeral"}}
    ]
    c = claude(sim)
    first = c.messages.create(model="claude", max_tokens=8, system=system, messages=HELLO)
    second = c.messages.create(model="claude", max_tokens=8, system=system, messages=HELLO)
    assert (
        first.usage.cache_creation_input_tokens and first.usage.cache_creation_input_tokens > 1024
    )
    assert first.usage.cache_read_input_tokens == 0
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
    assert second.usage.cache_creation_input_tokens == 0
    assert second.usage.input_tokens == first.usage.input_tokens


def test_refusals_are_anthropic_shaped(sim: ServerThread) -> None:
    url = f"{sim.url}/v1/messages"
    body = {"model": "claude", "max_tokens": 5, "messages": HELLO}
    no_key = httpx.post(url, json=body, headers={"anthropic-version": "2023-06-01"})
    assert no_key.status_code == 401
    assert no_key.json()["error"]["type"] == "authentication_error" and no_key.headers["request-id"]
    no_version = httpx.post(url, json=body, headers={"x-api-key": KEY})
    assert no_version.status_code == 400 and "anthropic-version" in no_version.text
    with pytest.raises(anthropic.BadRequestError) as e:
        claude(sim).messages.create(
            model="claude", max_tokens=5, messages=HELLO, extra_body={"n": 2}
        )
    assert "n: Extra inputs are not permitted" in str(e.value)
    assert KEY not in no_key.text + no_version.text + str(e.value)


def test_faults_status_retry_after_and_mid_stream_error(sim: ServerThread) -> None:
    httpx.post(
        f"{sim.url}/sim/faults", json={"upstream": "", "status": 529, "retry_after": 4, "count": 1}
    )
    with pytest.raises(anthropic.OverloadedError) as e:
        claude(sim).messages.create(model="claude", max_tokens=5, messages=HELLO)
    assert e.value.response.headers["retry-after"] == "4"
    assert _error_type(e.value) == "overloaded_error"
    httpx.post(
        f"{sim.url}/sim/faults",
        json={
            "upstream": "",
            "kind": "stream_error",
            "status": 529,
            "count": 1,
            "drop_after_chunks": 2,
        },
    )
    with (
        pytest.raises(anthropic.APIStatusError) as e2,
        claude(sim).messages.stream(model="claude", max_tokens=20, messages=HELLO) as s,
    ):
        list(s)
    assert "overloaded_error" in str(e2.value)


def test_demo_profile_prefix_serves_messages(sim: ServerThread) -> None:
    """The demo config's api_base (`/claude-haiku`): a hosted-API-like profile (~0.55 s)."""
    m = claude(sim, "/claude-haiku").messages.create(
        model="claude-3-5-haiku-20241022", max_tokens=1, messages=HELLO
    )
    assert m.stop_reason == "max_tokens" and m.usage.output_tokens == 1
    stats = httpx.get(f"{sim.url}/sim/stats").json()["upstreams"]
    assert stats["claude-haiku"]["requests"]["messages"] == 1
