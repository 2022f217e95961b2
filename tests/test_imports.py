"""The package's import graph reads top-down: no cycle, and each layer imports only the layers
above it (DESIGN.md, "Code layout"). Imports inside functions count: a lazy import that breaks
a cycle means a concept sits on the wrong floor."""
import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The floors of DESIGN.md's code layout: a module may import its own floor and the ones below
# this number, never a higher one.
FLOORS = {
    # Leaves that import nothing of tfgrec (constants the CLI's help texts show, without
    # importing TensorFlow).
    "tfgrec": 0, "tfgrec._keras_guard": 0, "tfgrec._ports": 0, "tfgrec._cli_constants": 0,
    "tfgrec.storage": 1, "tfgrec.saved_models": 1, "tfgrec.data": 1,
    "tfgrec.graph": 2, "tfgrec.layers": 2,
    "tfgrec.text": 3, "tfgrec.models": 3, "tfgrec.tasks": 3, "tfgrec.sources": 3,
    "tfgrec.eval": 3,
    "tfgrec.ranking": 4,
    "tfgrec.beam": 5, "tfgrec.export": 5, "tfgrec.serving": 5, "tfgrec.batch": 5,
    "tfgrec.config": 5, "tfgrec.configs": 5,
    "tfgrec.train": 6,
    "tfgrec.jobs": 7, "tfgrec.cli": 7, "tfgrec.demo": 7, "tfgrec._entry": 7,
}


def _modules():
  """{dotted module name: file path} of every module of the package."""
  out = {}
  for folder, _, files in os.walk(os.path.join(ROOT, "tfgrec")):
    for name in files:
      if name.endswith(".py"):
        path = os.path.join(folder, name)
        dotted = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
        out[dotted[:-len(".__init__")] if dotted.endswith(".__init__") else dotted] = path
  return out


def import_graph():
  """{module: the package modules it imports}, from every import statement (functions too).

  Importing a.b.c runs a/__init__ and a/b/__init__ first, so those count as imported too,
  except the packages that contain the importing module (Python has begun them already).
  """
  modules = _modules()
  graph = {}
  for name, path in modules.items():
    with open(path, encoding="utf-8") as f:
      tree = ast.parse(f.read())
    package = name if path.endswith("__init__.py") else name.rsplit(".", 1)[0]
    targets = set()
    for node in ast.walk(tree):
      if isinstance(node, ast.Import):
        targets.update(a.name for a in node.names)
      elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
          parts = package.split(".")
          base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
        for alias in node.names:
          full = f"{base}.{alias.name}"
          targets.add(full if full in modules else base)
    edges = set()
    for target in targets:
      if not target.startswith("tfgrec"):
        continue
      while target not in modules and "." in target:  # An attribute of a module.
        target = target.rsplit(".", 1)[0]
      parts = target.split(".")
      for i in range(1, len(parts) + 1):
        step = ".".join(parts[:i])
        if step in modules and step != name and not name.startswith(step + "."):
          edges.add(step)
    graph[name] = edges
  return graph


def _cycles(graph):
  """The strongly connected components of more than one module (Tarjan)."""
  index, low, stack, on_stack, out = {}, {}, [], set(), []

  def visit(v):
    index[v] = low[v] = len(index)
    stack.append(v)
    on_stack.add(v)
    for w in graph[v]:
      if w not in index:
        visit(w)
        low[v] = min(low[v], low[w])
      elif w in on_stack:
        low[v] = min(low[v], index[w])
    if low[v] == index[v]:
      component = []
      while True:
        w = stack.pop()
        on_stack.discard(w)
        component.append(w)
        if w == v:
          break
      if len(component) > 1:
        out.append(sorted(component))

  for v in sorted(graph):
    if v not in index:
      visit(v)
  return out


def _floor(name):
  parts = name.split(".")
  for i in range(len(parts), 0, -1):
    key = ".".join(parts[:i])
    if key in FLOORS:
      return FLOORS[key]
  raise KeyError(f"{name} has no floor in FLOORS: add its package")


def test_the_graph_sees_imports_inside_functions():
  # The run orchestration imports the library; a lazy import in a function counts as well.
  graph = import_graph()
  assert "tfgrec.train.two_stage" in graph["tfgrec.train.trainer"]
  assert "tfgrec.train.exporter" in graph["tfgrec.cli"]  # Inside `_export`.
  assert "tfgrec.train" in graph["tfgrec.cli"]  # Its package's __init__ runs first.


def test_the_import_graph_has_no_cycle():
  assert _cycles(import_graph()) == []


def test_a_cycle_would_be_found():
  assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_each_layer_imports_only_the_layers_above_it():
  graph = import_graph()
  upward = [f"{a} (floor {_floor(a)}) imports {b} (floor {_floor(b)})"
            for a, targets in sorted(graph.items()) for b in sorted(targets)
            if _floor(b) > _floor(a)]
  assert upward == []
