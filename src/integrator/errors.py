"""One exception family for everything a user can cause or fix.

The CLI catches `IntegratorError` once, prints its one-line message and exits with its
`exit_code`; any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

# Exit codes (documented in README and `integrator --help`).
EXIT_OK = 0
EXIT_FAILED = 1  # the operation ran and failed: health check, verify, deploy rolled back
EXIT_USAGE = 2  # bad input: usage, spec, name, bundle path
EXIT_ENVIRONMENT = 3  # this machine lacks something: not root, a missing tool, no namespaces


class IntegratorError(Exception):
    """A problem the user can understand and fix; never a bug."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class SpecError(IntegratorError):
    """service.toml (or a value on the command line) is invalid."""

    exit_code = EXIT_USAGE


class UsageError(IntegratorError):
    """The command line asks for something that cannot be done as asked."""

    exit_code = EXIT_USAGE


class TemplateError(IntegratorError):
    """A service could not be generated, cloned or adopted."""

    exit_code = EXIT_USAGE


class BundleError(IntegratorError):
    """A bundle could not be built, or failed verification (tampered, incomplete, unsafe paths)."""


class HostError(IntegratorError):
    """Something on the target host (or this machine) went wrong while acting on it."""


class EnvironmentProblem(IntegratorError):
    """This machine lacks what a command needs (root, a tool, kernel features); says what to install."""

    exit_code = EXIT_ENVIRONMENT


class CheckFailed(IntegratorError):
    """A check ran and said no: nginx -t, systemd-analyze verify, a health check."""
