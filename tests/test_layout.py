"""The repository's shape: the import graph (from the source, by ast), file and function sizes."""

import ast
import glob
import os
import subprocess
import sys

import pytest

from conftest import ROOT

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def project_files():
    """{dotted module name: path} of every Python file of the project (tests aside)."""
    files = {os.path.basename(p)[:-3]: p for p in glob.glob(os.path.join(ROOT, "*.py"))}
    for package in ("adgan", "ads"):
        for path in glob.glob(os.path.join(ROOT, package, "**", "*.py"), recursive=True):
            name = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
            files[name[:-len(".__init__")] if name.endswith(".__init__") else name] = path
    files["bench.run"] = os.path.join(ROOT, "bench", "run.py")
    files["build_emoji"] = os.path.join(ROOT, "data", "build_emoji.py")
    return files


FILES = project_files()
TREES = {name: ast.parse(open(path, encoding="utf-8").read()) for name, path in FILES.items()}


def imported_modules(node):
    """Project modules an Import / ImportFrom node names (`from adgan.text import tokenizer`
    and `from adgan.text.tokenizer import clean_text` both name adgan.text.tokenizer)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name in FILES]
    submodules = [f"{node.module}.{alias.name}" for alias in node.names
                  if f"{node.module}.{alias.name}" in FILES]
    return submodules or ([node.module] if node.module in FILES else [])


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
    assert "train" in core and "adgan.runs" in core
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


# The design card's top level (its GAN modules) and the scripts a user types; nothing else
TOP_LEVEL = {"setup", "data_loader", "model", "generator", "discriminator", "train", "generate",
             "export", "evaluate"}
# Names a user's own code may well have (issue 32): none of them may be ours at the top level
GENERIC_NAMES = ("config", "helpers", "metrics", "losses", "augment", "runs", "sampling",
                 "labels", "colors", "styles", "checkpoints", "callbacks", "encoder", "tokenizer",
                 "distribute", "upsampler", "bundles", "composition", "gate", "baseline")


def top_level_files():
    """The names of the checkout's top-level Python files."""
    return {name for name, path in FILES.items() if os.path.dirname(path) == ROOT}


def test_the_top_level_is_the_design_cards_and_the_scripts():
    assert top_level_files() == TOP_LEVEL and len(TOP_LEVEL) <= 10


def test_setup_installs_every_module_and_package():
    tree = ast.parse(open(os.path.join(ROOT, "setup.py"), encoding="utf-8").read())
    call = next(node for node in ast.walk(tree)
                if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "setup")
    options = {k.arg: ast.literal_eval(k.value) for k in call.keywords
               if k.arg in ("py_modules", "packages")}
    packages = {name for name, path in FILES.items() if path.endswith("__init__.py")}
    assert set(options["py_modules"]) == top_level_files() - {"setup"}
    assert set(options["packages"]) == packages


def test_the_package_never_imports_a_script():
    # adgan sits below the scripts a user types (train, generate, export, evaluate): they
    # import it, never the other way round
    graph = import_graph()
    scripts = {"train", "generate", "export", "evaluate"}
    offenders = {name: sorted(graph[name] & scripts) for name in graph
                 if name.startswith(("adgan", "ads")) and graph[name] & scripts}
    assert offenders == {}


def test_no_generic_name_is_importable_outside_the_checkout(tmp_path):
    # run where the checkout is not on sys.path: only what the install put there is found
    code = ("import importlib.util, sys; "
            f"print([n for n in {GENERIC_NAMES!r} if importlib.util.find_spec(n)])")
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    found = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert found == "[]"


def test_no_project_file_is_ignored_by_git():
    # An ignore rule that matches a source folder (say, an output folder named like a package)
    # would keep new files out of every commit while the working tree still passes.
    if not os.path.exists(os.path.join(ROOT, ".git")):
        pytest.skip("not a git checkout")
    sources = list(FILES.values()) + glob.glob(os.path.join(ROOT, "tests", "**", "*.py"),
                                               recursive=True)
    ignored = subprocess.run(["git", "check-ignore", "--no-index", *sources], cwd=ROOT,
                             capture_output=True, text=True).stdout.split()
    assert ignored == []
