"""The public API is the checked-in symbol list: every change to it shows up in review.

After an intended change, regenerate the list with
  .venv/bin/python -m tests.test_public_api > tests/api_symbols.txt
"""
import importlib
import os

PACKAGES = ("tfgrec", "tfgrec.data", "tfgrec.graph", "tfgrec.beam", "tfgrec.text",
            "tfgrec.layers", "tfgrec.eval", "tfgrec.models", "tfgrec.tasks", "tfgrec.train",
            "tfgrec.export", "tfgrec.batch", "tfgrec.serving", "tfgrec.sources",
            "tfgrec.ranking")
LIST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "api_symbols.txt")


def live_symbols():
  out = []
  for name in PACKAGES:
    module = importlib.import_module(name)
    for symbol in sorted(vars(module)):
      value = getattr(module, symbol)
      if symbol.startswith("_") or (getattr(value, "__name__", "").startswith(name + ".") and
                                    type(value).__name__ == "module"):
        continue
      out.append(f"{name}.{symbol}")
  return out


def test_public_api_matches_the_checked_in_list():
  with open(LIST) as f:
    listed = [line.strip() for line in f if line.strip() and not line.startswith("#")]
  assert live_symbols() == listed, "\n".join(sorted(set(live_symbols()) ^ set(listed)))


if __name__ == "__main__":
  print("# Public symbols of tfgrec (tests/test_public_api.py keeps this list true).")
  print("\n".join(live_symbols()))
