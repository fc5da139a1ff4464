"""Regenerate tests/golden/models.json: ``python scripts/make_golden.py [MODEL ...]``.

Run it only for a change that is meant to move a model's numbers, and say so in the commit.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from golden_models import golden, tiny_models  # noqa: E402

path = ROOT / "tests" / "golden" / "models.json"
pinned = json.loads(path.read_text()) if path.exists() else {}
names = sys.argv[1:] or tiny_models()
pinned = {k: v for k, v in pinned.items() if k in tiny_models()}
for name in names:
    pinned[name] = golden(name)
    print(f"{name}: {pinned[name]['parameters']:,} parameters")
path.parent.mkdir(parents=True, exist_ok=True)
path.write_text(json.dumps(dict(sorted(pinned.items())), indent=1) + "\n")
