"""What the exercise tests share (not a test module: pytest collects only test_*.py)."""

import pytest

from gan_tutorial import exercises
from gan_tutorial.exercises import ExerciseError


def rejected(exercise_id, answer, match=None):
    """Assert that ``answer`` fails exercise ``exercise_id`` (and that the message names it)."""
    with pytest.raises(ExerciseError, match=match) as info:
        exercises.check(exercise_id, answer)
    assert str(info.value).startswith(f"exercise {exercise_id}: ")
    return info.value
