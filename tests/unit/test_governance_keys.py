"""Virtual keys: format, keyed hashing, display, the hashing secret's derivation; and the
pure pieces of admission (maximum cost, windows, durations)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from gateway.core import ClientRequest, Price, Target
from gateway.governance.keys import (
    KEY_LENGTH,
    KeyHasher,
    display_prefix,
    hash_secret_from,
    key_hash,
    new_key_id,
    new_secret,
    well_formed,
)
from gateway.governance.plan import Window, duration, max_cost, nano
from tests.conftest import sim_config


def test_a_key_is_random_well_formed_and_stored_only_as_a_keyed_hash() -> None:
    a, b = new_secret(), new_secret()
    assert a != b and len(a) == KEY_LENGTH and well_formed(a)
    assert (
        not well_formed(a[:-1]) and not well_formed(a.upper()) and not well_formed("sk-xx-" + a[6:])
    )
    secret = hash_secret_from("master-key-0123456789", None)
    h = key_hash(a, secret)
    assert len(h) == 64 and a not in h
    assert key_hash(a, hash_secret_from("master-key-0123456789", "other-secret-123456")) != h
    assert key_hash(a, hash_secret_from("another-master-key-99", None)) != h
    hasher = KeyHasher(secret)  # the request path's: keyed once, the same hash each time
    assert hasher(a) == h and hasher(a) == h and hasher(b) == key_hash(b, secret) != h
    assert display_prefix(a) == a[:10] + "…"
    assert new_key_id() != new_key_id() and new_key_id().startswith("key_")


def test_the_maximum_cost_is_the_dearest_target_at_the_longest_answer() -> None:
    cfg = sim_config("http://127.0.0.1:1", "sqlite://")
    provider = cfg.providers[0]
    cheap = Target("a", "a", provider, Price.per_mtok(1, 2), cfg.models[0])
    dear = Target("b", "b", provider, Price.per_mtok(3, 10), cfg.models[0])
    req = ClientRequest("chat", {"messages": [], "max_tokens": 100}, "r")

    def about(nanodollars: int, usd: Decimal) -> bool:  # rounded up, by a nanodollar at most
        return nano(usd) <= nanodollars <= nano(usd) + 1

    # 50 prompt tokens: 50 × $3/M + 100 × $10/M
    assert about(max_cost(req, [cheap, dear], 50), Decimal("0.00015") + Decimal("0.001"))
    no_limit = ClientRequest("chat", {"messages": []}, "r")
    assert about(max_cost(no_limit, [cheap], 0), 4096 * Decimal(2) / 1_000_000)
    embeddings = ClientRequest("embeddings", {"input": "x"}, "r")
    assert about(max_cost(embeddings, [dear], 10), Decimal("0.00003"))


def test_windows_are_the_utc_day_and_month() -> None:
    w = Window.at(datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp())
    assert w.day_ends == datetime(2027, 1, 1, tzinfo=UTC) == w.month_ends
    assert w.month_starts == datetime(2026, 12, 1, tzinfo=UTC)
    assert Window.at(datetime(2027, 1, 1, tzinfo=UTC).timestamp()).month == w.month + 1
    assert [duration(x) for x in (20, 1500, 60_500, 360_000)] == ["20ms", "1.5s", "1m0.5s", "6m0s"]
