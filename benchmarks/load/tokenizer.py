"""Tokenizers for building prompts of an exact token count, found offline.

`load_tokenizer(spec)`:
- `auto` (default) — tiktoken's `cl100k_base`. This machine has no network, and tiktoken fetches
  its BPE files on first use; but litellm (a dependency, for its price table) ships the same
  files under `litellm/litellm_core_utils/tokenizers/`, named as tiktoken's cache names them
  (the SHA-1 of the download URL). We check each file's SHA-256 against the hash tiktoken
  itself expects, then load it from there — litellm is never imported. cl100k_base is exact for
  the GPT-4 family and a close proxy for Llama 3.x, whose 128k vocabulary starts from tiktoken's
  100k (Meta's Llama 3 model card); pass the model's own `tokenizer.json` for exact counts.
- `cl100k_base`, `o200k_base` (GPT-4o family) — the same, by name.
- a path to a Hugging Face `tokenizer.json` (or a folder holding one): loaded with the
  `tokenizers` package (also a litellm dependency), e.g. the one `huggingface-cli download
  meta-llama/Llama-3.1-8B-Instruct` puts on the GPU machine.
- `chars4` — no tokenizer at all: 1 token per 4 characters, the simulator's own rule. The
  fallback when nothing else loads; reports say so (`exact: false`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Callable
from pathlib import Path

# SHA-256 of the BPE files, as tiktoken_ext.openai_public pins them
_TIKTOKEN_FILES = {
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}
_TIKTOKEN_URL = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"


class TokenizerUnavailable(Exception):
    pass


class Tokenizer:
    """Counts tokens and cuts text to a token count; `exact` is False for the chars/4 rule."""

    def __init__(
        self,
        name: str,
        encode: Callable[[str], list[int]],
        decode: Callable[[list[int]], str],
        exact: bool = True,
    ) -> None:
        self.name, self.exact = name, exact
        self._encode, self._decode = encode, decode

    def count(self, text: str) -> int:
        return len(self._encode(text))

    def take(self, text: str, n: int) -> str:
        """The first `n` tokens of `text`, as a string that re-encodes to `n` tokens if it can."""
        ids = self._encode(text)
        if len(ids) < n:
            raise ValueError(f"text has {len(ids)} tokens, {n} wanted")
        cut = n
        out = self._decode(ids[:cut])
        for _ in range(4):  # a cut inside a merge can re-encode to ±1 token: nudge the cut
            got = self.count(out)
            if got == n:
                break
            cut = max(cut + n - got, 0)
            out = self._decode(ids[:cut])
        return out


class Chars4(Tokenizer):
    """No tokenizer: ceil(characters / 4) tokens, the simulator's own counting rule."""

    def __init__(self) -> None:
        super().__init__("chars4", lambda t: [], lambda ids: "", exact=False)

    def count(self, text: str) -> int:
        return (len(text) + 3) // 4

    def take(self, text: str, n: int) -> str:
        if self.count(text) < n:
            raise ValueError(f"text has {self.count(text)} tokens, {n} wanted")
        return text[: 4 * n]


def litellm_tokenizer_dir() -> Path | None:
    spec = importlib.util.find_spec("litellm")  # locates the package without executing it
    if spec is None or not spec.submodule_search_locations:
        return None
    d = Path(next(iter(spec.submodule_search_locations))) / "litellm_core_utils" / "tokenizers"
    return d if d.is_dir() else None


def _bpe_file(name: str) -> Path | None:
    """A verified local copy of tiktoken's BPE file `name`: tiktoken's cache, then litellm's."""
    cache_key = hashlib.sha1(_TIKTOKEN_URL.format(name).encode()).hexdigest()
    dirs = [os.environ.get("TIKTOKEN_CACHE_DIR"), os.environ.get("DATA_GYM_CACHE_DIR")]
    lib = litellm_tokenizer_dir()
    candidates = [Path(d) / cache_key for d in dirs if d] + ([lib / cache_key] if lib else [])
    for path in candidates:
        if (
            path.is_file()
            and hashlib.sha256(path.read_bytes()).hexdigest() == _TIKTOKEN_FILES[name]
        ):
            return path
    return None


def _tiktoken(name: str) -> Tokenizer:
    import tiktoken

    path = _bpe_file(name)
    if path is None:
        raise TokenizerUnavailable(f"no local copy of tiktoken's {name} BPE file")
    # tiktoken reads its cache directory from the environment when the encoding is first built;
    # point it at the verified file's folder for that call only (litellm does the same, for good)
    saved = os.environ.get("TIKTOKEN_CACHE_DIR")
    os.environ["TIKTOKEN_CACHE_DIR"] = str(path.parent)
    try:
        enc = tiktoken.get_encoding(name)
    finally:
        if saved is None:
            del os.environ["TIKTOKEN_CACHE_DIR"]
        else:
            os.environ["TIKTOKEN_CACHE_DIR"] = saved
    return Tokenizer(name, enc.encode_ordinary, enc.decode)


def _hf(path: Path) -> Tokenizer:
    try:
        from tokenizers import Tokenizer as HFTokenizer
    except ImportError as exc:
        raise TokenizerUnavailable("the `tokenizers` package is not installed") from exc
    file = path / "tokenizer.json" if path.is_dir() else path
    if not file.is_file():
        raise TokenizerUnavailable(f"{file} does not exist")
    tok = HFTokenizer.from_file(str(file))

    def encode(text: str) -> list[int]:
        return list(tok.encode(text, add_special_tokens=False).ids)

    def decode(ids: list[int]) -> str:
        return str(tok.decode(ids))

    return Tokenizer(f"hf:{file}", encode, decode)


def load_tokenizer(spec: str = "auto") -> Tokenizer:
    """See the module docstring. `auto` never fails: it falls back to `chars4`."""
    if spec == "chars4":
        return Chars4()
    if spec == "auto":
        try:
            return _tiktoken("cl100k_base")
        except (TokenizerUnavailable, ImportError):
            return Chars4()
    if spec in _TIKTOKEN_FILES:
        return _tiktoken(spec)
    return _hf(Path(spec))
