"""The exercises' checkers (gan_tutorial.exercises): every stored solution passes, and the mistakes
a learner would really make are rejected with ExerciseError, not waved through. The mechanism is
tested here; each chapter's checkers in test_exercises_chN.py."""

import inspect

import pytest
import torch
from exercise_tools import rejected

from gan_tutorial import exercises
from gan_tutorial.exercises import ExerciseError

ALL_IDS = [f"{c}.{n}" for c, count in enumerate((4, 5, 5, 5, 5, 3, 3, 3, 5)) for n in range(1, count + 1)]


# -- the mechanism ------------------------------------------------------------------------


def test_registry_has_every_chapter_with_three_to_five_exercises():
    assert exercises.ids() == ALL_IDS
    for chapter in exercises.CHAPTERS:
        assert 3 <= sum(i.startswith(f"{chapter}.") for i in ALL_IDS) <= 5
    with pytest.raises(KeyError, match="no exercise '9.9'"):
        exercises.get("9.9")
    with pytest.raises(TypeError, match="a string such as '2.3', got 1.4: quote it"):
        exercises.get(1.4)


@pytest.mark.parametrize("exercise_id", ALL_IDS)
def test_stored_solution_passes_and_prints_one_line(exercise_id, capsys):
    exercises.check(exercise_id, exercises.solution(exercise_id))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"exercise {exercise_id}: correct"), lines


def test_stub_falls_back_to_the_solution_and_says_so(capsys):
    def to_unit(x):
        """Map [-1, 1] to [0, 1]."""
        raise NotImplementedError  # your code here

    exercises.check("0.1", to_unit)
    assert capsys.readouterr().out == (
        "exercise 0.1: to_unit is still the stub, so the stored solution was checked: it passes. "
        "Write yours and run this cell again.\n"
    )


def test_value_stub_none_or_ellipsis_falls_back(capsys):
    @exercises.exercise("9.1", "my_value", solution=3, kind="value")
    def check_value(answer):
        if answer != 3:
            raise ExerciseError(f"expected 3, got {answer}", "count again")

    try:
        for stub in (None, ...):
            exercises.check("9.1", stub)
            assert "my_value is still the stub" in capsys.readouterr().out
        exercises.check("9.1", 3)
        assert capsys.readouterr().out == "exercise 9.1: correct\n"
        err = rejected("9.1", 4, match="expected 3, got 4")
        assert err.hint == "count again" and "Hint: count again" in str(err)
    finally:
        del exercises._REGISTRY["9.1"]


def test_errors_in_the_answer_become_exercise_errors():
    def boom(x):
        return x.no_such_method()

    err = rejected("0.1", boom, match="to_unit raised AttributeError")
    assert isinstance(err.__cause__, AttributeError)  # the learner's traceback is kept
    rejected("0.1", "not a function", match="pass the function to_unit itself")


def test_notimplemented_from_pytorch_is_not_taken_for_the_stub(capsys):
    def sparse_view(x):
        return x.to_sparse().view(-1)  # PyTorch: NotImplementedError (views of sparse tensors)

    with pytest.raises(NotImplementedError):
        sparse_view(torch.zeros(3))
    rejected("0.1", sparse_view, match="NotImplementedError inside PyTorch")

    def todo(x):
        raise NotImplementedError("I will write this later")

    exercises.check("0.1", todo)  # a raise statement with a message is a stub too
    assert "still the stub" in capsys.readouterr().out


@pytest.mark.parametrize("exercise_id", ["0.2", "1.4", "3.5", "4.5"])
def test_checkers_leave_the_global_random_state_and_threads_alone(exercise_id, capsys):
    torch.manual_seed(1234)
    state, threads = torch.get_rng_state(), torch.get_num_threads()

    solution = exercises.solution(exercise_id)
    # an exercise that hands the answer a generator rejects draws from the global one, so only the
    # others get an answer that draws from the global generator on the way
    draws = "generator" not in inspect.signature(solution).parameters

    def answer(*args, **kwargs):
        if draws:
            torch.randn(100)
        return solution(*args, **kwargs)

    exercises.check(exercise_id, answer)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.get_num_threads() == threads
    assert capsys.readouterr().out.startswith(f"exercise {exercise_id}: correct")
