"""Turn a parsed release (RawCorpus) into a Corpus: features per utterance per modality.

Per modality, in this order: an extractor asked for runs through the cache (features the
release ships for that modality are then ignored); else the release's own features are used
when every dialogue ships them; else the modality is absent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from merbench.data.types import MODALITIES, Corpus, Dialogue, RawCorpus, RawDialogue, modality_hint
from merbench.errors import MerbenchError
from merbench.features._common import Extractor
from merbench.features.cache import SHARD_SIZE, extract_cached
from merbench.features.finetune import ensure_finetuned
from merbench.registry import EXTRACTORS
from merbench.signature import check_kwargs, keyword_defaults

ExtractorSpec = str | Mapping[str, Any]  # "minilm" or {"name": "resnet", "model": DIR, ...}


def extractor_options(name: str) -> dict[str, Any]:
    """Every option of a registered extractor with its default (the device is set per run)."""
    return keyword_defaults(EXTRACTORS.get(name), ("device",))


def make_extractor(modality: str, spec: ExtractorSpec, device: str | None = None) -> Extractor:
    """An extractor from a name or ``{"name": ..., **options}``, checked against the registry."""
    where = f"features.{modality}"
    if modality not in MODALITIES:
        raise MerbenchError(f"{where}: unknown modality {modality!r}{modality_hint(modality)}; "
                            f"valid: {', '.join(MODALITIES)}")
    if isinstance(spec, str):
        name, options = spec, {}
    elif isinstance(spec, Mapping) and isinstance(spec.get("name"), str):
        options = {k: v for k, v in spec.items() if k != "name"}
        name = spec["name"]
    else:
        raise MerbenchError(f"{where}: {spec!r}; expected an extractor name or a mapping with 'name'")
    entry = EXTRACTORS.entry(name)
    if entry.meta["modality"] != modality:
        valid = [e.name for e in EXTRACTORS.entries() if e.meta["modality"] == modality]
        raise MerbenchError(f"{where}: extractor {name!r} is for {entry.meta['modality']}, not "
                            f"{modality}; {modality} extractors: {', '.join(valid)}")
    check_kwargs(extractor_options(name), options, where, f"extractor {name!r}")
    return entry.obj(**options, device=device)


def build_corpus(raw: RawCorpus, extractors: Mapping[str, ExtractorSpec] | None = None,
                 cache_root: str | Path | None = None, device: str | None = None,
                 progress: bool = True, shard_size: int = SHARD_SIZE) -> Corpus:
    """Features for every utterance of ``raw``: extracted (cached) or shipped by the release.

    ``extractors`` maps a modality to an extractor name or ``{"name": ..., **options}``.
    Every extractor is built (and its model dir checked) before any extraction starts; a text
    spec with ``finetune: {...}`` first fine-tunes its encoder on ``raw``'s training split
    (``features/finetune.py``; a finished folder under the cache root's ``finetuned/`` is reused).
    """
    extractors = {m: _finetuned(raw, m, spec, cache_root, device, progress)
                  for m, spec in (extractors or {}).items()}
    built = {m: make_extractor(m, spec, device) for m, spec in extractors.items()}
    fingerprint = raw.fingerprint()
    utterances = [u for d in raw.dialogues for u in d.utterances]
    lengths = [len(d.utterances) for d in raw.dialogues]
    features: dict[str, list[list[np.ndarray]]] = {}
    described: dict[str, dict[str, Any]] = {}
    for m in MODALITIES:
        if m in built:
            extractor = built[m]
            extractor.bind(raw.dialogues)
            result = extract_cached(extractor, utterances, dataset=raw.name, fingerprint=fingerprint,
                                    root=cache_root, shard_size=shard_size, progress=progress)
            features[m] = _per_dialogue(result.features, lengths)
            spec = extractors[m]  # type: ignore[index]
            manifest = result.manifest
            described[m] = {
                "source": "extracted", "extractor": extractor.name,
                "options": {} if isinstance(spec, str) else {k: v for k, v in spec.items() if k != "name"},
                "config": manifest["config"], "config_hash": manifest["config_hash"],
                "dim": manifest["dim"], "sequence": manifest["sequence"],
                **({"counts": manifest["counts"]} if manifest.get("counts") else {}),
            }
        elif any(m in d.features for d in raw.dialogues):
            features[m] = [_shipped(d, m) for d in raw.dialogues]
            first = next((x for per in features[m] for x in per), None)
            described[m] = {"source": "shipped", "dim": int(first.shape[-1]) if first is not None else 0,
                            "sequence": bool(first is not None and first.ndim == 2)}

    dialogues = []
    for k, d in enumerate(raw.dialogues):
        order: dict[str, int] = {}
        speakers = [order.setdefault(u.speaker, len(order)) for u in d.utterances]
        dialogues.append(Dialogue(
            id=d.id, split=d.split, speakers=np.asarray(speakers, dtype=np.int64),
            labels=np.asarray([u.label for u in d.utterances], dtype=np.int64),
            values=np.asarray([u.value for u in d.utterances], dtype=np.float32),
            features={m: per[k] for m, per in features.items()},
            utterance_ids=[u.id for u in d.utterances], session=d.session,
        ))
    corpus = Corpus(raw.name, raw.task, list(raw.label_names), dialogues, raw.protocol,
                    info={**raw.info, "raw_fingerprint": fingerprint, "features": described})
    corpus.info["counts"] = corpus.counts()
    return corpus


def _finetuned(raw: RawCorpus, modality: str, spec: ExtractorSpec, cache_root: str | Path | None,
               device: str | None, progress: bool) -> ExtractorSpec:
    """``{name, finetune: {...}}``: fine-tune first (or find it done), then extract from it."""
    if not isinstance(spec, Mapping) or "finetune" not in spec:
        return spec
    if modality != "text":
        raise MerbenchError(f"features.{modality}.finetune: only text encoders are fine-tuned")

    folder = ensure_finetuned(raw, dict(spec), cache_root, device, progress)
    return {**{k: v for k, v in spec.items() if k != "finetune"}, "model": str(folder)}


def _per_dialogue(flat: list[np.ndarray], lengths: list[int]) -> list[list[np.ndarray]]:
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(int)
    return [flat[offsets[k]:offsets[k + 1]] for k in range(len(lengths))]


def _shipped(d: RawDialogue, modality: str) -> list[np.ndarray]:
    if modality not in d.features:
        raise MerbenchError(f"dialogue {d.id}: the release ships {modality} features for other "
                            f"dialogues but not this one; pass an extractor for {modality}")
    shipped = d.features[modality]
    if len(shipped) != len(d.utterances):
        raise MerbenchError(f"dialogue {d.id}: {len(shipped)} {modality} feature rows for "
                            f"{len(d.utterances)} utterances")
    return [np.asarray(x, dtype=np.float32) for x in shipped]
