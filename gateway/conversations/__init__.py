"""Stored conversations: the Responses API's `store: true` responses (`store.py`)."""
