"""LLM cost and latency gateway. Importing the package does nothing but expose the version."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("llm-cost-gateway")  # pyproject.toml is the one place it is written
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
