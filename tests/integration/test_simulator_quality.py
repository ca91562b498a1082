"""The simulator's answer quality over the wire, with the official SDKs: a task named by header,
by `metadata.task` or by its system prompt's hash gets the table's answers on the OpenAI,
Anthropic and Gemini endpoints, and `/sim/quality` changes the rates live."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import replace

import anthropic
import httpx
import openai
import orjson
import pytest

from gateway.simulator.app import create_app
from gateway.simulator.profiles import PROFILES
from gateway.simulator.quality import DEFAULT_QUALITY, Quality, SimTask
from tests.support import ServerThread

SYSTEM = "You label customer support tickets with one word."
DIGEST = hashlib.sha256(SYSTEM.encode()).hexdigest()
QUALITY = DEFAULT_QUALITY.merged(
    Quality(
        {"tickets": SimTask("tickets", "label", system_prompt_sha256=(DIGEST[:16],))},
        {"llama-3.1-8b-h100": {"tickets": 0.5}, "gpt-4o-mini": {"tickets": 1.0}},
    )
)
N = 120
# every stock profile without its delays: the names (hence the rates) stay, the waiting goes
INSTANT = {
    name: replace(
        p,
        ttft_base_s=0.0,
        prefill_s_per_token=0.0,
        ttft_s_per_running=0.0,
        tpot_base_s=0.0,
        decode_ceiling_tok_s=0.0,
    )
    for name, p in PROFILES.items()
}


@pytest.fixture(scope="module")
def sim_url() -> Iterator[str]:
    server = ServerThread(create_app("instant", profiles=INSTANT, quality=QUALITY, seed=5)).start()
    yield server.url
    server.stop()


def _openai(url: str, profile: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/{profile}/v1", api_key="sk-test", max_retries=0)


def _label(client: openai.OpenAI, i: int) -> str:
    r = client.chat.completions.create(
        model="m",
        messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": f"#{i}"}],
        max_tokens=1,
    )
    return (r.choices[0].message.content or "").strip()


def test_the_system_prompt_hash_names_the_task_and_rates_hold(sim_url: str) -> None:
    local, ref = _openai(sim_url, "llama-3.1-8b-h100"), _openai(sim_url, "claude-haiku")
    mini = _openai(sim_url, "gpt-4o-mini")
    labels = set(QUALITY.tasks["tickets"].labels)
    agree = 0
    for i in range(N):
        mine, truth = _label(local, i), _label(ref, i)
        assert {mine, truth} <= labels
        assert _label(mini, i) == truth  # rate 1.0
        agree += mine == truth
    assert 0.5 - 0.2 < agree / N < 0.5 + 0.2  # 4.4 sigma of Binomial(120, 0.5)


def test_the_header_and_metadata_name_the_task(sim_url: str) -> None:
    local = _openai(sim_url, "llama-3.1-8b-h100")
    body = {"model": "m", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 40}
    plain = httpx.post(f"{sim_url}/llama-3.1-8b-h100/v1/chat/completions", json=body).json()
    named = httpx.post(
        f"{sim_url}/llama-3.1-8b-h100/v1/chat/completions",
        json=body,
        headers={"x-gateway-task": "extraction"},
    ).json()
    assert "reply" not in plain["choices"][0]["message"]["content"]
    fields = orjson.loads(named["choices"][0]["message"]["content"])
    assert set(fields) == set(QUALITY.tasks["extraction"].fields)
    assert named["usage"]["completion_tokens"] == 40  # cut answers keep the plan's length
    via_metadata = local.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "hello"}],
        max_tokens=40,
        metadata={"task": "extraction"},
    )
    assert via_metadata.choices[0].message.content == named["choices"][0]["message"]["content"]


def test_anthropic_and_gemini_answer_the_same_truth(sim_url: str) -> None:
    claude = anthropic.Anthropic(
        base_url=f"{sim_url}/claude-haiku", api_key="sk-ant-test", max_retries=0
    )
    ref = _openai(sim_url, "gpt-4o-mini")  # rate 1.0: the truth
    for i in range(10):
        m = claude.messages.create(
            model="claude-haiku-4-5",
            system=SYSTEM,
            messages=[{"role": "user", "content": f"#{i}"}],
            max_tokens=1,
        )
        block = m.content[0]
        assert block.type == "text" and block.text == _label(ref, i)
        g = httpx.post(
            f"{sim_url}/gemini-flash/v1beta/models/gemini-2.5-flash:generateContent",
            headers={"x-goog-api-key": "k"},
            json={
                "systemInstruction": {"parts": [{"text": SYSTEM}]},
                "contents": [{"role": "user", "parts": [{"text": f"#{i}"}]}],
                "generationConfig": {"maxOutputTokens": 1},
            },
        ).json()
        text = g["candidates"][0]["content"]["parts"][0]["text"]
        assert text.strip() in QUALITY.tasks["tickets"].labels


def test_sim_quality_changes_rates_live_and_reset_restores_them(sim_url: str) -> None:
    local, ref = _openai(sim_url, "llama-3.1-8b-h100"), _openai(sim_url, "claude-haiku")
    bad = httpx.post(f"{sim_url}/sim/quality", json={"agreement": {"x": {"tickets": 2}}})
    assert bad.status_code == 400 and "agreement.x.tickets" in bad.text
    r = httpx.post(
        f"{sim_url}/sim/quality", json={"agreement": {"llama-3.1-8b-h100": {"tickets": 0.0}}}
    )
    assert r.status_code == 200 and r.json()["agreement"]["llama-3.1-8b-h100"]["tickets"] == 0.0
    assert all(_label(local, i) != _label(ref, i) for i in range(20))
    httpx.post(f"{sim_url}/sim/reset", json={"seed": 5})
    shown = httpx.get(f"{sim_url}/sim/quality").json()
    assert shown["agreement"]["llama-3.1-8b-h100"]["tickets"] == 0.5
