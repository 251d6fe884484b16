"""One writer per report format; matrix.json is the source the others follow."""
