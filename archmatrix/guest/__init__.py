"""One domain's life: its XML, its start, its console, what its boot showed, and reaching it over SSH."""
