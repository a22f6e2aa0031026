"""What the exercise tests share (not a test module: pytest collects only test_*.py)."""

import re

import pytest

from gan_tutorial import exercises
from gan_tutorial.exercises import ExerciseError


def rejected(exercise_id, answer, match=None):
    """Assert that ``answer`` fails exercise ``exercise_id`` (and that the message names it)."""
    with pytest.raises(ExerciseError, match=match) as info:
        exercises.check(exercise_id, answer)
    assert str(info.value).startswith(f"exercise {exercise_id}: ")
    return info.value


def copies_the_message(exercise_id, pattern, wrong, scale=1.0, rounds=12):
    """Play a learner who answers each call with the number the checker's last failure message
    printed as expected for that call (``pattern``'s group, times ``scale``), and ``wrong(*args)``
    otherwise; returns the final failure, or None when copying the messages passed the check."""
    table, calls = {}, []

    def answer(*args):
        calls.append(None)
        return table[len(calls) - 1] if len(calls) - 1 in table else wrong(*args)

    for _ in range(rounds):
        calls.clear()
        try:
            exercises.check(exercise_id, answer)
        except ExerciseError as err:
            found = re.search(pattern, str(err))
            if found is None or len(calls) - 1 in table:  # nothing to copy, or the copy failed
                return err
            table[len(calls) - 1] = scale * float(found.group(1))
        else:
            return None
    return None
