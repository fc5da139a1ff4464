"""CLI surface: every --help, listings, table formats, the regression check."""

from __future__ import annotations

import errno
import json
import re
import shutil
from pathlib import Path

import pytest
import typer.main

from merbench.cli.app import app

from helpers import cli, one_line_error, tiny_recipe, write_recipe


def _command_paths(group, prefix=()):
    for name, cmd in getattr(group, "commands", {}).items():
        yield prefix + (name,)
        yield from _command_paths(cmd, prefix + (name,))


COMMANDS = sorted(_command_paths(typer.main.get_command(app)))


def test_command_list_is_complete():
    names = {c[0] for c in COMMANDS}
    assert {"train", "evaluate", "table", "check", "models", "datasets", "recipes"} <= names


@pytest.mark.parametrize("path", [()] + COMMANDS, ids=lambda p: " ".join(p) or "merbench")
def test_every_help(path):
    result = cli(*path, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_models_and_datasets_come_from_the_registry():
    from merbench.registry import DATASETS, MODELS

    out = cli("models", "--tiny").output
    for name in MODELS.names():
        assert name in out
    out = cli("datasets").output
    for name in DATASETS.names():
        assert name in out


@pytest.mark.parametrize("columns", [None, "80", "40"])
def test_listings_never_cut_a_name(monkeypatch, columns):
    """`merbench models | cat` and a terminal of 80 (or 40) columns: every model, class and
    ablation component name whole (the names --drop and train need), summaries readable."""
    from merbench.models.build import model_class
    from merbench.registry import MODELS

    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    MODELS.load()
    out = cli("models", "--tiny")
    assert out.exit_code == 0, out.output
    words = set(out.stdout.replace(",", " ").split())
    for name in MODELS.names():
        cls = model_class(name)
        assert {name, cls.__name__, *cls.components} <= words, name
    assert "…" not in out.stdout and "``" not in out.stdout
    lines = out.stdout.splitlines()
    if columns == "80":
        assert max(len(line.rstrip()) for line in lines) <= 80
    if columns is None:  # piped: one line per model, its summary on it
        (row,) = [line for line in lines if line.startswith("│ mfn ")]
        assert "Memory Fusion Network" in row and row.rstrip().endswith("│")
    # variants of one class say what they are, not their parent's summary
    summaries = {line.split()[1]: line for line in lines if line.startswith("│ ")} if columns is None else {}
    if summaries:
        assert "Late fusion" in summaries["late_mlp"] and "Early fusion" in summaries["mlp"]
        assert "BiDialogueRNN" in summaries["bidialoguernn"] and "BiDialogueRNN" not in summaries["dialoguernn"]
    out = cli("datasets")
    assert out.exit_code == 0 and "synthetic_mosei" in out.stdout.split() and "…" not in out.stdout


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("seeds")
    path = write_recipe(tmp / "r.yaml", tiny_recipe("mlp_tiny", max_epochs=2))
    for seed in (0, 1):
        assert cli("train", path, "--out", tmp / "runs", "--quiet", "--set", f"train.seed={seed}").exit_code == 0
    return tmp


def test_table_counts_each_run_once(two_seeds, tmp_path, caplog):
    """A folder named twice, a run named beside its folder, or a copy of a run folder (same run
    id) is one run: two seeds stay n = 2, not 3 or 4 with a std over copies."""
    runs = two_seeds / "runs"
    first = sorted(runs.iterdir())[0]
    shutil.copytree(first, tmp_path / "copy")
    for args in ([runs, runs], [runs, first], [runs, tmp_path / "copy"]):
        result = cli("table", *args, "--format", "json")
        assert result.exit_code == 0, result.output
        assert '"n": 2' in result.output and '"n": 3' not in result.output and '"n": 4' not in result.output
    assert any("counted once" in r.getMessage() and "copy" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("fmt, marker, n", [("rich", "WF1", "(2)"), ("markdown", "| mlp_tiny", "(2)"),
                                            ("latex", "\\begin{tabular}", "over 2 runs"),
                                            ("csv", "Model,Happy F1 mean,Happy F1 std,Happy F1 n", ",2,"),
                                            ("json", '"mean":', '"n": 2')])
def test_table_formats_aggregate_seeds(two_seeds, fmt, marker, n):
    result = cli("table", two_seeds / "runs", "--format", fmt)
    assert result.exit_code == 0, result.output
    assert marker in result.output
    assert n in result.output  # mean ± std over n = 2 seeds in one row
    if fmt == "csv":
        assert len(result.output.strip().splitlines()) == 2


@pytest.mark.parametrize("columns", [None, "50"])
def test_rich_table_never_cuts_a_name(two_seeds, monkeypatch, columns):
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    out = cli("table", two_seeds / "runs")
    assert out.exit_code == 0, out.output
    assert "…" not in out.stdout
    assert {"mlp_tiny", "Frustrated", "Neutral", "Excited"} <= set(out.stdout.split())
    title = out.stdout.splitlines()[0]
    assert title.strip() == "synthetic (test, layout iemocap: HFF Table 3)"  # one line, never wrapped
    if columns is None:  # piped: the row is one line
        assert len([line for line in out.stdout.splitlines() if "mlp_tiny" in line]) == 1


def test_table_bad_options(two_seeds):
    assert "--format html: expected one of" in one_line_error(cli("table", two_seeds / "runs", "--format", "html"))
    assert "--layout wide: expected one of" in one_line_error(cli("table", two_seeds / "runs", "--layout", "wide"))


def test_check_passes_then_fails_on_a_planted_regression(two_seeds, tmp_path):
    ref = tmp_path / "ref.json"
    assert cli("check", two_seeds / "runs", "--against", ref, "--update").exit_code == 0
    ok = cli("check", two_seeds / "runs", "--against", ref)
    assert ok.exit_code == 0 and "ok:" in ok.output
    data = json.loads(ref.read_text())
    (entry,) = data["entries"].values()
    entry["metrics"]["wf1"]["reference"] += entry["metrics"]["wf1"]["tolerance"] + 5  # results now look 5 points worse
    ref.write_text(json.dumps(data))
    bad = cli("check", two_seeds / "runs", "--against", ref)
    assert bad.exit_code == 1
    assert "regression" in bad.output and "wf1" in bad.output and "acc " not in bad.output


def test_check_counts_compared_metrics_and_names_new_entries_apart(two_seeds, tmp_path):
    ref = tmp_path / "ref.json"
    assert cli("check", two_seeds / "runs", "--against", ref, "--update").exit_code == 0
    path = two_seeds / "r.yaml"
    for lr in ("0.001", "0.003"):  # two entries the reference lacks, alike but for lr
        assert cli("train", path, "--out", tmp_path / "new", "--quiet", "--set", f"train.lr={lr}").exit_code == 0
    out = cli("check", two_seeds / "runs", tmp_path / "new", "--against", ref)
    assert out.exit_code == 0, out.output
    # 2 metrics (acc, wf1) compared; the new entries are not counted as checked
    assert ("ok: 2 metric(s) within tolerance of" in out.stdout
            and "2 new entries not in the reference, not checked" in out.stdout)
    new = [line for line in out.stdout.splitlines() if line.rstrip().endswith("new")]
    assert len(new) == 2 and "(lr=0.001)" in new[0] + new[1] and "(lr=0.003)" in new[0] + new[1]
    assert all("entry " in line for line in new)


def test_check_change_is_the_difference_of_the_shown_numbers(two_seeds, tmp_path):
    ref = tmp_path / "ref.json"
    assert cli("check", two_seeds / "runs", "--against", ref, "--update").exit_code == 0
    data = json.loads(ref.read_text())
    (entry,) = data["entries"].values()
    for spec in entry["metrics"].values():
        spec["reference"] += 0.0004  # the result is 0.0004 below: a change smaller than the digits shown
    ref.write_text(json.dumps(data))
    out = cli("check", two_seeds / "runs", "--against", ref)
    assert out.exit_code == 0, out.output
    assert "-0.000" not in out.stdout
    rows = [line.split() for line in out.stdout.splitlines() if line.rstrip().endswith(" ok")]
    assert len(rows) == 2
    for row in rows:  # entry..., metric, reference, tolerance, got, change, status
        reference, got, change = float(row[-5]), float(row[-3]), row[-2]
        assert change == f"{got - reference:+.3f}"


def test_check_entries_outlive_a_new_train_key_at_its_default():
    """A train key added later, at a default that keeps the old behaviour, leaves the
    reference's entries in place; a value off its default is another entry."""
    from merbench.aggregate import Group
    from merbench.check import entry_id
    from merbench.recipe import TRAIN_DEFAULTS

    old = {"dataset": {"name": "synthetic"}, "model": {"name": "mlp"}, "train": {"lr": 1e-3, "patience": 5}}
    new = json.loads(json.dumps(old))
    new["train"]["lr_schedule_on"] = TRAIN_DEFAULTS["lr_schedule_on"]
    new["train"]["patience"] = TRAIN_DEFAULTS["patience"]
    assert entry_id(Group("a", old)) == entry_id(Group("b", new))
    new["train"]["lr_schedule_on"] = "loss"
    assert entry_id(Group("a", old)) != entry_id(Group("b", new))
    assert entry_id(Group("a", old)) != entry_id(Group("c", {**old, "model": {"name": "tfn"}}))


def test_check_bad_reference(two_seeds, tmp_path):
    assert "no such reference file" in one_line_error(cli("check", two_seeds / "runs", "--against", tmp_path / "x.json"))
    (tmp_path / "x.json").write_text("[1, 2]")
    assert "not a merbench reference file" in one_line_error(cli("check", two_seeds / "runs", "--against", tmp_path / "x.json"))


def _no_permission(*args, **kwargs):
    raise PermissionError(errno.EACCES, "Permission denied")


@pytest.mark.parametrize("where", ["under a file", "not writable"])
def test_check_update_into_a_folder_that_cannot_be_written(two_seeds, tmp_path, monkeypatch, where):
    """One line and exit 2, never a traceback; the reference already there is kept whole. The
    tests run as root, whom mode bits do not stop: "not writable" makes the temporary file's
    creation fail as it does for a user without write permission."""
    if where == "under a file":
        (tmp_path / "file").write_text("")
        ref = tmp_path / "file" / "ref.json"
    else:
        ref = tmp_path / "ref.json"
        assert cli("check", two_seeds / "runs", "--against", ref, "--update").exit_code == 0
        monkeypatch.setattr("tempfile.mkstemp", _no_permission)
    before = ref.read_bytes() if ref.exists() else None
    error = one_line_error(cli("check", two_seeds / "runs", "--against", ref, "--update", "--tolerance", "3"))
    assert error.startswith(f"error: {ref}: cannot write the reference (") and "nothing was changed" in error
    if where == "under a file":  # found before any write (merbench.atomic.output_file)
        assert f"({tmp_path / 'file'} is a file, not a folder;" in error
    assert (ref.read_bytes() if before is not None else None) == before


def test_recipes_validate_reports_bad_file(tmp_path):
    good = write_recipe(tmp_path / "good.yaml", tiny_recipe())
    assert cli("recipes", "validate", good).exit_code == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("# merbench train bad.yaml\ndataset: {name: synthetic}\nmodel: {name: tnf}\n")
    result = cli("recipes", "validate", bad)
    assert result.exit_code == 2 and "did you mean 'tfn'" in result.output
    nohead = tmp_path / "nohead.yaml"
    nohead.write_text("dataset: {name: synthetic}\nmodel: {name: tfn}\n")
    result = cli("recipes", "validate", nohead)
    assert result.exit_code == 2 and "line 1: expected a comment giving the command" in result.output


def test_a_merbench_option_after_the_command_says_where_it_goes(tmp_path):
    error = one_line_error(cli("models", "--plugin", tmp_path / "x.py"))
    assert "No such option: --plugin" in error
    assert "goes before the command: " in error and "--plugin ... models" in error


@pytest.mark.parametrize("path", [()] + COMMANDS, ids=lambda p: " ".join(p) or "merbench")
def test_help_shows_no_python_types(path):
    out = cli(*path, "--help").output
    for python in ("<bool>", "<list[", "<str>", "<int", "<float>", "<path>", "<Path>"):
        assert python not in out, (python, out)


def test_an_unknown_model_lists_no_tiny_variants(two_seeds):
    error = one_line_error(cli("train", two_seeds / "r.yaml", "--set", "model.name=mlpp"))
    assert "did you mean 'mlp'?" in error and "late_mlp" in error
    assert "_tiny" not in error and "tiny test variants: merbench models --tiny" in error


def test_an_unknown_recipe_names_the_nearest_few_and_how_to_list(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    error = one_line_error(cli("train", "synthetic/nope"))
    nearest = error.split("nearest: ")[1].split(" (")[0].split(", ")
    assert 1 <= len(nearest) <= 3 and all(n.startswith("synthetic/") for n in nearest)
    assert error.count("synthetic/") <= 5  # not every packaged recipe
    assert error.endswith("(every packaged recipe: merbench recipes list)")
    listed = cli("recipes", "list", "synthetic")
    assert listed.exit_code == 0 and "synthetic/hff" in listed.stdout and "iemocap/" not in listed.stdout
    assert "datasets with recipes: " in one_line_error(cli("recipes", "list", "nope"))


@pytest.mark.parametrize("given, meant", [("sound", "audio"), ("speech", "audio"), ("video", "vision"),
                                          ("visoin", "vision"), ("language", "text")])
def test_an_unknown_modality_suggests_what_it_means(two_seeds, given, meant):
    run = next((two_seeds / "runs").iterdir())
    error = one_line_error(cli("evaluate", run, "--missing", given))
    assert f"(did you mean {meant!r}?)" in error


# --- The docs and --help agree ---------------------------------------------------------------

DOCS = Path(__file__).resolve().parents[1] / "docs"
COMMAND_DOCS = sorted((DOCS / "commands").glob("*.md")) + [DOCS / "extract.md", DOCS / "finetune.md"]
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def _real_options(path: tuple[str, ...]) -> set[str]:
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return {o for p in command.params for o in [*getattr(p, "opts", []), *getattr(p, "secondary_opts", [])]
            if o.startswith("--")} | {"--help"}


def _usages(text: str) -> list[str]:
    """Every `merbench ...` command line of a doc: lines of code blocks (with their
    continuation lines) and inline code spans."""
    out, block, lines = [], False, text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            block = not block
        elif block and re.match(r"\s*merbench ", line):
            full = line
            while i + 1 < len(lines) and (full.rstrip().endswith("\\") or re.match(r"\s+[\[(-]", lines[i + 1])):
                i += 1
                full = full.rstrip().rstrip("\\") + " " + lines[i]
            out.append(full.split(" #")[0])
        elif not block:
            out += re.findall(r"`(merbench [^`]*)`", line)
        i += 1
    return out


def _commands_of(usage: str) -> list[tuple[str, ...]]:
    """The command(s) a usage line runs: the longest command path after `merbench`, or each
    of `merbench ablate | heads-sweep | compare ...`."""
    words = usage.split()[1:]
    if len(words) > 2 and words[1] == "|":
        names = [words[0]] + [words[j + 1] for j in range(1, len(words) - 1, 2) if words[j] == "|"]
        return [(n,) for n in names if (n,) in COMMANDS]
    for k in (2, 1):
        if tuple(words[:k]) in COMMANDS:
            return [tuple(words[:k])]
    return []


def _documented() -> dict[tuple[str, ...], dict[Path, set[str]]]:
    """command -> doc -> the options its usage lines there name."""
    out: dict = {}
    for doc in COMMAND_DOCS:
        for usage in _usages(doc.read_text()):
            for path in _commands_of(usage):
                out.setdefault(path, {}).setdefault(doc, set()).update(OPTION.findall(usage))
    return out


def test_every_documented_option_is_a_real_option():
    documented = _documented()
    assert {("train",), ("table",), ("robustness",), ("ablate",), ("extract",), ("recipes", "list")} <= set(documented)
    wrong = {(" ".join(path), doc.name, o) for path, docs in documented.items() for doc, opts in docs.items()
             for o in opts - _real_options(path) - {"--plugin", "--version"}}
    assert not wrong, sorted(wrong)


def test_every_real_option_is_documented():
    """Each option of a command is named in the docs whose usage lines show the command."""
    documented = _documented()
    missing = []
    for path in COMMANDS:
        options = _real_options(path) - {"--help"}
        if not options:
            continue
        assert path in documented, f"merbench {' '.join(path)} has no usage line in docs/"
        text = " ".join(doc.read_text() for doc in documented[path])
        missing += [(" ".join(path), o) for o in sorted(options) if not re.search(re.escape(o) + r"(?![\w-])", text)]
    assert not missing, missing


def test_top_level_help_gives_each_command_one_whole_sentence(monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    out = cli("--help").output
    root = typer.main.get_command(app)
    for name, command in root.commands.items():
        first = (command.help or "").strip().split("\n\n")[0]
        assert "\n" not in first and first.endswith("."), (name, first)
        assert first in out, (name, first)


def test_docs_say_what_help_says_of_figure_formats_and_default_folders():
    root = typer.main.get_command(app)
    helps = {p.name: p.help for p in root.commands["robustness"].params}
    assert "(PNG, PDF or SVG by the suffix)" in helps["figure"]
    assert "as PNG, PDF or SVG by the\npath's suffix" in (DOCS / "commands" / "robustness.md").read_text()
    (paths,) = root.commands["recipes"].commands["validate"].params
    assert "default: ./recipes when present, else the packaged recipes" in paths.help
    assert "default: ./recipes when present, else the packaged recipes" in (DOCS / "commands" / "recipes.md").read_text()
