"""Everything that acts on a host: probing facts, writing files, systemd, nginx, releases.

Stdlib only and Python >= 3.9: this package runs on the target host, inside a bundle, where
nothing but the system's python3 can be assumed.
"""
