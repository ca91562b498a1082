"""LLM cost and latency gateway. Importing the package does nothing but expose the version."""

from __future__ import annotations


def __getattr__(name: str) -> str:
    # looked up on first use (`gateway --version`): importlib.metadata and the scan of the
    # installed distributions cost ~4% of every start, which never reads it
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("llm-cost-gateway")  # pyproject.toml is the one place it is written
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"
