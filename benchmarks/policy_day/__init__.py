"""The policy day: `python -m benchmarks.policy_day` (see `benchmarks.policy_day.day`)."""
