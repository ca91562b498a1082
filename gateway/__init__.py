"""LLM cost and latency gateway. Importing the package does nothing but expose the version."""

__version__ = "0.1.0"
