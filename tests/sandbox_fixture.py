"""pytest plugin: disposable real-systemd hosts for tests.

Load it from tests/conftest.py with `pytest_plugins = ["tests.sandbox_fixture"]`.

- `sandbox_host`: a fresh running host for one test, destroyed afterwards.
- `make_sandbox`: a factory, `make_sandbox()` or `make_sandbox("name")`; all destroyed at teardown.
- `make_module_sandbox`: the same factory, its hosts destroyed after the module's last test.
- Tests marked `sandbox` (and every test using these fixtures, marked automatically) are skipped
  with the reason when this machine cannot run hosts (not root, tools missing), but fail
  instead when CI=true or INTEGRATOR_REQUIRE_SANDBOX=1: there a skip would hide a broken setup.

Hosts are destroyed in fixture finalizers, which pytest also runs after Ctrl-C. SIGTERM (what CI
sends on a timeout) is turned into the same KeyboardInterrupt, and an atexit hook catches
anything still left (e.g. when a finalizer itself was interrupted).
"""

from __future__ import annotations

import atexit
import itertools
import os
import secrets
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Callable, Optional

import pytest

from integrator.errors import EnvironmentProblem
from integrator.sandbox import Sandbox, create, destroy, ensure_base, ensure_prerequisites

SANDBOX_FIXTURES = ("sandbox_host", "make_sandbox", "make_module_sandbox", "sandbox_base")
_prefix = f"t{secrets.token_hex(2)}"  # per test session, so parallel sessions do not collide
_numbers = itertools.count(1)
_live: set[str] = set()  # hosts created by this process and not destroyed yet

MakeSandbox = Callable[..., Sandbox]


def sandbox_required() -> bool:
    """On CI (or when asked) a missing sandbox environment is a failure, not a skip."""
    return os.environ.get("CI", "").lower() == "true" or os.environ.get("INTEGRATOR_REQUIRE_SANDBOX") == "1"


def _unavailable() -> Optional[str]:
    try:
        ensure_prerequisites()
    except EnvironmentProblem as exc:
        return exc.message
    return None


def skip_or_fail_without_sandbox() -> None:
    problem = _unavailable()
    if problem is None:
        return
    if sandbox_required():
        pytest.fail(
            f"sandbox hosts required (CI / INTEGRATOR_REQUIRE_SANDBOX=1) but unavailable: {problem}",
            pytrace=False,
        )
    pytest.skip(f"sandbox hosts unavailable: {problem}")


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    """Make SIGTERM unwind like Ctrl-C so fixture finalizers destroy the hosts."""
    in_main = threading.current_thread() is threading.main_thread()
    if in_main and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupt)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if any(f in getattr(item, "fixturenames", ()) for f in SANDBOX_FIXTURES):
            item.add_marker(pytest.mark.sandbox)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("sandbox") is not None:
        skip_or_fail_without_sandbox()


def next_name() -> str:
    """A fresh host name such as t3f9a-1 (within the 11-character limit)."""
    return f"{_prefix}-{next(_numbers)}"


def _destroy_all(names: list[str]) -> None:
    """Destroy every host in `names` even if some fail; re-raise the first failure."""
    first: Optional[BaseException] = None
    for name in names:
        try:
            destroy(name)
            _live.discard(name)
        except BaseException as exc:
            first = first or exc
    if first is not None:
        raise first


@atexit.register
def _destroy_leftovers() -> None:
    if _live:
        _destroy_all(sorted(_live))


@pytest.fixture(scope="session")
def sandbox_base() -> Path:
    """The cached base root filesystem (built on first use, ~30 s once)."""
    skip_or_fail_without_sandbox()
    return ensure_base()


def _factory() -> Iterator[MakeSandbox]:
    """Make hosts on demand; destroy every one made when the generator is closed."""
    made: list[str] = []

    def make(name: Optional[str] = None) -> Sandbox:
        name = name or next_name()
        sandbox = create(name)  # a failed create cleans up after itself
        made.append(name)
        _live.add(name)
        return sandbox

    try:
        yield make
    finally:
        _destroy_all(list(reversed(made)))


@pytest.fixture
def make_sandbox(sandbox_base: Path) -> Iterator[MakeSandbox]:
    """Factory for running hosts; every host it made is destroyed at teardown."""
    yield from _factory()


@pytest.fixture(scope="module")
def make_module_sandbox(sandbox_base: Path) -> Iterator[MakeSandbox]:
    """The same factory, whose hosts live until the module's last test: for one expensive host
    that a module's tests share (each test then leaves it as it found it, or says it builds on
    the one before)."""
    yield from _factory()


@pytest.fixture
def sandbox_host(make_sandbox: MakeSandbox) -> Sandbox:
    """One fresh running host for this test."""
    return make_sandbox()
