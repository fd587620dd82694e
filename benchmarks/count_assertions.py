"""Count the assertions of the test suite and the notebooks.

Counted: ``assert`` statements, ``pytest.raises`` / ``pytest.warns`` calls, and every call of a
function whose name starts with ``assert_`` (``np.testing.assert_allclose``,
``xr.testing.assert_equal``, ``mock.assert_called_once``, ...), in every ``tests/**/*.py`` file
and in the code cells of ``notebooks/*.ipynb`` (a cell that does not parse is skipped).  A
parametrised test counts once: this is a count of checks written, not of checks run.

Usage: ``python benchmarks/count_assertions.py [REPO]`` (default: the current directory); prints
``tests: N  notebooks: M  total: N+M``.
"""

import ast
import json
import pathlib
import sys


def count(src: str) -> int:
    """Assertions in one piece of Python source."""
    n = 0
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.Assert):
            n += 1
        elif isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            if name in ("raises", "warns") or name.startswith("assert_"):
                n += 1
    return n


def main(root: pathlib.Path) -> str:
    tot_py = sum(count(p.read_text()) for p in (root / "tests").rglob("*.py"))
    tot_nb = 0
    for p in (root / "notebooks").glob("*.ipynb"):
        for c in json.loads(p.read_text())["cells"]:
            if c["cell_type"] == "code":
                try:
                    tot_nb += count("".join(c["source"]))
                except SyntaxError:
                    pass
    return f"tests: {tot_py}  notebooks: {tot_nb}  total: {tot_py + tot_nb}"


if __name__ == "__main__":
    print(main(pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".")))
