"""The repository's shape: the import graph (from the source, by ast), file and function sizes."""

import ast
import glob
import os
import subprocess

import pytest

from conftest import ROOT

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def project_files():
    """{module name: path} of every Python file of the project (tests aside)."""
    files = {os.path.basename(p)[:-3]: p for p in glob.glob(os.path.join(ROOT, "*.py"))}
    files.update({f"ads.{os.path.basename(p)[:-3]}": p
                  for p in glob.glob(os.path.join(ROOT, "ads", "*.py"))})
    files["bench.run"] = os.path.join(ROOT, "bench", "run.py")
    files["build_emoji"] = os.path.join(ROOT, "data", "build_emoji.py")
    return files


FILES = project_files()
TREES = {name: ast.parse(open(path, encoding="utf-8").read()) for name, path in FILES.items()}


def imported_modules(node):
    """Project modules an Import / ImportFrom node names (`from ads import x` names ads.x)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif node.module == "ads":
        names = [f"ads.{alias.name}" for alias in node.names]
    else:
        names = [node.module]
    return [name for name in names if name in FILES or name == "ads"]


def import_graph():
    """{module: {modules it imports}} over every import statement, at any depth."""
    graph = {}
    for name, tree in TREES.items():
        graph[name] = {target for node in ast.walk(tree)
                       if isinstance(node, (ast.Import, ast.ImportFrom))
                       for target in imported_modules(node) if target != name}
    return graph


def find_cycle(graph):
    """One import cycle as a list of modules, or None (depth-first search)."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_import_graph_has_no_cycle():
    assert find_cycle(import_graph()) is None, " -> ".join(find_cycle(import_graph()))


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_core_never_imports_the_ad_layer():
    graph = import_graph()
    core = [name for name in graph if not name.startswith("ads") and name != "bench.run"]
    assert "train" in core and "runs" in core
    offenders = {name: sorted(t for t in graph[name] if t.startswith("ads"))
                 for name in core if any(t.startswith("ads") for t in graph[name])}
    assert offenders == {}


def deferred_imports(name):
    """(line, has a comment) of each group of consecutive import statements in a function."""
    lines = open(FILES[name], encoding="utf-8").read().splitlines()
    found = []
    for function in ast.walk(TREES[name]):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        previous = None
        for node in function.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                if previous is None:  # a group starts: a comment above it or on a line of it
                    found.append([node.lineno, "#" in lines[node.lineno - 2]])
                found[-1][1] |= any("#" in lines[i - 1]
                                    for i in range(node.lineno, node.end_lineno + 1))
                previous = node
            else:
                previous = None
    return found


@pytest.mark.parametrize("name", sorted(FILES))
def test_imports_inside_functions_state_their_reason(name):
    silent = [line for line, commented in deferred_imports(name) if not commented]
    assert silent == [], f"{FILES[name]}: imports inside a function without a reason, lines {silent}"


def test_installed_modules_import_the_project_at_the_top():
    # A project module is never an optional dependency: only the scripts (bench's parts, each
    # measured in its own process) may import the project inside a function.
    library = [name for name in FILES if name not in ("bench.run", "build_emoji")]
    inside = {name: sorted({target for function in ast.walk(TREES[name])
                            if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef))
                            for node in ast.walk(function)
                            if isinstance(node, (ast.Import, ast.ImportFrom))
                            for target in imported_modules(node)})
              for name in library}
    assert {name: targets for name, targets in inside.items() if targets} == {}


@pytest.mark.parametrize("name", sorted(FILES))
def test_modules_and_functions_stay_small(name):
    lines = open(FILES[name], encoding="utf-8").read().count("\n")
    assert lines <= MAX_MODULE_LINES, f"{FILES[name]} has {lines} lines"
    long = [(node.name, node.end_lineno - node.lineno + 1) for node in ast.walk(TREES[name])
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert long == [], f"{FILES[name]}: functions over {MAX_FUNCTION_LINES} lines"


def test_setup_installs_every_module_and_the_ad_layer():
    tree = ast.parse(open(os.path.join(ROOT, "setup.py"), encoding="utf-8").read())
    call = next(node for node in ast.walk(tree)
                if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "setup")
    options = {k.arg: ast.literal_eval(k.value) for k in call.keywords
               if k.arg in ("py_modules", "packages")}
    top_level = {name for name in FILES if "." not in name and name not in ("setup",
                                                                           "build_emoji")}
    assert set(options["py_modules"]) == top_level and options["packages"] == ["ads"]


def test_no_project_file_is_ignored_by_git():
    # An ignore rule that matches a source folder (say, an output folder named like a package)
    # would keep new files out of every commit while the working tree still passes.
    if not os.path.isdir(os.path.join(ROOT, ".git")):
        pytest.skip("not a git checkout")
    sources = list(FILES.values()) + glob.glob(os.path.join(ROOT, "tests", "**", "*.py"),
                                               recursive=True)
    ignored = subprocess.run(["git", "check-ignore", "--no-index", *sources], cwd=ROOT,
                             capture_output=True, text=True).stdout.split()
    assert ignored == []
