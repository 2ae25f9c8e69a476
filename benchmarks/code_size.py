"""Code size of the project: the figures issue 22's redesign is held to.

    python benchmarks/code_size.py [--json]

Counts the code lines of ``src/`` and ``dags/`` as ``ruff format`` leaves them: every line
that is not blank and not only a comment (docstrings count: they are read as code is).
Lists the modules over 500 lines and the functions over 80 (migrations aside), as the style
guide asks modules that name one job and functions that fit on a screen.
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import subprocess
import sys
import tempfile
import tokenize
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROOTS = ("src", "dags")
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80


def code_lines(source: str) -> int:
    """Lines holding a token other than a comment or a line break."""
    lines: set[int] = set()
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT,
            tokenize.DEDENT, tokenize.ENDMARKER}  # fmt: skip
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in skip:
            lines.update(range(token.start[0], token.end[0] + 1))
    return len(lines)


def long_functions(source: str, path: str) -> list[tuple[str, int]]:
    """(``path:name``, lines) of each function longer than the limit."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                found.append((f"{path}:{node.name}", length))
    return found


def formatted_copy() -> Path:
    """The roots copied to a temporary folder and formatted by ruff, as the rule counts."""
    target = Path(tempfile.mkdtemp(prefix="volforecast-size-"))
    for root in ROOTS:
        subprocess.run(["cp", "-r", str(REPO / root), str(target / root)], check=True)
    ruff = Path(sys.executable).with_name("ruff")
    subprocess.run([str(ruff), "format", "--quiet", "--config", str(REPO / "pyproject.toml"),
                    *ROOTS], cwd=target, check=True)  # fmt: skip
    return target


def measure(folder: Path) -> dict[str, object]:
    total, big_modules, big_functions = 0, [], []
    for root in ROOTS:
        for path in sorted((folder / root).rglob("*.py")):
            source = path.read_text()
            name = str(path.relative_to(folder))
            total += code_lines(source)
            if "migrations" in path.parts:
                continue
            lines = source.count("\n")
            if lines > MAX_MODULE_LINES:
                big_modules.append((name, lines))
            big_functions += long_functions(source, name)
    return {"code_lines": total, "modules_over_500": big_modules,
            "functions_over_80": sorted(big_functions, key=lambda f: -f[1])}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    figures = measure(formatted_copy())
    if args.json:
        print(json.dumps(figures, indent=1))
        return 0
    print(f"code lines in {'/ and '.join(ROOTS)}/ (ruff-formatted, no blanks or comments): "
          f"{figures['code_lines']}")  # fmt: skip
    print(f"modules over {MAX_MODULE_LINES} lines (migrations aside):")
    for name, lines in figures["modules_over_500"]:  # type: ignore[attr-defined]
        print(f"  {lines:5d}  {name}")
    print(f"functions over {MAX_FUNCTION_LINES} lines (migrations aside):")
    for name, lines in figures["functions_over_80"]:  # type: ignore[attr-defined]
        print(f"  {lines:5d}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
