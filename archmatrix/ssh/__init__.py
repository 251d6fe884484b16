"""SSH, for hosts and guests alike: keys, fingerprints and the one pinned host-key policy (keys.py), and a
connection to a libvirt host that runs commands and carries tunnels (shell.py)."""
