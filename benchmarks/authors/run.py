"""The authors' own DialogueGCN and DialogueRNN code beside merbench's, on the `synthetic` corpus.

Runs declare-lab/conv-emotion's ``DialogueGCN/model.py`` (``DialogueGCNModel``, LSTM base,
graph model, nodal attention) and ``DialogueRNN/model.py`` (``BiModel`` with attention) from a
checkout (``--code DIR``; nothing of theirs is copied into merbench) with their IEMOCAP training
setup (their ``train_IEMOCAP.py`` and README command), on merbench's built-in ``synthetic``
corpus at its default size and at IEMOCAP size (benchmarks/synthetic_compare.py's SIZES), and
merbench's ``dialoguegcn`` / ``dialoguernn`` / early-fusion ``mlp`` recipes on the identical
corpus. Prints one table per size and writes benchmarks/out/authors/table.md.

    python benchmarks/authors/run.py --code DIR [--models dialoguegcn,dialoguernn]
        [--sizes default,iemocap] [--seeds 0] [--epochs N] [--threads 1] [--force] [--table-only]
        [--sides authors,merbench]

The authors' loop (``train_or_eval_graph_model`` / ``train_or_eval_model``) is mirrored: each
epoch trains, then scores valid and test. Unlike their scripts, the reported epoch is the one
with the best *validation* weighted F1 (their DialogueGCN script prints the best test F1 over
the epochs, their DialogueRNN script the epoch with the lowest test loss; the table shows that
number too, as "authors' rule"). Shims for torch 2.13 / torch_geometric 2.8: shims.py and
docs/authors_code.md. A finished run (benchmarks/out/authors/<size>/<model>-seed<S>) is reused
unless ``--force``; merbench's runs live where synthetic_compare.py keeps them and are reused
the same way. ``--epochs N`` caps both sides of the two dialogue models (smoke runs; their rows
and folders say so). ``--sides authors`` trains only the authors' side (and the MLP) and
tabulates merbench's finished runs; ``--table-only`` trains nothing.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "benchmarks"))
import shims  # noqa: E402  (beside this script)
from synthetic_compare import RECIPES, SIZES, distinct_counts, distinct_per_dialogue, mean_std, run_overrides  # noqa: E402

OUT = ROOT / "benchmarks" / "out" / "authors"
MERBENCH_RUNS = ROOT / "benchmarks" / "out" / "synthetic_compare"  # synthetic_compare.py's folders
CONV_EMOTION_COMMIT = "6128ca20e9c736605cce7e99d5d95db0356c35f5"  # the snapshot this was written against

# 1 / class frequency of IEMOCAP's training split (hap, sad, neu, ang, exc, fru), the constants of
# both train_IEMOCAP.py (DialogueGCN :302-307, DialogueRNN :163-170). The synthetic corpus draws
# its labels from IEMOCAP's class frequencies in the same class order (merbench/data/synthetic.py).
IEMOCAP_LOSS_WEIGHTS = [1 / 0.086747, 1 / 0.144406, 1 / 0.227883, 1 / 0.160585, 1 / 0.127711, 1 / 0.252668]

# The authors' IEMOCAP setups. DialogueGCN: DialogueGCN/train_IEMOCAP.py :240-261 with the
# README's command (--base-model LSTM --graph-model --nodal-attention --dropout 0.4 --lr 0.0003
# --batch-size 32 --class-weight --l2 0.0 --no-cuda; --epochs, --windowp/--windowf and
# --attention at their argparse defaults 60, 10/10, general). DialogueRNN:
# DialogueRNN/train_IEMOCAP.py :107-177 argparse defaults (its README gives no command; the
# defaults are "meant for BiDialogueRNN+Att").
SETUPS = {
    "dialoguegcn": {
        "model": {"base_model": "LSTM", "D_g": 150, "D_p": 150, "D_e": 100, "D_h": 100, "D_a": 100,
                  "graph_hidden_size": 100, "n_speakers": 2, "max_seq_len": 110, "window_past": 10,
                  "window_future": 10, "listener_state": False, "context_attention": "general",
                  "dropout": 0.4, "nodal_attention": True, "no_cuda": True},
        "lr": 0.0003, "l2": 0.0, "batch_size": 32, "epochs": 60,
    },
    "dialoguernn": {
        "model": {"D_g": 500, "D_p": 500, "D_e": 300, "D_h": 300, "listener_state": False,
                  "context_attention": "general", "dropout_rec": 0.1, "dropout": 0.1},
        "lr": 0.0001, "l2": 0.00001, "batch_size": 30, "epochs": 60,
    },
}
MODELS = tuple(SETUPS)


def seed_everything(seed: int) -> None:
    """As the authors' seed_everything (DialogueGCN/train_IEMOCAP.py:14-21), on CPU."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# --- Corpus -> the authors' input layout --------------------------------------------------------

def authors_dataset(data_module, dialogues, modalities):
    """The authors' own ``IEMOCAPDataset`` (its ``__getitem__`` and ``collate_fn``) over merbench
    dialogues, without its pickle: ``videoText`` holds the utterance vector the model reads (the
    modality vectors concatenated in merbench's order, as merbench's models concatenate them),
    speakers 0 / 1 become their 'M' / 'F' one-hot qmask, labels their class ids."""
    cls = data_module.IEMOCAPDataset
    ds = cls.__new__(cls)  # their __init__ only reads the pickle
    ds.keys = [d.id for d in dialogues]
    ds.len = len(ds.keys)
    stack = lambda d, m: np.stack(d.features[m]).astype(np.float32)  # noqa: E731
    ds.videoText = {d.id: np.concatenate([stack(d, m) for m in modalities], axis=1) for d in dialogues}
    ds.videoAudio = {d.id: stack(d, "audio") if "audio" in modalities else ds.videoText[d.id] for d in dialogues}
    ds.videoVisual = {d.id: stack(d, "vision") if "vision" in modalities else ds.videoText[d.id]
                      for d in dialogues}
    for d in dialogues:
        if d.speakers.max() > 1:
            raise SystemExit(f"{d.id}: more than two speakers; the authors' IEMOCAP setup has n_speakers=2")
    ds.videoSpeakers = {d.id: ["M" if s == 0 else "F" for s in d.speakers] for d in dialogues}
    ds.videoLabels = {d.id: [int(c) for c in d.labels] for d in dialogues}
    return ds


def loaders(data_module, corpus, batch_size):
    from torch.utils.data import DataLoader, SubsetRandomSampler

    sets = {s: authors_dataset(data_module, corpus.split(s), corpus.modalities) for s in ("train", "valid", "test")}
    # As their get_IEMOCAP_loaders: the training set through a SubsetRandomSampler, the test set
    # in order; their valid loader is empty (valid=0.0), so valid is loaded as their test set is.
    train = DataLoader(sets["train"], batch_size=batch_size, sampler=SubsetRandomSampler(list(range(sets["train"].len))),
                       collate_fn=sets["train"].collate_fn, num_workers=0)
    rest = {s: DataLoader(sets[s], batch_size=batch_size, collate_fn=sets[s].collate_fn, num_workers=0)
            for s in ("valid", "test")}
    return train, rest["valid"], rest["test"]


# --- The authors' loops ----------------------------------------------------------------------------

def graph_pass(model, loss_function, loader, seed, optimizer=None):
    """DialogueGCN/train_IEMOCAP.py train_or_eval_graph_model (:117-181): loss, predictions and
    labels of the real utterances in loader order."""
    model.train() if optimizer else model.eval()
    seed_everything(seed)  # their :133: every pass (train, valid, test) starts from the seed
    losses, preds, labels = [], [], []
    with torch.set_grad_enabled(optimizer is not None):  # eval: same numbers, no graph kept
        for data in loader:
            if optimizer:
                optimizer.zero_grad()
            textf, visuf, acouf, qmask, umask, label = data[:-1]
            lengths = [(umask[j] == 1).nonzero().tolist()[-1][0] + 1 for j in range(len(umask))]
            log_prob, e_i, e_n, e_t, e_l = model(textf, qmask, umask, lengths)
            label = torch.cat([label[j][:lengths[j]] for j in range(len(label))])
            loss = loss_function(log_prob, label)
            preds.append(torch.argmax(log_prob, 1).numpy())
            labels.append(label.numpy())
            losses.append(loss.item())
            if optimizer:
                loss.backward()
                optimizer.step()
    return float(np.sum(losses) / len(losses)), np.concatenate(preds), np.concatenate(labels)


def rnn_pass(model, loss_function, loader, seed, optimizer=None):
    """DialogueRNN/train_IEMOCAP.py train_or_eval_model (:51-102), same return as graph_pass."""
    model.train() if optimizer else model.eval()
    losses, preds, labels, masks = [], [], [], []
    with torch.set_grad_enabled(optimizer is not None):
        for data in loader:
            if optimizer:
                optimizer.zero_grad()
            textf, visuf, acouf, qmask, umask, label = data[:-1]
            log_prob, alpha, alpha_f, alpha_b = model(textf, qmask, umask, att2=True)  # seq_len, batch, C
            lp_ = log_prob.transpose(0, 1).contiguous().view(-1, log_prob.size()[2])  # batch*seq_len, C
            labels_ = label.view(-1)
            loss = loss_function(lp_, labels_, umask)
            preds.append(torch.argmax(lp_, 1).numpy())
            labels.append(labels_.numpy())
            masks.append(umask.view(-1).numpy())
            losses.append(loss.item() * masks[-1].sum())
            if optimizer:
                loss.backward()
                optimizer.step()
    keep = np.concatenate(masks) == 1
    return (float(np.sum(losses) / keep.sum()), np.concatenate(preds)[keep], np.concatenate(labels)[keep])


def wf1(labels, preds) -> float:
    from sklearn.metrics import f1_score

    return 100 * f1_score(labels, preds, average="weighted")


def train_authors(code: Path, model_name: str, corpus, seed: int, epochs: int | None, run_dir: Path) -> dict:
    setup = SETUPS[model_name]
    models, data = shims.load(code, model_name)
    n_epochs = epochs or setup["epochs"]
    d_m = sum(corpus.dims.values())
    n_classes = len(corpus.label_names)
    train_loader, valid_loader, test_loader = loaders(data, corpus, setup["batch_size"])
    seed_everything(seed)  # before the model, as their :249
    weights = torch.FloatTensor(IEMOCAP_LOSS_WEIGHTS)
    if model_name == "dialoguegcn":
        m = setup["model"]
        model = models.DialogueGCNModel(m["base_model"], d_m, m["D_g"], m["D_p"], m["D_e"], m["D_h"], m["D_a"],
                                        m["graph_hidden_size"], n_speakers=m["n_speakers"],
                                        max_seq_len=m["max_seq_len"], window_past=m["window_past"],
                                        window_future=m["window_future"], n_classes=n_classes,
                                        listener_state=m["listener_state"],
                                        context_attention=m["context_attention"], dropout=m["dropout"],
                                        nodal_attention=m["nodal_attention"], no_cuda=m["no_cuda"])
        loss_function = torch.nn.NLLLoss(weights)  # their :311 (graph model, --class-weight)
        one_pass = graph_pass
    else:
        m = setup["model"]
        model = models.BiModel(d_m, m["D_g"], m["D_p"], m["D_e"], m["D_h"], n_classes=n_classes,
                               listener_state=m["listener_state"], context_attention=m["context_attention"],
                               dropout_rec=m["dropout_rec"], dropout=m["dropout"])
        loss_function = models.MaskedNLLLoss(weights)  # their :172
        one_pass = rnn_pass
    optimizer = torch.optim.Adam(model.parameters(), lr=setup["lr"], weight_decay=setup["l2"])
    test_lengths = [len(d) for d in corpus.split("test")]

    history, best = [], None
    started = time.perf_counter()
    for e in range(n_epochs):
        t0 = time.perf_counter()
        train_loss, train_pred, train_label = one_pass(model, loss_function, train_loader, seed, optimizer)
        valid_loss, valid_pred, valid_label = one_pass(model, loss_function, valid_loader, seed)
        test_loss, test_pred, test_label = one_pass(model, loss_function, test_loader, seed)
        row = {"epoch": e + 1, "train_loss": round(train_loss, 6), "train_wf1": round(wf1(train_label, train_pred), 4),
               "valid_loss": round(valid_loss, 6), "valid_wf1": round(wf1(valid_label, valid_pred), 4),
               "test_loss": round(test_loss, 6), "test_wf1": round(wf1(test_label, test_pred), 4),
               "test_distinct": round(distinct_counts(test_pred, test_label, test_lengths)[0], 4),
               "seconds": round(time.perf_counter() - t0, 2)}
        history.append(row)
        if best is None or row["valid_wf1"] > best["valid_wf1"]:  # first best epoch, as merbench
            best = {**row, "test_pred": test_pred.tolist()}
        print(f"  {model_name} authors e{e + 1}: train loss {train_loss:.4f} valid WF1 {row['valid_wf1']:.2f} "
              f"test WF1 {row['test_wf1']:.2f} ({row['test_distinct']:.2f} classes/dialogue) {row['seconds']:.1f} s",
              flush=True)
    seconds = time.perf_counter() - started
    test_pred = np.array(best.pop("test_pred"))
    d, t = distinct_counts(test_pred, test_label, test_lengths)
    # What their script would print: DialogueGCN the best test F1 over the epochs (:336, :359);
    # DialogueRNN the test F1 of the epoch with the lowest test loss (:194-196, :210).
    if model_name == "dialoguegcn":
        authors_rule = max(r["test_wf1"] for r in history)
    else:
        authors_rule = min(history, key=lambda r: r["test_loss"])["test_wf1"]
    result = {"side": "authors", "model": model_name, "seed": seed, "epochs_run": len(history),
              "best_epoch": best["epoch"], "test_wf1": best["test_wf1"], "valid_wf1": best["valid_wf1"],
              "distinct": d, "true_distinct": t, "authors_rule_test_wf1": authors_rule,
              "seconds": round(seconds, 1), "threads": torch.get_num_threads(),
              "parameters": sum(p.numel() for p in model.parameters()),
              "setup": setup, "input_dim": d_m, "modalities": corpus.modalities,
              "loss_weights": IEMOCAP_LOSS_WEIGHTS, "shims": shims.SHIMS[model_name],
              "conv_emotion": {"written_against": CONV_EMOTION_COMMIT,
                               "model_py_sha256": shims.file_sha256(code, model_name)},
              "corpus_fingerprint": corpus.fingerprint(), "history": history, "test_pred": test_pred.tolist()}
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "result.json").write_text(json.dumps(result, indent=1))
    return result


# --- merbench's side -------------------------------------------------------------------------------

def train_merbench(name: str, size: str, seed: int, threads: int, epochs: int | None, corpora: dict) -> dict:
    """merbench's recipe on the same corpus, in synthetic_compare.py's run folder (reused if finished)."""
    from merbench.recipe import load_recipe
    from merbench.train import load_corpus, train

    overrides, cap = run_overrides(size, seed, threads, epochs, name != "mlp")  # as synthetic_compare.py
    run_dir = MERBENCH_RUNS / size / f"{name}-seed{seed}{cap}"
    recipe = load_recipe(RECIPES / f"{name}.yaml", overrides)
    key = json.dumps(recipe["dataset"], sort_keys=True)
    corpus = corpora[key] = corpora.get(key) or load_corpus(recipe)
    t0 = time.perf_counter()
    train(recipe, run_dir.parent, name=run_dir.name, resume=True, progress=False, corpus=corpus)
    result = json.loads((run_dir / "result.json").read_text())
    if result["status"] != "ok":
        raise SystemExit(f"merbench {name} {size} seed {seed}: failed ({result.get('error')})")
    d, t = distinct_per_dialogue(run_dir, corpus)
    print(f"  {name} merbench: test WF1 {result['metrics']['test']['wf1']:.2f} ({d:.2f} classes/dialogue), "
          f"{time.perf_counter() - t0:.0f} s", flush=True)
    return {"side": "merbench", "model": name, "seed": seed, "epochs_run": result["selection"]["epochs_run"],
            "best_epoch": result["selection"]["best_epoch"], "test_wf1": result["metrics"]["test"]["wf1"],
            "distinct": d, "true_distinct": t, "authors_rule_test_wf1": None,
            "seconds": result["training"]["seconds"], "corpus_fingerprint": result["dataset"]["fingerprint"],
            "run_dir": str(run_dir.relative_to(ROOT))}


def corpus_for(size: str, corpora: dict):
    from merbench.recipe import load_recipe
    from merbench.train import load_corpus

    # Every recipes/synthetic/*.yaml shares ../base/synthetic.yaml's dataset section.
    recipe = load_recipe(RECIPES / "dialoguegcn.yaml", list(SIZES[size]))
    key = json.dumps(recipe["dataset"], sort_keys=True)
    corpora[key] = corpora.get(key) or load_corpus(recipe)
    return corpora[key]


# --- Table -------------------------------------------------------------------------------------

def table(size: str, rows: list[tuple[str, str, list[dict]]], epochs: int | None) -> str:
    mlp = [r["test_wf1"] for label, side, runs in rows if label == "mlp" for r in runs]
    mlp_mean = np.mean(mlp) if mlp else float("nan")
    lines = [f"### synthetic, {size} size ({' '.join(SIZES[size]) or 'recipe defaults'})", "",
             "| model | side | test WF1 | / MLP | distinct predicted classes per test dialogue (true) | "
             "epochs run / best (valid) | test WF1, authors' rule | seeds | seconds |",
             "|---|---|---|---|---|---|---|---|---|"]
    for label, side, runs in rows:
        name = label if epochs is None or label == "mlp" else f"{label} (first {epochs} epochs)"
        if not runs:
            lines.append(f"| {name} | {side} | not run | | | | | 0 | |")
            continue
        scores = [r["test_wf1"] for r in runs]
        rule = [r["authors_rule_test_wf1"] for r in runs if r["authors_rule_test_wf1"] is not None]
        lines.append(
            f"| {name} | {side} | {mean_std(scores)} | {np.mean(scores) / mlp_mean:.2f} | "
            f"{np.mean([r['distinct'] for r in runs]):.2f} ({np.mean([r['true_distinct'] for r in runs]):.2f}) | "
            f"{'; '.join(str(r['epochs_run']) + ' / ' + str(r['best_epoch']) for r in runs)} | "
            f"{f'{np.mean(rule):.1f}' if rule else '–'} | {len(runs)} | {np.mean([r['seconds'] for r in runs]):.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", type=Path, required=True, help="a checkout of github.com/declare-lab/conv-emotion")
    parser.add_argument("--models", default="dialoguegcn,dialoguernn")
    parser.add_argument("--sizes", default="default,iemocap")
    parser.add_argument("--seeds", default="0", help="comma list of seeds")
    parser.add_argument("--epochs", type=int, default=None, help="cap both sides' epochs (smoke runs)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--force", action="store_true", help="retrain the authors' side")
    parser.add_argument("--table-only", action="store_true", help="train nothing: tabulate the finished runs")
    parser.add_argument("--sides", default="authors,merbench",
                        help="which sides to train (the MLP always); the other side's finished runs are tabulated")
    args = parser.parse_args()
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    if any(m not in MODELS for m in models):
        sys.exit(f"--models: expected a comma list of {', '.join(MODELS)}")
    if any(s not in SIZES for s in sizes):
        sys.exit(f"--sizes: expected a comma list of {', '.join(SIZES)}")
    sides = {s.strip() for s in args.sides.split(",") if s.strip()}
    if not sides <= {"authors", "merbench"}:
        sys.exit("--sides: expected a comma list of authors, merbench")
    if not args.table_only and "authors" in sides:
        for m in models:
            if not (args.code / shims.FOLDERS[m] / "model.py").is_file():
                sys.exit(f"--code: {args.code / shims.FOLDERS[m] / 'model.py'} not found "
                         f"(expected a checkout of github.com/declare-lab/conv-emotion)")
    torch.set_num_threads(args.threads)

    cap = f"-e{args.epochs}" if args.epochs else ""
    report = "## The authors' code beside merbench's (synthetic corpus, test weighted F1)\n\n"
    report += f"`python benchmarks/authors/run.py {' '.join(sys.argv[1:])}`\n\n"
    for size in sizes:
        corpora: dict = {}
        rows = [("mlp", "merbench", [])]
        for m in models:
            rows += [(m, "authors' code", []), (m, "merbench", [])]
        by_key = {(label, side): runs for label, side, runs in rows}
        for seed in seeds:
            for label, side, runs in rows:
                if side == "merbench":
                    cap_m = "" if label == "mlp" or args.epochs is None else f"-e{args.epochs}"
                    run_dir = MERBENCH_RUNS / size / f"{label}-seed{seed}{cap_m}"
                    tabulate_only = args.table_only or (label != "mlp" and "merbench" not in sides)
                    if tabulate_only and not (run_dir / "result.json").exists():
                        continue
                    print(f"{size} seed {seed}: merbench {label}", flush=True)
                    runs.append(train_merbench(label, size, seed, args.threads, args.epochs, corpora))
                    continue
                run_dir = OUT / size / f"{label}-seed{seed}{cap}"
                done = run_dir / "result.json"
                if done.exists() and not args.force:
                    runs.append(json.loads(done.read_text()))
                    continue
                if args.table_only or "authors" not in sides:
                    continue
                print(f"{size} seed {seed}: authors' {label}", flush=True)
                corpus = corpus_for(size, corpora)
                runs.append(train_authors(args.code, label, corpus, seed, args.epochs, run_dir))
        for m in models:  # both sides saw the same corpus
            prints = {r["corpus_fingerprint"] for side in ("authors' code", "merbench") for r in by_key[(m, side)]}
            if len(prints) > 1:
                sys.exit(f"{size} {m}: the two sides trained on different corpora ({prints})")
        part = table(size, rows, args.epochs)
        print(part, flush=True)
        report += part + "\n"
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "table.md").write_text(report)
    print(f"wrote {(OUT / 'table.md').relative_to(ROOT)}")


if __name__ == "__main__":
    main()
