"""Shared pytest set-up: the disposable-host fixtures (`sandbox_host`, `make_sandbox`)."""

pytest_plugins = ["tests.sandbox_fixture"]
