"""What every benchmark program shares: the processes it measures (more to come in this package)."""
