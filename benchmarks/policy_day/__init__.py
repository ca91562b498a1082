"""The policy day: one synthetic day of traffic, replayed through the real gateway against
the simulator, under three routing policies — all-API, all-local, local-first.

    python -m benchmarks.policy_day run [--policies all-api,all-local,local-first]
        [--hour-s 5] [--peak-factor 2] [--capacity-rps 29.8] [--mix classification=0.6,...]
        [--output-scale 5] [--seed 0] [--hours 0-23] [--peak-s 60] [--drain-s 120]
        [--out bench-results/policy_day]
    python -m benchmarks.policy_day report      # combine the policies' JSON: table, MD, PNG
    python -m benchmarks.policy_day calibrate   # the simulated H100's capacity under the mix
    python -m benchmarks.policy_day decide      # Router.decide microbenchmark

Method. Each policy gets a fresh simulator (`sim.py`: the stock profiles, one token
standing for `output_scale` real ones), a fresh gateway (`gateway serve`,
`config/bench/policy_day.yaml`) and a fresh SQLite ledger, all on 127.0.0.1. One request of
each workload must succeed first (warm-up, not counted). Then the day's schedule
(`traffic.py`: 24 hours, each `hour_s` replay seconds of Poisson arrivals at that
hour's real rate, the same seeded requests for every policy) is sent open-loop as streaming
chat requests; the client measures TTFT; the ledger gives each request's provider, tokens and
cost (joined on `x-request-id`). Once the day has drained, the peak hour's rate is held for
`peak_s` seconds (the *sustained peak*, TTFT only: requests still without a first token a
second past the SLO after the last one are cut off and count as misses). The gateway is
stopped gracefully so the ledger is complete. Each policy takes about `24 × hour_s` + drain +
`peak_s` seconds (~3–3.5 min by default): run them one by one if need be, then `report`.

Policies: `policies.py`. Modules: `cli.py` (the commands), `day.py` (one policy's day),
`combine.py` (the policies side by side), `measure.py` (`calibrate`, `decide`), `client.py`
(the load), `stats.py` and `report.py` (figures and files).

Cost accounting (details in `stats.py`). A replay second stands for a real second at
the same request rates, so each hour's replayed spend, tokens and requests are multiplied by
`3600 / hour_s`; replayed output tokens and their cost by `output_scale`. API requests cost
what the ledger says (published prices, cache reads at the cache-read rate). The GPU is shown
two ways: *rented* — `hourly_usd × count × 24` for the day, busy or idle (the bill: this is
the view the targets use) — and *amortised* — the ledger's price of the local rows at the
GPU's calibrated throughput, i.e. only the share of the GPU the traffic used.

The peak is `--peak-factor` × the GPU's capacity (`calibrate` measures it: req/s at the decode
ceiling under the mix with `max_in_flight` concurrent requests). Compressed time understates
what an overloaded GPU does: a real peak hour piles its excess up for 3,600 s, the replay for
`hour_s` — hence the sustained peak, which starts from a drained GPU (the kindest start for
all-local, so its queue there is still a lower bound of the real one).
"""
