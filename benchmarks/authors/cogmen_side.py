"""The authors' own COGMEN code beside merbench's ``cogmen`` on the built-in ``synthetic`` corpus.

Builds the corpus of ``recipes/synthetic/cogmen.yaml`` (default size, or IEMOCAP size with the
overrides of ``benchmarks/synthetic_compare.py``), then for each seed trains

* ``authors``: the COGMEN model class of a checkout of github.com/Exploration-Lab/COGMEN
  (``--code DIR``, imported from DIR, never copied here) with their ``Dataset``, ``Optim``,
  scheduler and ``Coach.train`` loop, their ``train.py`` argparse defaults (read from DIR's
  train.py) plus their README command (``--modalities=atv --from_begin --epochs=55``);
* ``merbench``: merbench's ``cogmen`` through the Python API with ``recipes/synthetic/cogmen.yaml``;
* ``mlp``: merbench's early-fusion MLP (``recipes/synthetic/mlp.yaml``), the ratio's denominator.

Input mapping: merbench's COGMEN concatenates the corpus's audio, text and vision vectors
(merbench/models/cogmen.py, ``torch.cat`` over ``self.modalities``); the authors' Dataset.padding
concatenates ``(a, t, v)`` with ``--modalities atv``. Each utterance's ``audio`` / ``visual`` are the
corpus's audio / vision vectors and its ``sbert_sentence_embeddings`` the corpus's text vector, so
``input_tensor`` holds the same 144-d vector merbench's model gets; speaker index 0 / 1 becomes
"M" / "F" (their ``speaker_to_idx``), so ``speaker_tensor`` equals merbench's speakers.

Shims (no file of theirs is edited):
1. ``sentence_transformers`` is replaced by a stub module before ``import cogmen``: their
   Sample.py builds ``SentenceTransformer("paraphrase-distilroberta-base-v1")`` at import (a
   download) and encodes each sentence; the stub's ``encode`` returns None and the text vector
   is set on the Sample afterwards.
2. ``args.device = "cpu"`` (their default is "cuda").
3. ``args.dataset = "iemocap"`` (their 6-class label set hap, sad, neu, ang, exc, fru, the
   synthetic corpus's class order; 2 speakers) and ``args.dataset_embedding_dims`` holds the
   synthetic widths (their train.py hard-codes IEMOCAP's 100 / 768 / 512).
4. Their Coach saves the best model to ``model_checkpoints/`` relative to the working
   directory: it runs inside the run folder, and the folder is removed afterwards.

    python benchmarks/authors/cogmen_side.py --code DIR [--sizes default,iemocap] [--seeds 0,1,2]
        [--epochs N] [--force] [--mask-padding]
    python benchmarks/authors/cogmen_side.py --code DIR --check-forward [--sizes default]

``--mask-padding`` adds a diagnostic row: the authors' code with merbench's transformer padding
mask (their SeqContext.forward patched for that row only), the one computational difference
between the two models (see docs/models/cogmen.md). ``--check-forward`` trains nothing: it copies
merbench's weights into their model and compares the two forward passes on one batch.

Prints a markdown table and writes benchmarks/out/authors/cogmen.md; runs live under
benchmarks/out/authors/cogmen_runs/<size>/ (a finished run is reused unless ``--force``).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import ast
import builtins
import contextlib
import hashlib
import json
import logging
import shlex
import shutil
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
from synthetic_compare import RECIPES, SIZES, distinct_per_dialogue, mean_std, run_overrides  # noqa: E402

OUT = ROOT / "benchmarks" / "out" / "authors"
RUNS = OUT / "cogmen_runs"
# The README's training command (their README.md, "Training networks"), dataset excepted.
README_COMMAND = ["--modalities=atv", "--from_begin", "--epochs=55"]
# Speaker index -> the key of their Dataset.speaker_to_idx ({"M": 0, "F": 1}).
SPEAKER_KEYS = ("M", "F")


# ----------------------------------------------------------------------------- the authors' side

def import_cogmen(code_dir: Path) -> types.ModuleType:
    """Their ``cogmen`` package from ``code_dir``, with the sentence_transformers stub (shim 1)."""
    if not (code_dir / "cogmen" / "model" / "COGMEN.py").is_file():
        sys.exit(f"--code {code_dir}: not a checkout of Exploration-Lab/COGMEN (no cogmen/model/COGMEN.py)")
    stub = types.ModuleType("sentence_transformers")

    class SentenceTransformer:  # Sample.py: sbert_model = SentenceTransformer(...); .encode(sentence)
        def __init__(self, *args, **kwargs):
            pass

        def encode(self, sentences):
            return None  # the text vectors are set on each Sample afterwards

    stub.SentenceTransformer = SentenceTransformer
    sys.modules["sentence_transformers"] = stub
    if str(code_dir) not in sys.path:
        sys.path.insert(0, str(code_dir))
    import cogmen

    if Path(cogmen.__file__).resolve().parent != (code_dir / "cogmen").resolve():
        sys.exit(f"imported cogmen from {cogmen.__file__}, not from --code {code_dir}")
    return cogmen


def code_fingerprint(code_dir: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted((code_dir / "cogmen").rglob("*.py")) + [code_dir / "train.py"]:
        digest.update(path.relative_to(code_dir).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def train_py_parser(code_dir: Path) -> argparse.ArgumentParser:
    """Their train.py's argparse parser, rebuilt from its ``parser.add_argument`` calls (the
    parser lives under ``if __name__ == "__main__"``, and train.py imports comet_ml)."""
    tree = ast.parse((code_dir / "train.py").read_text())
    parser = argparse.ArgumentParser(prog="train.py")
    found = 0
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "add_argument"):
            args = [ast.literal_eval(a) for a in node.args]
            kwargs = {}
            for kw in node.keywords:
                if isinstance(kw.value, ast.Name):  # type=int, float, str
                    kwargs[kw.arg] = getattr(builtins, kw.value.id)
                else:
                    kwargs[kw.arg] = ast.literal_eval(kw.value)
            parser.add_argument(*args, **kwargs)
            found += 1
    if found < 20:
        sys.exit(f"{code_dir / 'train.py'}: found only {found} add_argument calls")
    return parser


def authors_args(code_dir: Path, corpus, seed: int, epochs: int | None) -> argparse.Namespace:
    """train.py defaults + the README command, then the shims (device, dataset, widths)."""
    command = [*README_COMMAND, f"--seed={seed}", "--device=cpu"]  # shim 2: cpu
    if epochs is not None:
        command.append(f"--epochs={epochs}")
    args = train_py_parser(code_dir).parse_args(command)
    # Shim 3: their 6-class IEMOCAP label set (the corpus's classes in the same order) and
    # the synthetic widths in place of train.py's hard-coded IEMOCAP ones.
    if len(corpus.label_names) != 6:
        sys.exit(f"expected 6 classes (their iemocap label set), got {corpus.label_names}")
    args.dataset = "iemocap"
    dims = {m[0]: corpus.dims[m] for m in corpus.modalities}  # audio, text, vision -> a, t, v
    combos = ["a", "t", "v", "at", "tv", "av", "atv"]
    args.dataset_embedding_dims = {"iemocap": {c: sum(dims[x] for x in c) for c in combos}}
    return args


def authors_samples(cogmen, corpus, split: str) -> list:
    """Their Sample objects for one split, in corpus order (as merbench's SplitTensors)."""
    samples = []
    for d in corpus.split(split):
        if not set(np.unique(d.speakers)) <= {0, 1}:
            raise ValueError(f"{d.id}: speaker indices {np.unique(d.speakers)}; their IEMOCAP code has 2")
        sample = cogmen.Sample(
            vid=d.id, speaker=[SPEAKER_KEYS[s] for s in d.speakers], label=[int(y) for y in d.labels],
            text=list(d.utterance_ids), audio=list(d.features["audio"]), visual=list(d.features["vision"]),
            sentence=list(d.utterance_ids))
        sample.sbert_sentence_embeddings = list(d.features["text"])  # shim 1: the text vectors
        samples.append(sample)
    return samples


@contextlib.contextmanager
def padding_mask(cogmen, on: bool):
    """Diagnostic, not a shim: their SeqContext with a ``src_key_padding_mask`` from
    ``text_len_tensor`` (merbench's form), everything else theirs. Off: their code as it is."""
    from cogmen.model.SeqContext import SeqContext

    original = SeqContext.forward

    def masked(self, text_len_tensor, text_tensor):
        if not self.use_transformer:
            return original(self, text_len_tensor, text_tensor)
        pad = torch.arange(text_tensor.size(1), device=text_tensor.device)[None, :] >= text_len_tensor[:, None]
        return self.transformer_out(self.transformer_encoder(text_tensor, src_key_padding_mask=pad))

    if on:
        SeqContext.forward = masked
    try:
        yield
    finally:
        SeqContext.forward = original


def train_authors(code_dir: Path, corpus, size: str, seed: int, epochs: int | None, force: bool,
                  side: str = "authors") -> dict:
    cogmen = import_cogmen(code_dir)
    fingerprint = code_fingerprint(code_dir)
    run_dir = RUNS / size / f"{side}-seed{seed}{f'-e{epochs}' if epochs is not None else ''}"
    cached = run_dir / "row.json"
    if cached.exists() and not force:
        row = json.loads(cached.read_text())
        if row.get("code_fingerprint") == fingerprint and row.get("corpus") == corpus.fingerprint():
            print(f"{size} {side} seed {seed}: reusing {cached}", flush=True)
            return row
    shutil.rmtree(run_dir, ignore_errors=True)
    (run_dir / "model_checkpoints").mkdir(parents=True)
    args = authors_args(code_dir, corpus, seed, epochs)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    logger = logging.getLogger("cogmen.utils")  # their get_logger(): a StreamHandler on stdout
    try:
        with open(run_dir / "train.log", "w") as log_file, contextlib.redirect_stdout(log_file), \
                contextlib.redirect_stderr(log_file), contextlib.chdir(run_dir), \
                padding_mask(cogmen, side == "authors_masked"):  # chdir: shim 4
            streams = [h.setStream(log_file) for h in logger.handlers if isinstance(h, logging.StreamHandler)]
            try:
                print(vars(args))
                # As their train.py main(): seed, datasets, model, Optim, scheduler, Coach.
                cogmen.utils.set_seed(args.seed)
                trainset = cogmen.Dataset(authors_samples(cogmen, corpus, "train"), args)
                devset = cogmen.Dataset(authors_samples(cogmen, corpus, "valid"), args)
                testset = cogmen.Dataset(authors_samples(cogmen, corpus, "test"), args)
                model = cogmen.COGMEN(args).to(args.device)
                opt = cogmen.Optim(args.learning_rate, args.max_grad_value, args.weight_decay)
                opt.set_parameters(model.parameters(), args.optimizer)
                sched = opt.get_scheduler(args.scheduler)
                coach = cogmen.Coach(trainset, devset, testset, model, opt, sched, args)
                t0 = time.perf_counter()
                best_dev_f1, best_epoch, _, train_losses, dev_f1s, test_f1s = coach.train()
                seconds = time.perf_counter() - t0
                # coach.train() ends with the best dev-F1 state loaded; predict the test set as
                # their Coach.evaluate does (eval mode, their batches of 32 dialogues in order).
                model.eval()
                preds = []
                with torch.no_grad():
                    for idx in range(len(testset)):
                        preds.append(model(testset[idx]).cpu())
                pred = torch.cat(preds).numpy()
            finally:
                for handler, old in zip([h for h in logger.handlers if isinstance(h, logging.StreamHandler)],
                                        streams):
                    handler.setStream(old)
    finally:
        torch.set_num_threads(threads)
    shutil.rmtree(run_dir / "model_checkpoints", ignore_errors=True)
    test = [d for d in corpus.dialogues if d.split == "test"]
    labels = np.concatenate([d.labels for d in test])
    outputs = np.eye(len(corpus.label_names), dtype=np.float32)[pred]  # one-hot: argmax = their y_hat
    np.savez_compressed(run_dir / "predictions.npz", test_outputs=outputs, test_index=np.arange(len(labels)),
                        test_labels=labels)
    distinct, truth = distinct_per_dialogue(run_dir, corpus)
    from sklearn.metrics import f1_score

    row = {"model": "cogmen", "side": side, "size": size, "seed": seed,
           "test_wf1": 100 * f1_score(labels, pred, average="weighted"),  # their Coach.evaluate's metric
           "distinct_per_dialogue": distinct, "true_distinct": truth, "epochs": len(dev_f1s),
           "best_epoch": best_epoch, "seconds": round(seconds, 1), "valid_wf1": 100 * best_dev_f1,
           "final_lr": opt.optimizer.param_groups[0]["lr"],
           "history": {"train_loss_sum": train_losses, "dev_wf1": [100 * f for f in dev_f1s],
                       "test_wf1": [100 * f for f in test_f1s]},
           "code_fingerprint": fingerprint, "corpus": corpus.fingerprint(), "args": _plain(vars(args))}
    cached.write_text(json.dumps(row, indent=1))
    return row


def _plain(obj):
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    return obj if isinstance(obj, (str, int, float, bool, type(None), list)) else str(obj)


def check_forward(code_dir: Path, size: str) -> list[str]:
    """Same weights, same batch: their COGMEN beside merbench's, forward only (no training).

    merbench's freshly built weights are copied into their used modules (their unused ones
    are left as built); the first 32 training dialogues go through their Dataset batch and
    merbench's dialogue batch; the log-probabilities of the real utterances are compared in
    eval mode and in train mode with every dropout at 0 (batch norm on batch statistics),
    their SeqContext as it is and with the padding mask of ``--mask-padding``."""
    from merbench.data.batching import split_tensors
    from merbench.models.build import build_model
    from merbench.recipe import load_recipe

    cogmen = import_cogmen(Path(code_dir).resolve())
    corpus = build_corpus(size)
    recipe = load_recipe(RECIPES / "cogmen.yaml", SIZES[size])
    torch.manual_seed(0)
    ours = build_model("cogmen", corpus.dims, len(corpus.label_names),
                       **{k: v for k, v in recipe["model"].items() if k != "name"})
    args = authors_args(Path(code_dir).resolve(), corpus, 0, None)
    with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
        theirs = cogmen.COGMEN(args)
    pairs = [(theirs.rnn.transformer_encoder, ours.context), (theirs.rnn.transformer_out, ours.context_out),
             (theirs.gcn.conv1, ours.rgcn), (theirs.gcn.conv2, ours.graph_transformer), (theirs.gcn.bn, ours.norm),
             (theirs.clf.lin1, ours.classifier[0]), (theirs.clf.lin2, ours.classifier[3])]
    for mine, source in pairs:
        mine.load_state_dict(source.state_dict())
    used = sum(p.numel() for a, _ in pairs for p in a.parameters())
    lines = [f"parameters: merbench {sum(p.numel() for p in ours.parameters()):,}, authors' used modules {used:,}, "
             f"authors' all {sum(p.numel() for p in theirs.parameters()):,}"]
    n = min(32, len(corpus.split("train")))
    data = cogmen.Dataset(authors_samples(cogmen, corpus, "train")[:n], args)[0]
    batch = split_tensors(corpus, "train", False).dialogue_batch(list(range(n)))
    for model in (theirs, ours):
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
            if isinstance(module, torch.nn.MultiheadAttention):
                module.dropout = 0.0
    for mode in ("eval", "train, dropout 0"):
        for model in (theirs, ours):
            model.train(mode != "eval")
        for masked in (False, True):
            with torch.no_grad(), padding_mask(cogmen, masked):
                graph, _ = theirs.get_rep(data)
                theirs_lp = theirs.clf.get_prob(graph, data["text_len_tensor"])
                ours_lp = torch.log_softmax(ours(batch).logits[batch.utt_mask], -1)
            lines.append(f"{mode}, their SeqContext {'+ padding mask' if masked else 'as is'}: max |log-prob "
                         f"difference| {float((theirs_lp - ours_lp).abs().max()):.2g}, same argmax "
                         f"{100 * float((theirs_lp.argmax(-1) == ours_lp.argmax(-1)).float().mean()):.1f}%")
    return lines


# ----------------------------------------------------------------------------- merbench's side

def train_merbench(recipe_name: str, side: str, corpus, size: str, seed: int, epochs: int | None,
                   force: bool) -> dict:
    from merbench.recipe import load_recipe
    from merbench.train import train

    # The overrides of benchmarks/synthetic_compare.py, so the rows match its table.
    overrides, cap = run_overrides(size, seed, 1, epochs, side != "mlp")
    recipe = load_recipe(RECIPES / f"{recipe_name}.yaml", overrides)
    run_dir = train(recipe, RUNS / size, name=f"{side}-seed{seed}{cap}", force=force, resume=not force,
                    progress=False, corpus=corpus)
    result = json.loads((run_dir / "result.json").read_text())
    if result["status"] != "ok":
        raise RuntimeError(f"{run_dir}: {result.get('error')}")
    if result["dataset"]["fingerprint"] != corpus.fingerprint():
        raise RuntimeError(f"{run_dir}: trained on another corpus")
    distinct, truth = distinct_per_dialogue(run_dir, corpus)
    sel = result["selection"]
    return {"model": "cogmen", "side": side, "size": size, "seed": seed,
            "test_wf1": result["metrics"]["test"]["wf1"], "distinct_per_dialogue": distinct,
            "true_distinct": truth, "epochs": sel["epochs_run"], "best_epoch": sel["best_epoch"],
            "seconds": result["training"]["seconds"], "valid_wf1": sel["best_value"],
            "final_lr": result["training"]["history"][-1]["lr"]}


def build_corpus(size: str):
    """The corpus exactly as merbench's recipes build it (both recipes share the dataset section)."""
    from merbench.recipe import load_recipe
    from merbench.train import load_corpus

    sections = [load_recipe(RECIPES / f"{name}.yaml", SIZES[size])["dataset"] for name in ("cogmen", "mlp")]
    if sections[0] != sections[1]:
        raise RuntimeError(f"cogmen.yaml and mlp.yaml build different corpora: {sections}")
    return load_corpus(load_recipe(RECIPES / "cogmen.yaml", SIZES[size]))


def run(code_dir: Path, size: str, seed: int, epochs: int | None, force: bool = False,
        mask_padding: bool = False) -> list[dict]:
    """One size and seed: the authors' COGMEN, merbench's cogmen and the early-fusion MLP
    (``mask_padding``: also the authors' COGMEN with merbench's transformer padding mask)."""
    torch.set_num_threads(1)
    corpus = build_corpus(size)
    rows = []
    for side in ("mlp", "merbench", "authors") + (("authors_masked",) if mask_padding else ()):
        t0 = time.perf_counter()
        if side.startswith("authors"):
            row = train_authors(Path(code_dir).resolve(), corpus, size, seed, epochs, force, side)
        else:
            row = train_merbench("mlp" if side == "mlp" else "cogmen", side, corpus, size, seed, epochs, force)
        print(f"{size} {side} seed {seed}: test WF1 {row['test_wf1']:.1f}, {row['distinct_per_dialogue']:.2f} "
              f"distinct classes per dialogue (true {row['true_distinct']:.2f}), best epoch {row['best_epoch']} "
              f"of {row['epochs']}, {time.perf_counter() - t0:.0f} s", flush=True)
        rows.append(row)
    return rows


NAMES = {"authors": "COGMEN, authors' code", "merbench": "cogmen, merbench", "mlp": "early-fusion MLP, merbench",
         "authors_masked": "COGMEN, authors' code + padding mask (diagnostic)"}


def table(rows: list[dict]) -> str:
    lines = ["| size | side | test WF1 | / MLP | distinct predicted classes per test dialogue (true) | "
             "epochs run / best (valid WF1) | final LR | seed | train s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        mlp = [r["test_wf1"] for r in rows if r["side"] == "mlp" and r["size"] == row["size"]
               and r["seed"] == row["seed"]]
        ratio = f"{row['test_wf1'] / mlp[0]:.2f}" if mlp else "–"
        name = NAMES[row["side"]]
        lines.append(f"| {row['size']} | {name} | {row['test_wf1']:.1f} | {ratio} | "
                     f"{row['distinct_per_dialogue']:.2f} ({row['true_distinct']:.2f}) | "
                     f"{row['epochs']} / {row['best_epoch']} ({row['valid_wf1']:.1f}) | {row['final_lr']:.0e} | "
                     f"{row['seed']} | {row['seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def summary(rows: list[dict]) -> str:
    """Mean (± std over seeds) per size and side; the ratio is to the MLP's mean."""
    lines = ["| size | side | test WF1 | / MLP | distinct predicted classes per test dialogue (true) | seeds |",
             "|---|---|---|---|---|---|"]
    for size in dict.fromkeys(r["size"] for r in rows):
        mlp = np.mean([r["test_wf1"] for r in rows if r["size"] == size and r["side"] == "mlp"] or [np.nan])
        for side in dict.fromkeys(r["side"] for r in rows if r["size"] == size):
            got = [r for r in rows if r["size"] == size and r["side"] == side]
            scores = [r["test_wf1"] for r in got]
            lines.append(f"| {size} | {NAMES[side]} | {mean_std(scores)} | {np.mean(scores) / mlp:.2f} | "
                         f"{np.mean([r['distinct_per_dialogue'] for r in got]):.2f} "
                         f"({np.mean([r['true_distinct'] for r in got]):.2f}) | {len(got)} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", type=Path, required=True, help="a checkout of github.com/Exploration-Lab/COGMEN")
    parser.add_argument("--sizes", default="default,iemocap")
    parser.add_argument("--seeds", default="0", help="comma list")
    parser.add_argument("--epochs", type=int, default=None,
                        help="cap both COGMEN rows at N epochs (a CPU budget; default: the README's 55)")
    parser.add_argument("--force", action="store_true", help="retrain finished runs")
    parser.add_argument("--check-forward", action="store_true",
                        help="train nothing: compare both forward passes on the same weights and batch")
    parser.add_argument("--mask-padding", action="store_true",
                        help="add a diagnostic row: the authors' COGMEN with a transformer padding mask")
    args = parser.parse_args()
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    if any(s not in SIZES for s in sizes):
        sys.exit(f"--sizes: expected a comma list of {', '.join(SIZES)}")
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    if args.check_forward:
        for size in sizes:
            print(f"{size}:", *check_forward(args.code, size), sep="\n  ")
        return
    rows = [row for size in sizes for seed in seeds for row in run(args.code, size, seed, args.epochs, args.force,
                                                                          args.mask_padding)]
    report = ("## COGMEN: the authors' code beside merbench's (synthetic corpus, test weighted F1)\n\n"
              f"`python benchmarks/authors/cogmen_side.py {shlex.join(sys.argv[1:])}`\n\n" + summary(rows)
              + "\nPer seed:\n\n" + table(rows))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "cogmen.md").write_text(report)
    (OUT / "cogmen_rows.json").write_text(json.dumps(
        [{k: v for k, v in r.items() if k not in ("history", "args")} for r in rows], indent=1))
    print(report)


if __name__ == "__main__":
    main()
