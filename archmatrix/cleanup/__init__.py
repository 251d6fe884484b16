"""Everything a run creates, named so it can be found again: swept after a crash, audited after a run.

One home for the owner of a resource (owner.py), the names and tags that carry it (names.py), the kinds of
resource and how each is found and removed (kinds.py), and the sweeps and the audit over all of them (sweep.py).
Builders and boots import their names from here; nothing here imports them.
"""
