"""An OpenAI chat request body → a Gemini `GenerateContentRequest` body — pure.

Field by field (Gemini: https://ai.google.dev/api/generate-content#request-body; OpenAI:
https://platform.openai.com/docs/api-reference/chat/create):

- system / developer messages → `systemInstruction.parts` (in order, wherever they stand);
  user → role `user`; assistant → role `model` (text, then one `functionCall` part per
  tool call); tool → a `functionResponse` part in a `user` turn. Gemini needs the function
  *name* of a response, which OpenAI only puts on the assistant turn that made the call: it is
  recovered from the tool_call with that id. Consecutive turns of one role are merged, so
  parallel calls and their responses each travel as one turn (Gemini's function-calling guide).
- images and audio as `data:` URLs → `inlineData`; any other URL → `fileData.fileUri` (what
  Gemini accepts there are Files API URIs; it answers anything else with its own 400).
- temperature, top_p → topP, max_completion_tokens / max_tokens → maxOutputTokens, stop →
  stopSequences, n → candidateCount, seed, presence/frequency penalties; response_format
  json_object → responseMimeType application/json, json_schema → also responseSchema.
- tools → one `functionDeclarations` tool; tool_choice auto/none/required/named →
  `toolConfig.functionCallingConfig` AUTO/NONE/ANY/ANY + allowedFunctionNames.
- reasoning_effort and Google's own OpenAI-compatibility extension `extra_body.google`
  (`thinking_config`, `cached_content`, `safety_settings`:
  https://ai.google.dev/gemini-api/docs/openai#extra-body) → thinkingConfig, cachedContent,
  safetySettings. OpenAI fields Gemini has no counterpart for (user, logprobs, …) are dropped.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Mapping
from typing import Any

import orjson

from gateway.errors import InvalidRequest, echo
from gateway.providers.gemini_schema import to_gemini_schema

Part = dict[str, Any]

# Google's OpenAI-compatibility mapping of reasoning_effort to a thinking budget in tokens
# (https://ai.google.dev/gemini-api/docs/openai#thinking).
THINKING_BUDGETS = {"none": 0, "low": 1024, "medium": 8192, "high": 24576}
_TOOL_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}
# A tool call's Gemini thought signature rides along as Google's compatibility layer carries
# it (tool_call.extra_content.google.thought_signature); Gemini 3 refuses a replayed call
# without it.
_SIGNATURE = "thought_signature"


def to_gemini(body: Mapping[str, Any]) -> dict[str, Any]:
    """Raises InvalidRequest (naming the field) for what cannot be translated."""
    system, contents = _contents(body.get("messages") or [])
    out: dict[str, Any] = {"contents": contents}
    if system:
        out["systemInstruction"] = {"parts": system}
    tools = _tools(body.get("tools"))
    if tools:
        out["tools"] = tools
    tool_config = _tool_config(body.get("tool_choice"))
    if tool_config:
        out["toolConfig"] = tool_config
    config = _generation_config(body)
    google = _google_extension(body)
    if "thinking_config" in google:
        config["thinkingConfig"] = _camel_keys(google["thinking_config"])
    if google.get("cached_content"):
        out["cachedContent"] = google["cached_content"]
    if google.get("safety_settings"):
        out["safetySettings"] = [_camel_keys(s) for s in google["safety_settings"]]
    if config:
        out["generationConfig"] = config
    return out


# --- messages ------------------------------------------------------------------------------


def _contents(messages: list[Any]) -> tuple[list[Part], list[dict[str, Any]]]:
    system: list[Part] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool_call id → function name, from earlier assistant turns
    for i, m in enumerate(messages):
        role, where = m.get("role"), f"messages[{i}]"
        if role in ("system", "developer"):
            system.extend({"text": t} for t in _texts(m.get("content"), where))
        elif role == "user":
            _append(contents, "user", _user_parts(m.get("content"), where))
        elif role == "assistant":
            _append(contents, "model", _assistant_parts(m, names, where))
        elif role in ("tool", "function"):
            _append(contents, "user", [_function_response(m, names, where)])
        else:
            raise InvalidRequest(
                f"`{where}.role` must be system, developer, user, assistant or tool, "
                f"not {echo(role)}.",
                param="messages",
            )
    return system, contents


def _append(contents: list[dict[str, Any]], role: str, parts: list[Part]) -> None:
    if not parts:
        return  # Gemini refuses a turn without parts (an assistant turn with no content)
    if contents and contents[-1]["role"] == role:
        contents[-1]["parts"].extend(parts)
    else:
        contents.append({"role": role, "parts": parts})


def _texts(content: Any, where: str) -> list[str]:
    if content is None:
        return []
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        out = []
        for j, p in enumerate(content):
            if not isinstance(p, Mapping) or p.get("type") not in ("text", "refusal"):
                raise InvalidRequest(
                    f"`{where}.content[{j}]` must be a text part here.", param="messages"
                )
            out.append(str(p.get("text") or p.get("refusal") or ""))
        return out
    raise InvalidRequest(
        f"`{where}.content` must be a string or a list of parts.", param="messages"
    )


def _user_parts(content: Any, where: str) -> list[Part]:
    if not isinstance(content, list):
        return [{"text": t} for t in _texts(content, where)]
    parts: list[Part] = []
    for j, p in enumerate(content):
        kind = p.get("type") if isinstance(p, Mapping) else None
        if kind == "text":
            parts.append({"text": str(p.get("text") or "")})
        elif kind == "image_url":
            image = p.get("image_url")
            url = image.get("url") if isinstance(image, Mapping) else image
            parts.append(_media(str(url or ""), f"{where}.content[{j}]"))
        elif kind == "input_audio":
            audio = p.get("input_audio") or {}
            parts.append(
                {
                    "inlineData": {
                        "mimeType": f"audio/{audio.get('format', 'wav')}",
                        "data": str(audio.get("data") or ""),
                    }
                }
            )
        elif kind == "file":
            file = p.get("file") or {}
            parts.append(
                _media(
                    str(file.get("file_data") or file.get("file_id") or ""), f"{where}.content[{j}]"
                )
            )
        else:
            raise InvalidRequest(
                f"`{where}.content[{j}].type` {echo(kind)} cannot be sent to a Gemini model.",
                param="messages",
            )
    return parts


def _media(url: str, where: str) -> Part:
    if url.startswith("data:"):
        header, sep, data = url[5:].partition(",")
        mime, _, encoding = header.partition(";")
        if not sep or encoding != "base64":
            raise InvalidRequest(
                f"`{where}`: a data: URL must be base64 (data:<mime>;base64,<data>).",
                param="messages",
            )
        return {"inlineData": {"mimeType": mime or "application/octet-stream", "data": data}}
    if not url:
        raise InvalidRequest(f"`{where}` has no URL.", param="messages")
    mime = mimetypes.guess_type(url)[0] or "image/jpeg"
    return {"fileData": {"mimeType": mime, "fileUri": url}}


def _assistant_parts(m: Mapping[str, Any], names: dict[str, str], where: str) -> list[Part]:
    parts: list[Part] = [{"text": t} for t in _texts(m.get("content"), where) if t]
    for j, call in enumerate(m.get("tool_calls") or []):
        fn = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str):
            raise InvalidRequest(
                f"`{where}.tool_calls[{j}]` needs function.name.", param="messages"
            )
        args = _json_object(fn.get("arguments"), f"{where}.tool_calls[{j}].function.arguments")
        part: Part = {"functionCall": {"name": fn["name"], "args": args}}
        google = (call.get("extra_content") or {}).get("google") or {}
        if isinstance(google, Mapping) and google.get(_SIGNATURE):
            part["thoughtSignature"] = google[_SIGNATURE]
        parts.append(part)
        if isinstance(call.get("id"), str):
            names[call["id"]] = fn["name"]
    return parts


def _json_object(raw: Any, where: str) -> dict[str, Any]:
    if raw is None or raw == "":
        return {}
    try:
        value = orjson.loads(raw) if isinstance(raw, str | bytes) else raw
    except orjson.JSONDecodeError:
        raise InvalidRequest(f"`{where}` is not valid JSON.", param="messages") from None
    if not isinstance(value, dict):
        raise InvalidRequest(f"`{where}` must be a JSON object.", param="messages")
    return value


def _function_response(m: Mapping[str, Any], names: dict[str, str], where: str) -> Part:
    call_id = m.get("tool_call_id")
    name = names.get(call_id) if isinstance(call_id, str) else None
    name = name or m.get("name")  # legacy `function` messages carry the name themselves
    if not isinstance(name, str):
        raise InvalidRequest(
            f"`{where}.tool_call_id` {echo(call_id)} matches no tool call of an "
            "earlier assistant message (Gemini needs the function's name).",
            param="messages",
        )
    text = "".join(_texts(m.get("content"), where))
    try:
        value: Any = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = text
    # FunctionResponse.response must be an object; "output" is the key Gemini reads as the
    # function's result when the result is not itself an object (google-genai FunctionResponse).
    return {
        "functionResponse": {
            "name": name,
            "response": value if isinstance(value, dict) else {"output": value},
        }
    }


# --- generation config, tools --------------------------------------------------------------

_DIRECT = (
    ("temperature", "temperature"),
    ("top_p", "topP"),
    ("top_k", "topK"),
    ("seed", "seed"),
    ("presence_penalty", "presencePenalty"),
    ("frequency_penalty", "frequencyPenalty"),
    ("n", "candidateCount"),
)


def _generation_config(body: Mapping[str, Any]) -> dict[str, Any]:
    config = {g: body[o] for o, g in _DIRECT if body.get(o) is not None}
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if limit is not None:
        config["maxOutputTokens"] = limit
    stop = body.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    fmt = body.get("response_format")
    if isinstance(fmt, Mapping) and fmt.get("type") in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
        spec = fmt.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, Mapping) else None
        if isinstance(schema, Mapping):
            config["responseSchema"] = to_gemini_schema(schema)
    effort = body.get("reasoning_effort")
    if effort is not None:
        if not isinstance(effort, str) or effort not in THINKING_BUDGETS:
            raise InvalidRequest(
                f"`reasoning_effort` must be one of "
                f"{', '.join(THINKING_BUDGETS)} for a Gemini model.",
                param="reasoning_effort",
            )
        config["thinkingConfig"] = {"thinkingBudget": THINKING_BUDGETS[effort]}
    return config


def _tools(tools: Any) -> list[dict[str, Any]]:
    declarations = []
    for j, tool in enumerate(tools or []):
        fn = tool.get("function") if isinstance(tool, Mapping) else None
        if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str):
            raise InvalidRequest(
                f"`tools[{j}]` must be {{type: function, function: {{name, "
                "...}}}} for a Gemini model.",
                param="tools",
            )
        decl: dict[str, Any] = {"name": fn["name"]}
        if fn.get("description"):
            decl["description"] = fn["description"]
        params = fn.get("parameters")
        # Gemini refuses an OBJECT schema without properties: a function without arguments
        # is declared without `parameters`.
        if isinstance(params, Mapping) and params.get("properties"):
            decl["parameters"] = to_gemini_schema(params)
        declarations.append(decl)
    return [{"functionDeclarations": declarations}] if declarations else []


def _tool_config(choice: Any) -> dict[str, Any] | None:
    if choice is None:
        return None
    if isinstance(choice, str) and choice in _TOOL_MODES:
        return {"functionCallingConfig": {"mode": _TOOL_MODES[choice]}}
    fn = choice.get("function") if isinstance(choice, Mapping) else None
    if isinstance(fn, Mapping) and isinstance(fn.get("name"), str):
        return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [fn["name"]]}}
    raise InvalidRequest(
        "`tool_choice` must be auto, none, required or {type: function, function: {name}}.",
        param="tool_choice",
    )


def _google_extension(body: Mapping[str, Any]) -> dict[str, Any]:
    extra = body.get("extra_body")
    google = extra.get("google") if isinstance(extra, Mapping) else None
    return dict(google) if isinstance(google, Mapping) else {}


def _camel_keys(value: Any) -> Any:
    """thinking_budget → thinkingBudget: the SDK-style spelling Google's guide shows."""
    if not isinstance(value, Mapping):
        return value
    out = {}
    for key, v in value.items():
        head, *rest = str(key).split("_")
        out[head + "".join(w.capitalize() for w in rest)] = v
    return out
