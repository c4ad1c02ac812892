"""The rendered files, checked by the real tools: systemd-analyze (verify, security) and nginx -t.

Offline and in temporary directories. A missing tool fails under CI=true and skips
elsewhere (scripts/install-nginx.sh installs nginx without starting it).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from integrator.render import RenderedFile, render_all
from integrator.spec import ServiceSpec

from .render_checks import (
    CASES,
    DEFAULT,
    Case,
    RootedLayout,
    exposure,
    install_certificate,
    need_tool,
    nginx_prefix,
    nginx_test,
    nginx_version,
    run,
    self_signed,
    systemd_root,
    unit_paths,
)
from .spec_edit import edit

# Measured with systemd 252: 0.9 (root, for systemd's private socket; everything else taken away).
TLS_RELOAD_CEILING = 1.0
NGINX_HINT = "run scripts/install-nginx.sh as root"
SYSTEMD_HINT = "apt-get install systemd"


# --- systemd ------------------------------------------------------------------------------------


@pytest.fixture
def analyze() -> str:
    return need_tool("systemd-analyze", SYSTEMD_HINT)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_units_pass_systemd_analyze_verify(case: Case, analyze: str, tmp_path: Path) -> None:
    files = case.render()
    root = systemd_root(tmp_path, files)
    result = run(
        [analyze, "verify", f"--root={root}", "--man=no", "--generators=no", *unit_paths(root, files)]
    )
    # verify exits 0 on unknown keys or bad quoting and only prints a warning: any output fails.
    assert result.returncode == 0 and not (result.stdout + result.stderr), result.stdout + result.stderr


def test_verify_reports_a_broken_unit(analyze: str, tmp_path: Path) -> None:
    """The check above can fail: an unknown key and bad quoting are reported."""
    files = DEFAULT.render()
    broken = [
        dataclasses.replace(
            f, content=f.content.replace("Type=notify", 'Type=notify\nTypo=1\nEnvironment="A=\\q"')
        )
        for f in files
    ]
    root = systemd_root(tmp_path, broken)
    result = run(
        [analyze, "verify", f"--root={root}", "--man=no", "--generators=no", *unit_paths(root, broken)]
    )
    assert "Unknown key 'Typo'" in result.stderr and "Invalid syntax" in result.stderr


# Measured with systemd 252: 0.4 for "none" (the DynamicUser reference scores 0.2; the 0.2 left
# is PrivateUsers=, which we must not use) and 1.2 for "outbound" (internet sockets allowed).
@pytest.mark.parametrize(("network", "ceiling"), [("none", 1.0), ("outbound", 1.5)])
def test_security_exposure(network: str, ceiling: float, analyze: str, tmp_path: Path) -> None:
    spec = edit(DEFAULT.spec, security={"network": network})
    files = render_all(spec, DEFAULT.layout, DEFAULT.release_id)
    root = systemd_root(tmp_path, files)
    service = str(root / DEFAULT.layout.slot("a").service_unit_path.relative_to("/"))
    result = run([analyze, "security", "--offline=true", f"--root={root}", service])
    score = exposure(result.stdout)
    print(f"systemd-analyze security --offline=true, network={network}: exposure {score}")
    assert score <= ceiling, result.stdout


@pytest.mark.parametrize("network", ["none", "outbound"])
def test_worker_and_timer_units_score_like_the_web_unit(network: str, analyze: str, tmp_path: Path) -> None:
    """[processes] and [timers] units share the web unit's confinement: the same exposure, to
    the tenth, for each network profile (0.4 and 1.2 measured with systemd 252)."""
    case = next(c for c in CASES if c.spec.processes.named and c.spec.timers.named)
    spec = edit(case.spec, security={"network": network})
    files = render_all(spec, case.layout, case.release_id)
    root = systemd_root(tmp_path, files)
    scores = {}
    for unit in (case.layout.slot("a").service_unit, "demo-proc-worker.service", "demo-timer-ping.service"):
        result = run(
            [analyze, "security", "--offline=true", f"--root={root}", f"{root}/etc/systemd/system/{unit}"]
        )
        scores[unit] = exposure(result.stdout)
    print(f"systemd-analyze security --offline=true, network={network}: {scores}")
    assert len(set(scores.values())) == 1, scores


def test_tls_reload_unit_exposure(analyze: str, tmp_path: Path) -> None:
    """NAME-tls.service must run as root (systemd's private socket) but has nothing else."""
    case = next(c for c in CASES if c.spec.tls.mode == "provided")
    root = systemd_root(tmp_path, case.render())
    unit = str(root / case.layout.tls_watch_unit_paths[1].relative_to("/"))
    result = run([analyze, "security", "--offline=true", f"--root={root}", unit])
    score = exposure(result.stdout)
    print(f"systemd-analyze security --offline=true, {case.layout.tls_reload_unit}: exposure {score}")
    assert score <= TLS_RELOAD_CEILING, result.stdout


# --- nginx --------------------------------------------------------------------------------------


@pytest.fixture
def nginx() -> str:
    return need_tool("nginx", NGINX_HINT)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    openssl = need_tool("openssl", "apt-get install openssl")
    return self_signed(tmp_path_factory.mktemp("tls"), openssl)


def _second_service() -> ServiceSpec:
    """Another service on the same nginx: same ports, its own names and upstream."""
    return edit(DEFAULT.spec, service={"name": "reports"}, http={"server_names": ("reports.example.com",)})


def _load_sites(
    prefix: Path, distro: str, specs: list[ServiceSpec], nginx: str, certificate: tuple[Path, Path]
) -> list[RenderedFile]:
    """Render each spec for the installed nginx into `prefix`, with a certificate each."""
    written: list[RenderedFile] = []
    for spec in specs:
        layout = RootedLayout.below(prefix, spec, distro)
        install_certificate(layout, *certificate)
        for f in render_all(spec, layout, "R1", nginx_version=nginx_version(nginx)):
            if str(f.path).startswith(str(prefix)):  # the site and its includes, not units
                Path(f.path).parent.mkdir(parents=True, exist_ok=True)
                Path(f.path).write_text(f.content, encoding="utf-8")
                written.append(f)
    return written


@pytest.mark.root  # as non-root, nginx -t fails to bind port 80 for the stock site
@pytest.mark.parametrize("distro", ["debian", "rhel"])
def test_nginx_accepts_two_sites_next_to_the_stock_config(
    distro: str, nginx: str, certificate: tuple[Path, Path], tmp_path: Path
) -> None:
    conf = nginx_prefix(tmp_path, distro, stock_default=True)
    written = _load_sites(tmp_path, distro, [DEFAULT.spec, _second_service()], nginx, certificate)
    # Two sites, and one catch-all per port shared by both (the same bytes from each service).
    assert {f.path.name for f in written if f.path.parent.name == "conf.d"} == {
        "demo.conf",
        "reports.conf",
        "00-integrator-catch-all-http-80.conf",
        "00-integrator-catch-all-https-443.conf",
    }
    result = nginx_test(nginx, tmp_path, conf)
    assert result.returncode == 0 and not result.stderr, result.stderr


@pytest.mark.root  # as non-root, nginx -t fails to bind port 80 for the stock site
@pytest.mark.parametrize("distro", ["debian", "rhel"])
def test_nginx_accepts_a_default_server_site(
    distro: str, nginx: str, certificate: tuple[Path, Path], tmp_path: Path
) -> None:
    """default_server needs the stock default server gone (two defaults on :80 clash)."""
    conf = nginx_prefix(tmp_path, distro, stock_default=False)
    main = edit(DEFAULT.spec, http={"default_server": True})
    _load_sites(tmp_path, distro, [main, _second_service()], nginx, certificate)
    result = nginx_test(nginx, tmp_path, conf)
    assert result.returncode == 0 and not result.stderr, result.stderr


def test_nginx_check_catches_a_clash(nginx: str, certificate: tuple[Path, Path], tmp_path: Path) -> None:
    """The check above can fail: the same service's site loaded twice redefines its upstream."""
    conf = nginx_prefix(tmp_path, "debian", stock_default=True)
    [site] = [
        f
        for f in _load_sites(tmp_path, "debian", [DEFAULT.spec], nginx, certificate)
        if f.path.name == f"{DEFAULT.spec.name}.conf"
    ]
    Path(f"{site.path}.copy.conf").write_text(site.content, encoding="utf-8")
    result = nginx_test(nginx, tmp_path, conf)
    assert result.returncode != 0 and "duplicate upstream" in result.stderr


@pytest.mark.parametrize(("ci", "outcome"), [("true", pytest.fail.Exception), ("", pytest.skip.Exception)])
def test_a_missing_tool_fails_in_ci_and_skips_elsewhere(
    ci: str, outcome: type[BaseException], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="no-such-tool is not installed here"):
        need_tool("no-such-tool", "nowhere")
