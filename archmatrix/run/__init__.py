"""A run, without pytest: its directory, hosts, shared values and the cell pipeline."""
