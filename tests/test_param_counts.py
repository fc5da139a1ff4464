"""Parameter counts in docs/ and README.md are the code's: scripts/param_counts.py builds each
documented setting and compares; a count it does not know is an error too."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "param_counts.py"


@pytest.fixture(scope="module")
def counts():
    spec = importlib.util.spec_from_file_location("param_counts", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def test_every_stated_count_is_the_codes(counts):
    problems = counts.check()
    assert not problems, "run python scripts/param_counts.py --write:\n" + "\n".join(problems)


def test_every_count_in_the_docs_is_checked(counts):
    unknown = counts.mentioned() - counts.covered() - set(counts.NOT_FROM_CODE)
    assert not unknown, f"parameter counts not in scripts/param_counts.py COUNTS (or NOT_FROM_CODE): {sorted(unknown)}"
    stale = set(counts.NOT_FROM_CODE) - counts.mentioned()
    assert not stale, f"NOT_FROM_CODE names numbers the docs no longer state: {sorted(stale)}"


def test_a_wrong_count_is_found_and_rewritten(counts, tmp_path, monkeypatch):
    doc = tmp_path / "docs" / "models" / "x.md"
    doc.parent.mkdir(parents=True)
    doc.write_text("## Size\nfull 1,000,454 and 9.99M; heads 1 / 2: 1 / 2\n")
    monkeypatch.setattr(counts, "ROOT", tmp_path)
    setting = counts.S("mlp_tiny", {"text": 8}, 2)
    n = counts.count(setting)
    monkeypatch.setattr(counts, "COUNTS", [counts.Count("docs/models/x.md", "full ", (setting,)),
                                           counts.Count("docs/models/x.md", "and ", (setting,))])
    problems = counts.check()
    assert problems == [f"docs/models/x.md: 1,000,454 -> {n:,} (after 'full')",
                        f"docs/models/x.md: 9.99M -> {n / 1e6:.2f}M (after 'and')"]
    counts.check(write=True)
    assert doc.read_text().startswith(f"## Size\nfull {n:,} and {n / 1e6:.2f}M;") and not counts.check()
