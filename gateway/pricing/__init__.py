"""Prices and cost math. `cost.py` is pure; `table.py` loads prices once at startup."""
