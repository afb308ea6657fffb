"""Pretraining provenance of pretrained representations and learner inits (one shape for every model).

Every weights identity (``identity()`` of a pretrained module, ``weights_identity()`` of a featurizer or
learner) carries ``provenance``::

    {"corpora": [{"source": ..., ...}, ...],     # what the weights were pretrained on, stage by stage
     "tdc_admet_test_excluded": bool,             # true only when EVERY TDC ADMET test set was left out
     "basis": "random init" | "exclusion files" | "publisher" | "unknown",
     "note": "why, in one line", ...}

Rules: a random init saw no data (clean). A uniqsar pretraining run is clean when its corpus statistics list
the test.csv of every TDC ADMET task among the exclusion files, and so is every checkpoint it continued from.
Third-party weights (official Uni-Mol2 releases, MiniMol) are not clean: their corpora were not built with
the TDC test sets left out (or we cannot check that). A checkpoint without a record is "unknown provenance",
which counts as not clean.
"""
from __future__ import annotations

import json
from pathlib import Path

CLEAN_KEY = "tdc_admet_test_excluded"


def random_init(note: str = "random initialisation: no pretraining data") -> dict:
    return {"corpora": [], CLEAN_KEY: True, "basis": "random init", "note": note}


def unknown(reason: str) -> dict:
    return {"corpora": [], CLEAN_KEY: False, "basis": "unknown", "note": f"unknown provenance: {reason}"}


def published(corpora: list[dict], note: str) -> dict:
    """Third-party weights: corpora as their publisher describes them; never TDC-clean."""
    return {"corpora": corpora, CLEAN_KEY: False, "basis": "publisher", "note": note}


def corpus_provenance(stats: dict) -> dict:
    """Provenance of one uniqsar pretraining corpus (its ``corpus.json`` / model card ``data`` statistics)."""
    from uniqsar.data.tdc import TASKS

    excl = [Path(str(f)) for f in stats.get("exclusion_files", [])]
    covered = {f.parent.name for f in excl if f.name == "test.csv"}
    missing = sorted(set(TASKS) - covered)
    note = ("every TDC ADMET test set excluded from the corpus" if not missing
            else f"TDC ADMET test sets NOT excluded: {', '.join(missing)}")
    return {"corpora": [{"source": "/".join(Path(str(stats.get("source", "?"))).parts[-2:]), "rows_read": stats.get("rows_read"),
                         "offset": stats.get("offset", 0), "n_molecules": stats.get("n_molecules")}],
            "exclusion_files": [str(f) for f in excl], "n_excluded": stats.get("excluded"),
            CLEAN_KEY: not missing, "tdc_tasks_not_excluded": missing, "basis": "exclusion files", "note": note}


def chain(stage: dict, parent: dict) -> dict:
    """Provenance of weights pretrained on `stage` starting from weights with provenance `parent`."""
    out = dict(stage)
    out["corpora"] = list(parent.get("corpora", [])) + list(stage.get("corpora", []))
    out[CLEAN_KEY] = bool(stage.get(CLEAN_KEY) is True and parent.get(CLEAN_KEY) is True)
    if parent.get(CLEAN_KEY) is not True:
        out["note"] = f"continued from weights that are not TDC-clean ({parent.get('note', 'no record')})"
        out["basis"] = parent.get("basis", "unknown")
    return out


def card_provenance(card: dict) -> dict:
    """Provenance from a uniqsar model card: its own ``provenance`` record, else its ``data`` statistics; a
    card of continued pretraining (``init_weights`` with a sha256) is clean only if its start was."""
    if isinstance(card.get("provenance"), dict):
        prov = dict(card["provenance"])
        prov.setdefault("basis", "exclusion files")
    elif isinstance(card.get("data"), dict) and "exclusion_files" in card["data"]:
        prov = corpus_provenance(card["data"])
    else:
        return unknown("the model card records no pretraining corpus")
    init = card.get("init_weights")
    if isinstance(init, dict) and init.get("sha256"):
        parent = init.get("provenance")
        if not isinstance(parent, dict):
            parent = unknown(f"continued from weights sha256 {str(init['sha256'])[:12]}... whose provenance "
                             f"is not recorded")
        prov = chain(prov, parent)
    return prov


def find_card(path: Path) -> Path | None:
    """The model card beside a checkpoint: `<name>.json` (shipped weights) or `model_card.json` (a run folder)."""
    for card in (path.with_suffix(".json"), path.parent / "model_card.json"):
        if card.is_file():
            return card
    return None


def file_provenance(path, sha256: str, embedded: dict | None = None) -> dict:
    """Provenance of a checkpoint file: the record inside it (``embedded``), else a model card beside it whose
    sha256 is this file's, else unknown."""
    if isinstance(embedded, dict) and embedded:
        prov = dict(embedded)
        prov.setdefault("basis", "exclusion files" if "exclusion_files" in prov else "unknown")
        return prov
    card_path = find_card(Path(path))
    if card_path is None:
        return unknown("no provenance record in the checkpoint and no model card beside it")
    try:
        card = json.loads(card_path.read_text())
    except ValueError:
        return unknown(f"model card {card_path.name} is not valid JSON")
    if not isinstance(card, dict):
        return unknown(f"model card {card_path.name} is not a JSON object")
    if card.get("sha256") and card["sha256"] != sha256:
        return unknown(f"model card {card_path.name} describes another file (sha256 {str(card['sha256'])[:12]}...)")
    return card_provenance(card)


def is_tdc_clean(prov) -> bool:
    return isinstance(prov, dict) and prov.get(CLEAN_KEY) is True


def summary(prov: dict | None) -> str:
    """One line for `uniqsar info`."""
    if not isinstance(prov, dict):
        return "NOT TDC-clean (unknown provenance: no record)"
    corpora = ", ".join(_corpus_text(c) for c in prov.get("corpora", [])) or (
        "unknown" if prov.get("basis") == "unknown" else "no pretraining data")
    flag = "TDC-clean" if is_tdc_clean(prov) else "NOT TDC-clean"
    return f"{flag}; corpora: {corpora}; {prov.get('note', '')}".rstrip("; ")


def _corpus_text(c: dict) -> str:
    if c.get("n_molecules") is not None:
        return f"{c.get('source', '?')} ({c['n_molecules']} molecules)"
    return str(c.get("source", "?"))


def identity_provenance(ident: dict) -> dict:
    """The provenance of a weights identity; an identity without one (or an error record) is unknown."""
    if ident.get("kind") == "error":
        return unknown(f"weights could not be resolved ({ident.get('error')})")
    prov = ident.get("provenance")
    return prov if isinstance(prov, dict) else unknown("the weights identity carries no provenance")


def used_specs(recipe) -> dict:
    """{alias: {"key", "params"}} of the featurizers a recipe's models use (what fit featurizes)."""
    used = sorted({a for m in recipe.models for a in m.features})
    return {a: {"key": recipe.featurizer(a).key, "params": recipe.featurizer(a).params} for a in used}


def recipe_representations(recipe, specs: dict, seed: int) -> dict:
    """{"featurizer:<alias>" | "learner:<id>": {"key", "weights", "kind", "sha256", "seed", "config", "provenance"}}
    for every featurizer or learner of a recipe whose class has weights (``needs_weights``; its
    ``weights_identity()``). Learners initialise random weights with the run seed, featurizers with their own
    ``seed`` parameter. This is the one place a run records which weights it used (the manifest's
    ``representations``). Never raises: weights that cannot be resolved are recorded with unknown provenance."""
    from uniqsar.registry import get_featurizer_class, get_learner_class

    out = {}
    for alias, spec in specs.items():
        cls = get_featurizer_class(spec["key"])
        if cls.needs_weights:
            out[f"featurizer:{alias}"] = _entry(spec["key"], lambda: cls(**spec.get("params", {})).weights_identity())
    for m in recipe.models:
        cls = get_learner_class(m.learner)
        if cls.needs_weights:
            out[f"learner:{m.id}"] = _entry(m.learner,
                                            lambda: cls(cls.tasks[0], seed=seed, **m.params).weights_identity())
    return out


def _entry(key: str, get_identity) -> dict:
    try:
        ident = get_identity() or {"kind": "error", "error": "weights_identity() returned nothing"}
    except Exception as e:  # noqa: BLE001 - a manifest / guard entry never raises
        ident = {"kind": "error", "error": f"{type(e).__name__}: {e}"}
    entry = {"key": key, "weights": ident.get("name", ident.get("kind")), "kind": ident.get("kind"),
             "sha256": ident.get("sha256")}
    entry.update({k: ident[k] for k in ("seed", "config", "error") if k in ident})
    entry["provenance"] = identity_provenance(ident)
    return entry


def representation_lines(representations: dict) -> list[str]:
    """`uniqsar info`: one line per pretrained representation / learner init of a run."""
    if not representations:
        return []
    lines = ["  pretrained representations (provenance):"]
    for name, r in representations.items():
        sha = f", sha256 {r['sha256'][:12]}..." if r.get("sha256") else ""
        lines.append(f"    {name}: {r.get('key')} weights {r.get('weights')}{sha}: {summary(r.get('provenance'))}")
    return lines


def leaky(representations: dict) -> dict:
    """The entries of a `recipe_representations` table that are not declared TDC-clean."""
    return {k: v for k, v in representations.items() if not is_tdc_clean(v.get("provenance"))}


__all__ = ["CLEAN_KEY", "random_init", "unknown", "published", "corpus_provenance", "chain", "card_provenance",
           "file_provenance", "is_tdc_clean", "summary", "identity_provenance", "used_specs", "recipe_representations",
           "representation_lines", "leaky"]
