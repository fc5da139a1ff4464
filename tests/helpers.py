"""Small helpers for CLI tests."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from merbench.cli.app import app

runner = CliRunner()


def cli(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def one_line_error(result) -> str:
    """Assert exit 2 with exactly one 'error: ...' line and no traceback; return it."""
    out = result.output if result.stderr is None else result.stderr
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    lines = [line for line in out.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, out
    return errors[0]


def write_recipe(path: Path, recipe: dict, command: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = f"# merbench train {command or path}\n"
    path.write_text(header + yaml.safe_dump(recipe, sort_keys=False))
    return path


def tiny_recipe(model: str = "mlp_tiny", **train) -> dict:
    return {
        "dataset": {"name": "synthetic", "n_dialogues": 20, "n_utterances": 300, "audio_dim": 8,
                    "text_dim": 12, "vision_dim": 8, "seed": 0},
        "model": {"name": model},
        "train": {"max_epochs": 4, "patience": 4, "batch_size": 32, "threads": 1, **train},
    }


def result_record(**parts):
    """A ``merbench.results.Result`` as ``read_result`` gives it, from a complete small file in
    which ``parts`` replace top-level keys (a dict part is merged into the template's)."""
    from merbench.results import SCHEMA_VERSION, Result

    data = {"schema_version": SCHEMA_VERSION, "run_id": "r", "status": "ok", "created_utc": "2026-01-01T00:00:00+00:00",
            "command": ["merbench"], "provenance": {},
            "recipe": {"dataset": {"name": "synthetic", "modalities": ["audio", "text"]}, "model": {"name": "mlp"},
                       "train": {}},
            "recipe_hash": "h", "seed": 0,
            "dataset": {"name": "synthetic", "task": "classification", "protocol": None,
                        "modalities": ["audio", "text"], "dims": {}, "fingerprint": "f" * 64, "label_names": []},
            "model": {"name": "mlp"},
            "selection": {"split": "valid", "metric": "wf1", "best_epoch": 1, "best_value": 0.0, "epochs_run": 1},
            "metrics": {}}
    for key, value in parts.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) and isinstance(data.get(key), dict) else value
    return Result.from_json(data, Path("runs") / data["run_id"] / "result.json")
