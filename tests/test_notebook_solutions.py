"""Every solution a notebook shows, collapsed under "Solution N.M", passes that exercise's checker.

The package's stored solutions are checked by each chapter's exercise tests; this checks the
text the learner reads, which is written separately and could drift from them. The solution's
code runs in a namespace holding its notebook's imports, then its answer (the function or value
the exercise names) goes through ``exercises`` as the learner's own would.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from gan_tutorial import exercises
from gan_tutorial.exercises import ExerciseError, get

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
_BLOCK = re.compile(
    r"<summary>Solution (?P<id>[0-9A-Z]+\.[0-9]+)</summary>.*?```python\n(?P<code>.*?)```", re.S
)


def _context(cells: list[dict]) -> list[str]:
    """A notebook's imports, then its top-level functions and classes, as snippets of code.

    Shell and magic lines are left out; nothing else of the notebook runs.
    """
    imports, definitions = [], []
    for cell in cells:
        if cell["cell_type"] == "code":
            lines = "".join(cell["source"]).splitlines()
            magic = [line.lstrip().startswith(("%", "!")) for line in lines]
            indent = [line[: len(line) - len(line.lstrip())] for line in lines]
            kept = (i + "pass" if m else line for line, i, m in zip(lines, indent, magic, strict=True))
            code = "\n".join(kept)
            tree = ast.parse(code)
            imports += [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]
            definitions += [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)]
    return ["\n".join(ast.unparse(n) for n in imports)] + [ast.unparse(n) for n in definitions]


def _solutions() -> list[tuple[str, str, list[str], str]]:
    found = []
    for path in NOTEBOOKS:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        for cell in cells:
            if cell["cell_type"] == "markdown":
                for m in _BLOCK.finditer("".join(cell["source"])):
                    found.append((path.stem, m["id"], _context(cells), m["code"]))
    return found


SOLUTIONS = _solutions()


def test_the_notebooks_show_solutions():
    assert len(SOLUTIONS) >= 30, [s[:2] for s in SOLUTIONS]


@pytest.mark.parametrize(
    ("notebook", "exercise_id", "context", "code"), SOLUTIONS, ids=[f"{s[0]}-{s[1]}" for s in SOLUTIONS]
)
def test_the_solution_shown_passes_its_checker(notebook, exercise_id, context, code):
    ex = get(exercise_id)
    namespace: dict = {}
    exec(compile(context[0], f"{notebook} imports", "exec"), namespace)
    for definition in context[1:]:  # the notebook's helpers a solution may call
        try:
            exec(compile(definition, f"{notebook} definitions", "exec"), namespace)
        except NameError:  # a default or decorator from the notebook's state: not needed here
            pass
    exec(compile(code, f"{notebook} solution {exercise_id}", "exec"), namespace)
    assert ex.name in namespace, f"{notebook}: solution {exercise_id} does not define {ex.name}"
    try:
        exercises._run(ex, namespace[ex.name])
    except ExerciseError as err:
        pytest.fail(f"{notebook}: the solution shown for {exercise_id} fails its checker: {err}")
