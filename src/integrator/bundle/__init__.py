"""The offline bundle: one `NAME-VERSION.pyz` that carries an app, its wheels and the host code.

Host-side modules (manifest, venv, sign, verify, pyzmain) use only the standard library:
they run from inside the .pyz on a host whose only Python is the system `python3` (>= 3.9).
Build-side modules (source, wheels, zipapp, commands) run where `integrator` is installed.
Keep this file free of imports: it is part of every bundle.
"""
