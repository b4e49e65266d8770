"""The error hierarchy: library base, builtin mix-ins, exit codes, pickling."""

from __future__ import annotations

import pickle

import pytest

from psenet_stream import errors as E


@pytest.mark.parametrize(
    "cls, builtin, code",
    [
        (E.UsageError, ValueError, E.EXIT_USAGE),
        (E.InputError, ValueError, E.EXIT_INPUT),
        (E.OutputError, OSError, E.EXIT_OUTPUT),
        (E.BackendError, RuntimeError, E.EXIT_BACKEND),
        (E.Interrupted, E.PsenetError, E.EXIT_INTERRUPTED),
    ],
)
def test_each_error_is_a_psenet_error_and_its_builtin(cls, builtin, code):
    e = cls("the problem", "the fix")
    assert isinstance(e, E.PsenetError) and isinstance(e, builtin)
    assert e.exit_code == code
    assert str(e) == "the problem (the fix)" and e.problem == "the problem" and e.fix == "the fix"
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is cls and back.problem == e.problem and back.fix == e.fix


def test_output_error_is_not_mistaken_for_an_errno():
    e = E.OutputError("disk full", "free some space")
    assert e.errno is None and str(e) == "disk full (free some space)"
