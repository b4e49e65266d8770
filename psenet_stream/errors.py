"""The exceptions psenet-stream raises, and the exit codes the CLI maps them to.

Every error names the problem and, where there is one, the fix. Each class also derives
from the builtin that a caller would catch without knowing this package (as PyAV's errors
do), so ``except ValueError`` still sees a bad input:

    PsenetError                         base of everything raised on purpose   exit 1
    ├── UsageError(…, ValueError)       a bad option or argument value         exit 2
    ├── InputError(…, ValueError)       the input cannot be read or decoded    exit 3
    ├── OutputError(…, OSError)         the output cannot be written           exit 4
    ├── BackendError(…, RuntimeError)   backend / weights / engine unusable    exit 5
    └── Interrupted                     SIGINT / SIGTERM ended the run         exit 130

The CLI prints ``error: <problem>`` and ``hint: <fix>`` and exits with ``exit_code``;
anything else that escapes is a bug (exit 1, traceback with ``PSENET_DEBUG=1``).
"""

from __future__ import annotations

# Documented exit codes (README "Exit codes").
EXIT_OK = 0
EXIT_FAILURE = 1  # an unexpected internal error (a bug: please report it)
EXIT_USAGE = 2  # bad command line or option value (click's own code; UsageError too)
EXIT_INPUT = 3  # the input cannot be read or decoded
EXIT_OUTPUT = 4  # the output cannot be written, or would overwrite something
EXIT_BACKEND = 5  # the requested backend / weights / engine cannot be used
EXIT_INTERRUPTED = 130  # SIGINT / SIGTERM; a partial output is kept only with --keep-partial


class PsenetError(Exception):
    """A problem the caller can fix: ``problem`` says what, ``fix`` how ('' when there is no fix)."""

    exit_code = EXIT_FAILURE

    def __init__(self, problem: str, fix: str = "", exit_code: int | None = None):
        super().__init__(problem)
        self.problem = problem
        self.fix = fix
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.problem if not self.fix else f"{self.problem} ({self.fix})"

    def __reduce__(self):  # picklable across processes despite the extra constructor argument
        return (type(self), (self.problem, self.fix, self.exit_code))


class UsageError(PsenetError, ValueError):
    """A bad option or argument value (strength out of range, unknown pixel format, ...)."""

    exit_code = EXIT_USAGE


class InputError(PsenetError, ValueError):
    """The input is missing, unreadable, undecodable or unreachable."""

    exit_code = EXIT_INPUT


class OutputError(PsenetError, OSError):
    """The output cannot be written, or writing it would replace something."""

    exit_code = EXIT_OUTPUT

    def __init__(self, problem: str, fix: str = "", exit_code: int | None = None):
        PsenetError.__init__(self, problem, fix, exit_code)

    def __str__(self) -> str:  # OSError's own __str__ would print errno fields
        return PsenetError.__str__(self)


class BackendError(PsenetError, RuntimeError):
    """The requested backend, weight file or engine cannot be used here."""

    exit_code = EXIT_BACKEND


class Interrupted(PsenetError):
    """The run was stopped by SIGINT / SIGTERM; ``problem`` says what was kept."""

    exit_code = EXIT_INTERRUPTED


# The name the commands used before the hierarchy existed; new code raises a subclass.
UserError = PsenetError
