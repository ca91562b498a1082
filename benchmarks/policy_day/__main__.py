"""`python -m benchmarks.policy_day`: see `benchmarks.policy_day.day`."""

from benchmarks.policy_day.day import main

main()
