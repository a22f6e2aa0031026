"""The project's set-up: conda and pip agree, the repository URL lives in one place, and
importing the package has no side effects."""

import json
import re
import subprocess
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# conda spells a few packages differently from pip.
CONDA_NAMES = {"pytorch": "torch"}


def _split(requirement: str) -> tuple[str, str]:
    name, spec = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", requirement).groups()
    return name.lower().replace("_", "-"), spec.replace(" ", "")


def test_environment_yml_matches_pyproject():
    pip_side = dict(
        _split(r)
        for r in PYPROJECT["project"]["dependencies"] + PYPROJECT["project"]["optional-dependencies"]["dev"]
    )
    conda_side = {}
    text = (ROOT / "environment.yml").read_text()
    for line in text.split("\ndependencies:\n", 1)[1].splitlines():
        # conda's packages (two spaces in), and those its pip section installs (six), but the project
        m = re.match(r"^(?:  |      )- ([A-Za-z][^\s#]*)\s*(?:#.*)?$", line)
        if m and m.group(1) not in ("pip", "pip:") and not m.group(1).startswith("python"):
            name, spec = _split(m.group(1))
            conda_side[CONDA_NAMES.get(name, name)] = spec
    assert conda_side == pip_side
    py = re.search(r"^  - python(\S*)", (ROOT / "environment.yml").read_text(), re.M).group(1)
    assert py == PYPROJECT["project"]["requires-python"]


def test_repository_url_is_the_same_everywhere():
    url = PYPROJECT["project"]["urls"]["Repository"]
    install = f"gan-tutorial @ git+{url}"
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks, "no notebooks found"
    for path in notebooks:
        nb = json.loads(path.read_text())
        first = "".join(next(c for c in nb["cells"] if c["cell_type"] == "code")["source"])
        assert 'if "google.colab" in sys.modules' in first, (
            f"{path.name}: first code cell lacks the Colab guard"
        )
        assert install in first, f"{path.name}: Colab install step should read {install!r}"
        assert "colab" not in json.dumps(nb["metadata"]), (
            f"{path.name}: notebook metadata carries Colab state"
        )
    readme = (ROOT / "README.md").read_text()
    badges = re.findall(r"colab\.research\.google\.com/github/([^)\s]+)", readme)
    repo = url.removeprefix("https://github.com/")
    assert badges and all(b.startswith(f"{repo}/blob/main/notebooks/") for b in badges)
    assert {Path(b).name for b in badges} == {p.name for p in notebooks}


IMPORT_PROBE = """
import socket, sys
def no_network(*args, **kwargs):
    raise AssertionError("network used at import")
socket.socket.connect = no_network
socket.create_connection = no_network
import torch
state = torch.random.get_rng_state().clone()
import pkgutil, importlib, gan_tutorial
for mod in pkgutil.walk_packages(gan_tutorial.__path__, "gan_tutorial."):
    if not mod.name.endswith("__main__"):
        importlib.import_module(mod.name)
assert torch.equal(state, torch.random.get_rng_state()), "global RNG touched at import"
assert not torch.cuda.is_initialized(), "CUDA initialised at import"
print("clean")
"""


def test_import_has_no_side_effects():
    out = subprocess.run([sys.executable, "-c", IMPORT_PROBE], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "clean"


def test_committed_notebooks_carry_no_widget_state():
    """Saved widget state shows an error or needs trust in JupyterLab: `make book` strips it."""
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = json.loads(path.read_text())
        assert "widgets" not in nb["metadata"], f"{path.name}: saved widget state (run make book)"
        for cell in nb["cells"]:
            for out in cell.get("outputs", []):
                assert "application/vnd.jupyter.widget-view+json" not in out.get("data", {}), path.name


# -- the file tree is the design -------------------------------------------------------------------

PACKAGE = ROOT / "gan_tutorial"
#: "One concept per module, short enough to read in one sitting."
MAX_MODULE_LINES = 500


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that ``name`` imports (at any depth in the file)."""
    import ast

    here = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")[: len(here.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            subs = {f"{target}.{a.name}" for a in node.names} & set(modules)
            out |= subs or ({target} & set(modules))
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names} & set(modules)
    return out - {name}


def test_the_import_graph_is_a_dag():
    """No module imports one that (directly or not) imports it back; a package importing its own
    modules to present its API is the one edge that points down into it."""
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for other in sorted(graph[name]):
            if other.startswith(name + "."):
                continue
            assert state.get(other) != 1, "import cycle: " + " -> ".join([*trail, name, other])
            if other not in state:
                visit(other, [*trail, name])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])


def test_every_module_is_short_and_on_the_package_map():
    """Each module fits a sitting; the map in gan_tutorial/__init__.py names every top-level module
    and subpackage, each subpackage's own docstring names its modules, and the README's layout
    table names them all (a new module goes on the maps)."""
    readme = (ROOT / "README.md").read_text()
    for name, path in _modules().items():
        lines = len(path.read_text().splitlines())
        assert lines <= MAX_MODULE_LINES, f"{path.relative_to(ROOT)} has {lines} lines: split it by concept"
        parts = name.split(".")
        if len(parts) == 1 or parts[-1] == "__main__":
            continue
        parent = ROOT.joinpath(*parts[:-1]) / "__init__.py"
        entry = parts[-1] + "/" if path.name == "__init__.py" else parts[-1]  # a subpackage: "name/"
        assert f"``{entry}``" in parent.read_text(), f"{parent.relative_to(ROOT)}'s map omits {entry}"
        assert f"`{entry}`" in readme, f"the README's layout table omits {entry}"
