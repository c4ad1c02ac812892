"""Shared pytest set-up: the disposable-host fixtures and the markers of the fast lane.

`bash scripts/test.sh --fast` runs every test not marked `sandbox` (a disposable host), `network` (the
package index) or `root`; tests that use a fixture below get their marker here, so a new test that builds
a real bundle through `shop` cannot slip into the fast lane by forgetting it.
"""

import pytest

pytest_plugins = ["tests.sandbox_fixture"]

# Fixtures that build real bundles: pip downloads wheels from the package index (cached after the first).
NETWORK_FIXTURES = ("shop",)


@pytest.fixture(autouse=True, scope="session")
def _resolution_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """One resolution cache per test session (bundle/resolvecache.py), never the user's."""
    import os

    os.environ["INTEGRATOR_CACHE_DIR"] = str(tmp_path_factory.mktemp("integrator-cache"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if any(f in getattr(item, "fixturenames", ()) for f in NETWORK_FIXTURES):
            item.add_marker(pytest.mark.network)
