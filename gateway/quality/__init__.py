"""Quality evidence: which task a request is, how a model's answers agree with a reference
model's on it, and the shadow sampling that gathers the pairs.

- `tasks.py`       a request's task name (header, `metadata.task`, configured system prompt
                   hash, else a hash of its system prompt) — pure
- `intervals.py`   Wilson and bootstrap 95% intervals — pure
- `compare.py`     the comparators: label, json_fields, tool_call, text — pure
- `answers.py`     an answer's text and tool calls, from a `Result` or a stream's chunks — pure
- `evidence.py`    in-memory agreement per task × model, read by the router on the hot path
- `store.py`       the `quality_pairs` table's rows: insert, load, report queries
- `shadow.py`      sampling, caps and the background shadow calls

It may import config, core, errors, ledger, metrics and pricing; never routing or serving
(routing reads `Evidence`, serving hands `Shadow` its samples).
"""
