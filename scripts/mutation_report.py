"""Summarise one mutmut run for scripts/mutation.sh.

Reads ``mutmut results --all true`` (one ``name: status`` line per mutant), keeps the mutants of
the entry's functions, and prints killed / survived and the score over the non-equivalent
mutants: a survivor is equivalent when docs/testing.md lists its name under "Equivalent
mutants"; one listed under "Accepted survivors" is known but counts against the score. Prints
the diff of every other survivor, appends the entry's line to build/mutation/summary.md, and
exits 1 when there is such a survivor or the score is under 90 %.

    python scripts/mutation_report.py ENTRY RESULTS_TXT SECONDS WORKDIR [PATTERN ...]

With ``--restrict FILE FUNCTION REGEX`` it instead marks ``# pragma: no mutate`` on every line
of FUNCTION in FILE (the scratch copy's) that REGEX does not match: an entry can mutate only
some lines of a long function (the selection and early-stopping lines of the training loop).
"""

from __future__ import annotations

import ast
import fnmatch
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NAME = re.compile(r"merbench\.[\w.ǁ]+__mutmut_\d+")
MIN_SCORE = 90.0  # percent of the non-equivalent mutants killed


def main() -> int:
    entry, results, seconds, workdir, *patterns = sys.argv[1:]
    lines = [p[len("lines:"):] for p in patterns if p.startswith("lines:")]
    patterns = [p for p in patterns if not p.startswith("lines:")]
    status: dict[str, str] = {}
    for line in Path(results).read_text().splitlines():
        m = re.match(r"\s*(merbench\.[\w.]+__mutmut_\d+): (.+)$", line)
        if m and (not patterns or any(fnmatch.fnmatch(m[1], p) for p in patterns)):
            status[m[1]] = m[2].strip()
    for spec in lines:  # FUNCTION=REGEX: of FUNCTION, only the mutants that change a matching line
        function, regex = spec.split("=", 1)
        outside = _outside_lines(Path(workdir), status, function, re.compile(regex))
        print(f"   {function}: {len(outside)} mutants on lines outside {regex!r} left out")
        for name in outside:
            del status[name]
    if not status:
        print(f"error: {entry}: no mutant results in {results}", file=sys.stderr)
        return 2
    docs = ROOT / "docs" / "testing.md"
    text = docs.read_text() if docs.exists() else ""
    equivalent = set(NAME.findall(_section(text, "### Equivalent mutants")))
    accepted = set(NAME.findall(_section(text, "### Accepted survivors")))  # not equivalent, counted
    counts = Counter(status.values())
    survived = sorted((n for n, s in status.items() if s != "killed"), key=_natural)
    listed = [n for n in survived if n in equivalent]
    unexplained = [n for n in survived if n not in equivalent and n not in accepted]
    scored = len(status) - len(listed)
    score = 100 * counts["killed"] / scored if scored else 100.0
    line = (f"{entry}: {len(status)} mutants, {counts['killed']} killed, {len(survived)} not killed "
            f"({len(listed)} equivalent, listed in docs/testing.md), score {score:.1f} % of "
            f"{scored} non-equivalent, {seconds} s")
    print(line)
    print("   statuses: " + ", ".join(f"{s} {c}" for s, c in sorted(counts.items())))
    for name in unexplained:
        diff = subprocess.run([str(Path(sys.executable).parent / "mutmut"), "show", name], cwd=workdir,
                              capture_output=True, text=True).stdout
        changed = [d for d in diff.splitlines() if d[:1] in "+-" and d[:3] not in ("+++", "---")]
        print(f"   NOT KILLED {name} ({status[name]}): " + " / ".join(c.strip() for c in changed))
    with (ROOT / "build" / "mutation" / "summary.md").open("a") as f:
        f.write(f"| {entry} | {len(status)} | {counts['killed']} | {len(listed)} | {len(unexplained)} "
                f"| {score:.1f} % | {seconds} s |\n")
    return 1 if unexplained or score < MIN_SCORE else 0


def _section(text: str, heading: str) -> str:
    """The text under ``heading`` up to the next heading."""
    return text.partition(heading)[2].split("\n#")[0]


def _outside_lines(workdir: Path, status: dict, function: str, keep: re.Pattern) -> list[str]:
    """Mutants of ``function`` none of whose changed source lines ``keep`` matches, read from the
    mutated copy mutmut writes (each mutant is a whole copy of the function)."""
    prefix = f"x_{function}__mutmut_"
    names = [n for n in status if n.rsplit(".", 1)[1].startswith(prefix)]
    if not names:
        return []
    module = names[0].rsplit(".", 1)[0]
    source = (workdir / "mutants" / (module.replace(".", "/") + ".py")).read_text()
    bodies = {m[1]: m[2] for m in re.finditer(rf"^def ({re.escape(prefix)}\w+)\(.*?\n(.*?)(?=^\S)", source, re.S | re.M)}
    original = bodies[prefix + "orig"].splitlines()
    outside = []
    for name in names:
        mutated = bodies[name.rsplit(".", 1)[1]].splitlines()
        changed = [a for a, b in zip(original, mutated) if a != b] + original[len(mutated):]
        if not any(keep.search(c.split("# pragma: no mutate")[0]) for c in changed):
            outside.append(name)
    return outside


def restrict(path: str, function: str, regex: str) -> int:
    source = Path(path).read_text()
    lines = source.splitlines()
    defs = [n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.FunctionDef) and n.name == function]
    if len(defs) != 1:
        print(f"error: {path}: expected one function {function!r}, found {len(defs)}", file=sys.stderr)
        return 2
    node, keep = defs[0], re.compile(regex)
    kept = 0
    for i in range(node.body[0].lineno - 1, node.end_lineno):
        if not lines[i].strip() or lines[i].rstrip().endswith("\\"):
            continue
        if keep.search(lines[i]):
            kept += 1
        else:
            lines[i] += "  # pragma: no mutate"
    Path(path).write_text("\n".join(lines) + "\n")
    print(f"   {function}: mutating the {kept} lines that match {regex!r}")
    return 0 if kept else 2


def _natural(name: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


if __name__ == "__main__":
    sys.exit(restrict(*sys.argv[2:]) if sys.argv[1] == "--restrict" else main())
