"""Responses input items → OpenAI chat messages (pure), for models reached through chat.

Items (openai-python `types/responses/response_input_item_param.py`):
- `message` (or an easy message without `type`): role user / system / developer / assistant,
  content a string or parts — `input_text`, `input_image` (`image_url`; `file_id` needs
  OpenAI's Files API and is refused), assistant `output_text` / `refusal`. `developer` becomes
  `system`, which every upstream understands.
- `function_call` → an assistant message's `tool_calls` (consecutive calls share one message,
  as chat expects); `function_call_output` → a `tool` message.
- `reasoning` items are dropped: their content is the provider's own (often encrypted) and
  no chat upstream reads it. So are the records of hosted tool calls (`web_search_call`,
  `computer_call`, …): the model's answer after them already says what they found.
Anything else is a 400 naming the item.
"""

from __future__ import annotations

from typing import Any

from gateway.errors import InvalidRequest

ROLES = {"user": "user", "system": "system", "developer": "system", "assistant": "assistant"}
TEXT_PARTS = frozenset({"input_text", "output_text", "text", "summary_text"})
# Records of tools the provider ran (or a client ran for it): history, not something to resend.
SKIPPED_ITEMS = frozenset(
    {
        "reasoning",
        "compaction",
        "web_search_call",
        "file_search_call",
        "computer_call",
        "computer_call_output",
        "code_interpreter_call",
        "image_generation_call",
        "local_shell_call",
        "local_shell_call_output",
        "shell_call",
        "shell_call_output",
        "apply_patch_call",
        "apply_patch_call_output",
        "custom_tool_call",
        "custom_tool_call_output",
        "tool_search_call",
        "tool_search_output",
        "mcp_list_tools",
        "mcp_call",
        "mcp_approval_request",
        "mcp_approval_response",
    }
)


def as_items(value: Any) -> list[dict[str, Any]]:
    """`input` as items: a string is one user message."""
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    return list(value or ())


def _part(part: Any, where: str) -> dict[str, Any]:
    if not isinstance(part, dict):
        raise InvalidRequest(f"`{where}` must be an object.", param=where)
    kind = part.get("type")
    if kind in TEXT_PARTS:
        text = part.get("text")
        if not isinstance(text, str):
            raise InvalidRequest(f"`{where}.text` must be a string.", param=f"{where}.text")
        return {"type": "text", "text": text}
    if kind == "refusal":
        return {"type": "text", "text": str(part.get("refusal") or "")}
    if kind == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str) or not url:
            raise InvalidRequest(
                f"`{where}`: only images given by `image_url` (an http(s) or data: URL) can be "
                "sent through this gateway; `file_id` needs OpenAI's Files API.",
                param=f"{where}.image_url",
            )
        image: dict[str, Any] = {"url": url}
        if isinstance(part.get("detail"), str):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    raise InvalidRequest(
        f"`{where}.type` {kind!r} is not supported (input_text, input_image, output_text and "
        "refusal are).",
        param=f"{where}.type",
    )


def _content(content: Any, where: str) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidRequest(f"`{where}` must be a string or a list of parts.", param=where)
    parts = [_part(p, f"{where}[{i}]") for i, p in enumerate(content)]
    if all(p["type"] == "text" for p in parts):
        return "".join(p["text"] for p in parts)  # the form every upstream takes
    return parts


def _message(item: dict[str, Any], where: str) -> dict[str, Any]:
    role = ROLES.get(item.get("role"))  # type: ignore[arg-type]
    if role is None:
        raise InvalidRequest(
            f"`{where}.role` must be user, assistant, system or developer.", param=f"{where}.role"
        )
    content = _content(item.get("content"), f"{where}.content")
    if role != "user" and not isinstance(content, str):
        raise InvalidRequest(
            f"`{where}.content`: only a user message can carry images.", param=f"{where}.content"
        )
    return {"role": role, "content": content}


def _output_text(output: Any, where: str) -> str:
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        return "".join(
            str(p.get("text") or "") for p in output if isinstance(p, dict) and "text" in p
        )
    raise InvalidRequest(f"`{where}.output` must be a string or a list of parts.", param=where)


def _string(item: dict[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str):
        raise InvalidRequest(f"`{where}.{key}` must be a string.", param=f"{where}.{key}")
    return value


def to_messages(items: list[Any], where: str = "input") -> list[dict[str, Any]]:
    """Items in order → chat messages in order (`where` names the list in errors)."""
    out: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        at = f"{where}[{i}]"
        if not isinstance(item, dict):
            raise InvalidRequest(f"`{at}` must be an object.", param=at)
        kind = item.get("type", "message" if "role" in item else None)
        if kind == "message":
            out.append(_message(item, at))
        elif kind == "function_call":
            call = {
                "id": _string(item, "call_id", at),
                "type": "function",
                "function": {
                    "name": _string(item, "name", at),
                    "arguments": _string(item, "arguments", at),
                },
            }
            last = out[-1] if out else None
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
                if not last["content"]:
                    last["content"] = None
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            out.append(
                {
                    "role": "tool",
                    "tool_call_id": _string(item, "call_id", at),
                    "content": _output_text(item.get("output"), at),
                }
            )
        elif kind in SKIPPED_ITEMS:
            continue
        else:
            raise InvalidRequest(
                f"`{at}.type` {kind!r} is not supported through this gateway (message, "
                "function_call and function_call_output are).",
                param=f"{at}.type",
            )
    return out
