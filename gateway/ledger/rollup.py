"""The hourly usage rollup: `usage_hourly`, kept exact by the database itself.

PostgreSQL only. One row per UTC hour × endpoint × provider × model (the upstream model) ×
team, with the sums the finance reports need and two histograms (latency and time to first
token) of fixed log-spaced buckets. Reports grouped by these (and by hour, day, week or month
in a whole-hour time zone) read it; others (by key, by route) read the raw rows with the same
sums and buckets (`finance/source.py`), so both give the same answer.

A ledger row is added to its rollup row by a statement-level trigger over the inserting
statement's transition table — one `INSERT … SELECT … GROUP BY … ON CONFLICT DO UPDATE` per
batch, in key order so that two concurrent batches take the rollup rows' locks in the same
order (no deadlock). It is exact under any number of concurrent writers and for every insert
path (the writer's batches, a journal replay, COPY), and a row the insert skips (`ON CONFLICT
(id) DO NOTHING`: a replay) is never counted. The writer's insert is awaited off the event
loop, so the trigger's cost is database time, not the requests' (README: Finance, measured).

SQLite has none: there the ledger writer inserts on the event loop itself, where a row
trigger's upsert would be paid by every request waiting; SQLite ledgers are single-node and
their reports read the raw rows.

A NULL dimension is stored as '' (a unique index treats NULLs as distinct on both databases,
which would break the upsert). Rows are never deleted from `requests`; a deletion would have
to subtract here.

The bucket bounds are part of the schema: changing them needs a migration that rebuilds the
rollup (`backfill_sql`).
"""

from __future__ import annotations

# Upper bounds (ms) of the histogram buckets: 4 per octave from 8 ms to ~262 s, so a
# percentile read from them is within 2^(1/8) ≈ ±9 % of the true one (README: Finance).
BUCKETS_PER_OCTAVE = 4
BOUNDS_MS: tuple[float, ...] = tuple(round(8 * 2 ** (k / BUCKETS_PER_OCTAVE), 3) for k in range(61))
NBUCKETS = len(BOUNDS_MS) + 1  # the last bucket holds everything at or above the top bound

DIMENSIONS: tuple[tuple[str, str], ...] = (
    # rollup column, the requests column it comes from
    ("endpoint", "endpoint"),
    ("provider", "provider"),
    ("model", "upstream_model"),
    ("team", "team"),
)
TOKENS = (
    "prompt_tokens",
    "cached_prompt_tokens",
    "cache_write_tokens",
    "completion_tokens",
    "reasoning_tokens",
)
LATENCY = tuple(f"lat_{i:02d}" for i in range(NBUCKETS))
TTFT = tuple(f"ttft_{i:02d}" for i in range(NBUCKETS))
SUMS = ("requests", "errors", *TOKENS, "cost_usd", *LATENCY, *TTFT)
KEY = ("hour", *(d for d, _ in DIMENSIONS))
TRIGGER = "requests_usage_hourly"
FUNCTION = "usage_hourly_add"


def _bounds_array() -> str:
    return "ARRAY[" + ", ".join(repr(b) for b in BOUNDS_MS) + "]::float8[]"


def _pg_select(source: str) -> str:
    """The rollup rows of the ledger rows in `source`, grouped and in key order.

    The histograms are counted as (group, bucket) pairs and pivoted into their columns per
    group: 124 `count(*) FILTER (…)` aggregates evaluated on every row cost ~10× more (a
    500-row batch's trigger took 50–70 ms that way on this machine, under load)."""
    dims = ", ".join(f"coalesce({src}, '') AS {d}" for d, src in DIMENSIONS)
    key = ", ".join(KEY)
    sums = ", ".join(
        [
            "count(*) AS requests",
            "count(*) FILTER (WHERE status_code >= 400) AS errors",
            *(f"coalesce(sum({t}), 0) AS {t}" for t in TOKENS),
            "coalesce(sum(cost_usd), 0) AS cost_usd",
        ]
    )

    def pivot(alias: str) -> str:
        return ", ".join(
            f"coalesce({alias}.ns[array_position({alias}.bs, {i})], 0)" for i in range(NBUCKETS)
        )

    def counted(bucket: str) -> str:
        # (group, bucket, n) folded into two arrays per group: the buckets present, their counts
        return (
            f"SELECT {key}, array_agg(b) AS bs, array_agg(n) AS ns FROM "
            f"(SELECT {key}, {bucket} AS b, count(*)::int AS n FROM r "
            f"WHERE {bucket} IS NOT NULL GROUP BY {key}, {bucket}) AS c GROUP BY {key}"
        )

    # width_bucket: the number of bounds <= the value, i.e. the bucket's index
    return (
        f"WITH r AS MATERIALIZED (SELECT date_trunc('hour', created_at AT TIME ZONE 'UTC') "
        f"AT TIME ZONE 'UTC' AS hour, {dims}, status_code, "
        f"{', '.join(TOKENS)}, cost_usd, "
        f"width_bucket(latency_ms::float8, {_bounds_array()}) AS lb, "
        f"width_bucket(ttft_ms::float8, {_bounds_array()}) AS tb FROM {source}), "
        f"s AS (SELECT {key}, {sums} FROM r GROUP BY {key}), "
        f"l AS ({counted('lb')}), t AS ({counted('tb')}) "
        f"SELECT {', '.join('s.' + k for k in KEY)}, "
        f"{', '.join('s.' + c for c in ('requests', 'errors', *TOKENS, 'cost_usd'))}, "
        f"{pivot('l')}, {pivot('t')} "
        f"FROM s LEFT JOIN l USING ({key}) LEFT JOIN t USING ({key}) "
        f"ORDER BY {', '.join('s.' + k for k in KEY)}"
    )


def _upsert_tail() -> str:
    sets = ", ".join(f"{c} = usage_hourly.{c} + excluded.{c}" for c in SUMS)
    return f" ON CONFLICT ({', '.join(KEY)}) DO UPDATE SET {sets}"


def _columns() -> str:
    return ", ".join((*KEY, *SUMS))


def postgres_ddl() -> list[str]:
    return [
        f"CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        f"BEGIN\n  INSERT INTO usage_hourly ({_columns()}) {_pg_select('new_rows')}"
        f"{_upsert_tail()};\n  RETURN NULL;\nEND\n$$",
        f"CREATE TRIGGER {TRIGGER} AFTER INSERT ON requests REFERENCING NEW TABLE AS new_rows "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}()",
    ]


def backfill_sql() -> str:
    """Rebuild the rollup from every ledger row (the table must be empty)."""
    return f"INSERT INTO usage_hourly ({_columns()}) {_pg_select('requests')}"


def drop_ddl() -> list[str]:
    return [
        f"DROP TRIGGER IF EXISTS {TRIGGER} ON requests",
        f"DROP FUNCTION IF EXISTS {FUNCTION}()",
    ]
