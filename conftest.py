# The harness registers itself as a pytest plugin through the pytest11 entry
# point in pyproject.toml; nothing else is needed here.
