"""Parameter counts in the docs, computed from the code.

Every parameter count that docs/ or README.md states is listed in ``COUNTS`` below with the
model, input sizes, outputs and arguments the text names. The script builds each model and
compares its count with the number printed after the given text; ``--write`` rewrites the
docs' numbers instead. tests/test_param_counts.py runs the check, so a model change that moves
a count fails until the docs say the new number.

    python scripts/param_counts.py            # check: list every stated count that is wrong (exit 1)
    python scripts/param_counts.py --write    # rewrite the docs' numbers from the code
    python scripts/param_counts.py --list     # every count with its source line

A number is written as the doc writes it: ``1,266,706`` exactly, ``1.05M`` or ``13.7 M``
rounded to the same number of decimals. A line may hold several counts separated by `` / ``.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAPER = {"audio": 128, "text": 768, "vision": 512}  # the HFF paper's input sizes (IEMOCAP features)
MOSEI = {"audio": 74, "text": 300, "vision": 35}  # MMSA's MOSEI feature sizes
MINILM = {"text": 768}  # the IEMOCAP recipes' text features: MiniLM's 384 hidden, mean and [CLS]
AUTHORS_TEXT = {"text": 100}
MOSI = {"audio": 73, "text": 100, "vision": 100}  # the bc-LSTM release of CMU-MOSI  # the DialogueRNN / DialogueGCN authors' IEMOCAP text features
NUMBER = r"\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)? ?M|\d+"  # 1,266,706 | 1.05M | 13.7 M | 546


@dataclass(frozen=True)
class Setting:
    """One model as the doc describes it. ``recipe``: the model section of a recipe file
    (``extends`` resolved) under ``args``; ``part``: count one submodule only (a dotted name)."""

    model: str
    dims: dict
    outputs: int
    args: dict = field(default_factory=dict)
    recipe: str | None = None
    part: str | None = None


@dataclass(frozen=True)
class Count:
    """The number(s) right after ``before`` in ``doc`` (several: separated by " / "); ``before``
    followed by a number occurs once in the doc."""

    doc: str
    before: str
    settings: tuple[Setting, ...]


def S(model, dims, outputs=6, part=None, recipe=None, **args) -> Setting:
    return Setting(model, dict(dims), outputs, args, recipe, part)


HFF = dict(audio_cnn=False)
HRDF, MCN = "docs/models/hrdf_mer.md", "docs/models/mcn_cl.md"
GCN = "recipes/iemocap/dialoguegcn.yaml"
RNN = "recipes/iemocap/dialoguernn.yaml"
COG = "recipes/iemocap/cogmen.yaml"

COUNTS = [
    # HFF: docs/models/hff.md, Size, at the paper's input sizes; text only, the IEMOCAP recipe.
    Count("docs/models/hff.md", "| full, `audio_cnn: false` | ", (S("hff", PAPER, **HFF),)),
    Count("docs/models/hff.md", "(73 / 100 / 100-d, 2 classes) HFF has ",
          (S("hff", MOSI, 2, **HFF), S("hff", MOSI, 2, objective="paper", **HFF))),
    Count("docs/models/hff.md", "| full, `audio_cnn: true` | ", (S("hff", PAPER, audio_cnn=True),)),
    Count("docs/models/hff.md", "| `attention: false` | ", (S("hff", PAPER, attention=False, **HFF),)),
    Count("docs/models/hff.md", "(the 4 x ", (S("hff", PAPER, part="attention.0", **HFF),)),
    Count("docs/models/hff.md", "| `dynamic_weighting: false` | ", (S("hff", PAPER, dynamic_weighting=False, **HFF),)),
    Count("docs/models/hff.md", "| `temporal: false` | ", (S("hff", PAPER, temporal=False, **HFF),)),
    Count("docs/models/hff.md", "| `alignment: false` | ", (S("hff", PAPER, alignment=False, **HFF),)),
    Count("docs/models/hff.md", "| `uncertainty: false` | ", (S("hff", PAPER, uncertainty=False, **HFF),)),
    Count("docs/models/hff.md", "| `pre_norm: true` | ", (S("hff", PAPER, pre_norm=True, **HFF),)),
    Count("docs/models/hff.md", "| heads 4 / 6 / 10 | ", tuple(S("hff", PAPER, heads=h, **HFF) for h in (4, 6, 10))),
    Count("docs/models/hff.md", "mean and [CLS], 768-d): ", (S("hff", MINILM, recipe="recipes/iemocap/hff.yaml"),)),
    Count("docs/models/hff.md", "HFF's ", (S("hff", MINILM, recipe="recipes/iemocap/hff.yaml"),)),
    # HRDF-MER and MCN-CL: Size, at the paper's input sizes.
    Count(HRDF, "6 classes: full ", (S("hrdf_mer", PAPER),)),
    Count(HRDF, "`caa: false` ", (S("hrdf_mer", PAPER, caa=False),)),
    Count(HRDF, "`hfe: false` ", (S("hrdf_mer", PAPER, hfe=False),)),
    Count(HRDF, "`cmdf: false` ", (S("hrdf_mer", PAPER, cmdf=False),)),
    Count(HRDF, "`gate: false`\n", (S("hrdf_mer", PAPER, gate=False),)),
    Count(HRDF, "`clc_loss: false` ", (S("hrdf_mer", PAPER, clc_loss=False),)),
    Count(HRDF, "On text only (the IEMOCAP recipe's MiniLM features, 768-d): ",
          (S("hrdf_mer", MINILM, recipe="recipes/iemocap/hrdf_mer.yaml"),)),
    Count(MCN, "6 classes: full ", (S("mcn_cl", PAPER),)),
    Count(MCN, "`triple_query: false` ", (S("mcn_cl", PAPER, triple_query=False),)),
    Count(MCN, "On text only (the IEMOCAP recipe's MiniLM features, 768-d): ",
          (S("mcn_cl", MINILM, recipe="recipes/iemocap/mcn_cl.yaml"),)),
    # MMSA's models at its MOSEI sizes, one output.
    Count("docs/models/tfn.md", "one output): ", (S("tfn", MOSEI, 1),)),
    Count("docs/models/tfn.md", "with BERT text (768): ", (S("tfn", {**MOSEI, "text": 768}, 1),)),
    Count("docs/models/lmf.md", "one output): ", (S("lmf", MOSEI, 1),)),
    Count("docs/models/mfn.md", "one output): ", (S("mfn", MOSEI, 1),)),
    Count("docs/models/mfm.md", "one output): ", (S("mfm", MOSEI, 1),)),
    # ICCN at the paper's input sizes, and its parts.
    Count("docs/models/iccn.md", "with 6 classes: ", (S("iccn", PAPER),)),
    Count("docs/models/iccn.md", "(encoders ", (S("iccn", PAPER, part="encoders"),)),
    Count("docs/models/iccn.md", "two CNN views ", (S("iccn", PAPER, part="views"),)),
    Count("docs/models/iccn.md", "classifier ", (S("iccn", PAPER, part="classifier"),)),
    # COGMEN: the IEMOCAP recipe at the paper's input sizes (1408).
    Count("docs/models/cogmen.md", "| `max_speakers: 2` (IEMOCAP recipe) | ", (S("cogmen", PAPER, recipe=COG),)),
    Count("docs/models/cogmen.md", "| default `max_speakers: 9` | ", (S("cogmen", PAPER, recipe=COG, max_speakers=9),)),
    Count("docs/models/cogmen.md", "10 heads), `max_speakers: 2` | ",
          (S("cogmen", {**PAPER, "audio": 100}, recipe=COG, heads=10),)),
    Count("docs/models/cogmen.md", "(about ", (S("cogmen", PAPER, recipe=COG, part="context.layers.0"),)),
    # DialogueGCN: the IEMOCAP recipe at 1408 inputs, then on text features alone.
    Count("docs/models/dialoguegcn.md", "| recipe (`max_speakers: 2`, `rnn: lstm`) | ", (S("dialoguegcn", PAPER, recipe=GCN),)),
    Count("docs/models/dialoguegcn.md", "| default `max_speakers: 9` | ", (S("dialoguegcn", PAPER, recipe=GCN, max_speakers=9),)),
    Count("docs/models/dialoguegcn.md", "| `max_speakers: 2`, `rnn: gru` | ", (S("dialoguegcn", PAPER, recipe=GCN, rnn="gru"),)),
    Count("docs/models/dialoguegcn.md", "| `max_speakers: 2`, `nodal_attention: false` | ",
          (S("dialoguegcn", PAPER, recipe=GCN, nodal_attention=False),)),
    Count("docs/models/dialoguegcn.md", "| `max_speakers: 2`, `nodal_residual: true` | ",
          (S("dialoguegcn", PAPER, recipe=GCN, nodal_residual=True),)),
    Count("docs/models/dialoguegcn.md", "| recipe on MiniLM text (768-d, as shipped) | ", (S("dialoguegcn", MINILM, recipe=GCN),)),
    Count("docs/models/dialoguegcn.md", "| recipe on the authors' 100-d text features | ",
          (S("dialoguegcn", AUTHORS_TEXT, recipe=GCN),)),
    # DialogueRNN: registered defaults and the IEMOCAP recipe at 1408 inputs, then on text alone.
    Count("docs/models/dialoguernn.md", "| `dialoguernn` (defaults 150/150/100/100) | ", (S("dialoguernn", PAPER),)),
    Count("docs/models/dialoguernn.md", "| `bidialoguernn` (defaults 150/150/100/100) | ", (S("bidialoguernn", PAPER),)),
    Count("docs/models/dialoguernn.md", "| the IEMOCAP recipe: BiModel + Att, 500/500/300/300 | ",
          (S("dialoguernn", PAPER, recipe=RNN),)),
    Count("docs/models/dialoguernn.md", "| the same on MiniLM text (768-d; `recipes/iemocap/dialoguernn.yaml` as shipped) | ",
          (S("dialoguernn", MINILM, recipe=RNN),)),
    Count("docs/models/dialoguernn.md", "| the same on the authors' 100-d text features | ",
          (S("dialoguernn", AUTHORS_TEXT, recipe=RNN),)),
]

# Numbers near "parameters" in docs/ and README.md that are not merbench models' counts at a
# documented setting; tests/test_param_counts.py fails on any other count not in COUNTS.
NOT_FROM_CODE = {
    ("docs/finetune.md", "110M"): "MPNet-base, as its model card states",
    ("docs/models/dialoguegcn.md", "161,400"): "modules the authors' code builds and never uses",
    ("docs/models/tfn.md", "282,897"): "entries of TFN's fused tensor (17 x 129 x 129), not parameters",
    ("docs/authors_code.md", "1,508,130"): "output of benchmarks/authors/cogmen_side.py --check-forward",
    ("docs/authors_code.md", "1,535,671"): "output of benchmarks/authors/cogmen_side.py --check-forward",
}


def recipe_args(path: str) -> dict:
    from merbench.recipe import load_recipe

    model = dict(load_recipe(ROOT / path)["model"])
    model.pop("name")
    return model


def count(setting: Setting) -> int:
    import merbench.models  # noqa: F401  (registers the models)
    import torch
    from merbench.models.build import build_model

    args = {**(recipe_args(setting.recipe) if setting.recipe else {}), **setting.args}
    torch.manual_seed(0)
    model = build_model(setting.model, setting.dims, setting.outputs, **args)
    if setting.part:
        model = model.get_submodule(setting.part)
    return sum(p.numel() for p in model.parameters())


def written(value: int, like: str) -> str:
    """``value`` in the form of the stated number ``like``: '1,266,706', '1.05M', '13.7 M'."""
    if not like.endswith("M"):
        return f"{value:,}"
    number = like.rstrip("M").rstrip()
    decimals = len(number.split(".")[1]) if "." in number else 0
    return f"{value / 1e6:.{decimals}f}{' M' if like.endswith(' M') else 'M'}"


def stated(text: str, entry: Count) -> list[tuple[int, int, str]]:
    """(start, end, text) of each number that ``entry`` states: the number(s) right after
    ``entry.before``, a place that must occur exactly once in the doc."""
    numbers = " / ".join(rf"({NUMBER})(?![.,]?\d)" for _ in entry.settings)  # never part of 1.766
    found = list(re.finditer(re.escape(entry.before) + numbers, text))
    if len(found) != 1:
        raise SystemExit(f"{entry.doc}: {entry.before!r} followed by a count found {len(found)} times "
                         f"(expected once): update COUNTS in scripts/param_counts.py")
    match = found[0]
    return [(match.start(i + 1), match.end(i + 1), match.group(i + 1)) for i in range(len(entry.settings))]


def check(write: bool = False) -> list[str]:
    """Every stated count that differs from the code, as 'doc: stated -> code (after ...)';
    with ``write`` the docs are rewritten to the code's numbers."""
    problems, texts = [], {}
    for entry in COUNTS:
        path = ROOT / entry.doc
        text = texts.setdefault(entry.doc, path.read_text(encoding="utf-8"))
        edits = []
        for (start, end, old), setting in zip(stated(text, entry), entry.settings):
            new = written(count(setting), old)
            if new != old:
                problems.append(f"{entry.doc}: {old} -> {new} (after {entry.before.strip()!r})")
                edits.append((start, end, new))
        for start, end, new in sorted(edits, reverse=True):
            text = text[:start] + new + text[end:]
        texts[entry.doc] = text
    if write:
        for doc, text in texts.items():
            path = ROOT / doc
            if path.read_text(encoding="utf-8") != text:
                path.write_text(text, encoding="utf-8")
    return problems


def covered() -> set[tuple[str, str]]:
    """(doc, number as written) of every count COUNTS checks."""
    out = set()
    for entry in COUNTS:
        text = (ROOT / entry.doc).read_text(encoding="utf-8")
        out |= {(entry.doc, number) for _, _, number in stated(text, entry)}
    return out


def mentioned() -> set[tuple[str, str]]:
    """(doc, number) of every count-like number (1,234 or 1.2M) in docs/ and README.md on a
    line that says "param..." or in a section titled "Size": what COUNTS and NOT_FROM_CODE
    must cover between them."""
    found = set()
    number = re.compile(r"(?<![\d.,])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)? ?M)(?!\d|,\d|[\w^])")
    for path in sorted([*ROOT.glob("docs/**/*.md"), ROOT / "README.md"]):
        doc, section = str(path.relative_to(ROOT)), ""
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("#"):
                section = line.lstrip("#").strip().lower()
            elif "param" in line.lower() or section == "size":
                found |= {(doc, m.group(1)) for m in number.finditer(line)}
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="rewrite the docs' counts from the code")
    parser.add_argument("--list", action="store_true", help="print every checked count")
    args = parser.parse_args(argv)
    if args.list:
        for entry in COUNTS:
            text = (ROOT / entry.doc).read_text(encoding="utf-8")
            for (_, _, number), setting in zip(stated(text, entry), entry.settings):
                print(f"{entry.doc}: {number} = {count(setting):,} ({setting.model}, {setting.dims}, "
                      f"{setting.outputs} out, {setting.recipe or 'defaults'} {setting.args or ''}"
                      f"{', ' + setting.part if setting.part else ''})")
        return 0
    problems = check(write=args.write)
    for p in problems:
        print(("rewrote " if args.write else "wrong: ") + p)
    if not problems:
        print(f"{len(COUNTS)} stated counts agree with the code")
    return 1 if problems and not args.write else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
