import pytest

from gateway.errors import InvalidRequest
from gateway.protocol.openai import parse_request


def test_unknown_fields_pass_through_untouched() -> None:
    r = parse_request(
        "chat",
        b'{"model":"m","messages":[{"role":"user","content":"x"}],'
        b'"vendor_thing":{"a":1},"stream":true,'
        b'"stream_options":{"include_usage":true}}',
    )
    assert r.body["vendor_thing"] == {"a": 1}
    assert r.stream and r.include_usage and r.model == "m"


@pytest.mark.parametrize(
    "raw, param, text",
    [
        (b'{"model":"m"}', "messages", "Missing required parameter: `messages`"),
        (b'{"messages":[{"role":"user"}]}', "model", "Missing required parameter: `model`"),
        (b'{"model":"m","messages":[]}', "messages", "at least 1"),
        (b'{"model":"m","messages":"hi"}', "messages", "`messages`"),
        (b'{"model":"m","messages":[{"content":"x"}]}', "messages", "`messages[0].role`"),
        (
            b'{"model":"m","messages":[{"role":"user"}],"temperature":"hot"}',
            "temperature",
            "`temperature`",
        ),
        (
            b'{"model":"m","messages":[{"role":"user"}],"max_tokens":"5"}',
            "max_tokens",
            "`max_tokens`",
        ),
        (b'{"model":"m","messages":[{"role":"user"}],"stream":"yes"}', "stream", "`stream`"),
        (b'{"model":5,"messages":[{"role":"user"}]}', "model", "`model`"),
        (
            b'{"model":"m","messages":[{"role":"user"}],"stream_options":{"include_usage":true}}',
            "stream_options",
            "only allowed when `stream` is true",
        ),
    ],
)
def test_bad_fields_name_the_parameter(raw: bytes, param: str, text: str) -> None:
    with pytest.raises(InvalidRequest) as e:
        parse_request("chat", raw)
    assert e.value.param == param
    assert text in e.value.message
    assert e.value.status_code == 400


@pytest.mark.parametrize("raw", [b"{bad", b"[1,2]", b""])
def test_not_a_json_object(raw: bytes) -> None:
    with pytest.raises(InvalidRequest):
        parse_request("chat", raw)


def test_embeddings_and_completions_validate_their_own_fields() -> None:
    assert parse_request("embeddings", b'{"model":"e","input":["a","b"]}').model == "e"
    with pytest.raises(InvalidRequest, match="`input`"):
        parse_request("embeddings", b'{"model":"e"}')
    with pytest.raises(InvalidRequest, match="`prompt`"):
        parse_request("completions", b'{"model":"c"}')
