"""Pure parsers of host facts: each probe's output format, tested without a host."""

from __future__ import annotations

import pytest

from integrator.errors import EnvironmentProblem, HostError
from integrator.host import facts

DEBIAN = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nID=debian\n'
ROCKY = 'NAME="Rocky Linux"\nID="rocky"\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.3"\n'
UBUNTU = "ID=ubuntu\nID_LIKE=debian\n"


@pytest.mark.parametrize(("text", "family"), [(DEBIAN, "debian"), (ROCKY, "rhel"), (UBUNTU, "debian")])
def test_distro_family(text: str, family: str) -> None:
    assert facts.distro_family(facts.parse_os_release(text)) == family


def test_unknown_distro_is_an_environment_problem() -> None:
    with pytest.raises(EnvironmentProblem, match="Alpine"):
        facts.distro_family(facts.parse_os_release('ID=alpine\nPRETTY_NAME="Alpine Linux v3.19"\n'))


def test_os_release_strips_quotes_and_comments() -> None:
    parsed = facts.parse_os_release("# comment\nID='debian'\nVERSION_ID=\"12\"\n")
    assert parsed == {"ID": "debian", "VERSION_ID": "12"}


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("nginx version: nginx/1.22.1\n", (1, 22, 1)),
        ("nginx version: nginx/1.25.3 (Ubuntu)", (1, 25, 3)),
        ("nginx version: nginx/1.26", (1, 26, 0)),
    ],
)
def test_nginx_version(text: str, version: tuple[int, int, int]) -> None:
    assert facts.parse_nginx_version(text) == version


def test_nginx_version_garbage() -> None:
    with pytest.raises(HostError):
        facts.parse_nginx_version("command not found")


def test_systemd_version() -> None:
    assert facts.parse_systemd_version("systemd 252 (252.22-1~deb12u1)\n+PAM +AUDIT") == 252
    assert facts.parse_systemd_version("systemd 239 (239-78.el8)") == 239


def test_python_probe() -> None:
    assert facts.parse_python_probe("3.11.2 x86_64\n") == ((3, 11, 2), "x86_64")
    with pytest.raises(HostError):
        facts.parse_python_probe("3.11 x86_64")


def test_properties_and_pyvenv_cfg() -> None:
    props = facts.parse_properties("ActiveState=active\nMainPID=42\nExecStart={ path=/x ; argv[]=/x a=b }\n")
    assert props["ActiveState"] == "active" and props["MainPID"] == "42"
    assert props["ExecStart"].startswith("{ path=/x")
    cfg = facts.parse_pyvenv_cfg("home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.11.2\n")
    assert cfg["version"] == "3.11.2" and cfg["home"] == "/usr/bin"


def test_selinux_enforce() -> None:
    assert facts.parse_selinux_enforce("1\n") is True
    assert facts.parse_selinux_enforce("0") is False
    assert facts.parse_selinux_enforce(None) is False


def test_journal_lines_bring_the_traceback_forward() -> None:
    from integrator.host.units import pick_journal_lines

    boot = [
        "[INFO] Booting worker",
        "Traceback (most recent call last):",
        '  File "x.py", line 1',
        "RuntimeError: boom",
    ]
    loop = [f"restart noise {i}" for i in range(30)]
    picked = pick_journal_lines(boot + loop, limit=5)
    assert picked[:3] == boot[1:] and picked[3] == "..." and picked[4:] == loop[-5:]
    assert pick_journal_lines(loop, limit=5) == loop[-5:]
    assert pick_journal_lines(boot, limit=20) == boot  # already in the tail
