"""`python -m benchmarks.policy_day`: see `benchmarks.policy_day.cli`."""

from benchmarks.policy_day.cli import main

main()
