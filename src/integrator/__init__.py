"""integrator: the Integrator's Loop made real — venv + gunicorn + systemd + nginx, offline."""

__version__ = "0.1.0"
