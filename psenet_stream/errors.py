"""User-facing errors: one line naming the problem, one naming the fix, and an exit code."""

from __future__ import annotations

# Documented exit codes (README "Exit codes").
EXIT_OK = 0
EXIT_FAILURE = 1  # an unexpected internal error (a bug: please report it)
EXIT_USAGE = 2  # bad command line (click's own code)
EXIT_INPUT = 3  # the input cannot be read or decoded
EXIT_OUTPUT = 4  # the output cannot be written, or would overwrite something
EXIT_BACKEND = 5  # the requested backend / weights / engine cannot be used
EXIT_INTERRUPTED = 130  # SIGINT / SIGTERM; a partial output is kept only with --keep-partial


class UserError(Exception):
    """A problem the user can fix. Printed as 'error: <problem>' and 'hint: <fix>', no traceback."""

    exit_code = EXIT_FAILURE

    def __init__(self, problem: str, fix: str = "", exit_code: int | None = None):
        super().__init__(problem)
        self.problem = problem
        self.fix = fix
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.problem if not self.fix else f"{self.problem} ({self.fix})"


class InputError(UserError):
    exit_code = EXIT_INPUT


class OutputError(UserError):
    exit_code = EXIT_OUTPUT


class BackendError(UserError):
    exit_code = EXIT_BACKEND
