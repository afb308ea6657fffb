"""TDC ADMET group: task table, data dir resolution, the official split and scoring."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from uniqsar.data import tdc
from uniqsar.data.tdc import (PUBLISHED, TASKS, evaluate, load_task, resolve_data_dir,
                              summarize, train_valid_split)

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
DATA = SHARED / "tdc_admet_group"
SPLITS = SHARED / "tdc_admet_group_splits"
needs_shared = pytest.mark.skipif(
    not (DATA.is_dir() and SPLITS.is_dir()),
    reason=f"shared TDC data not found at {DATA} and {SPLITS}")

# tdc.md §2.2 reference sizes (train/valid) for selected tasks, incl. every `**` row.
REF_SIZES = {
    "caco2_wang": [(637, 91)] * 5,
    "hia_hou": [(403, 58)] * 4 + [(397, 64)],
    "solubility_aqsoldb": [(6986, 999)] * 4 + [(5045, 2940)],
    "ames": [(5093, 728), (4553, 1268), (5093, 728), (5093, 728), (5093, 728)],
    "dili": [(325, 54)] + [(331, 48)] * 4,
    "ld50_zhu": [(5168, 739), (5168, 739), (3970, 1937), (5168, 739), (4367, 1540)],
    "cyp2d6_veith": [(9191, 1313)] * 5,
}


# --------------------------------------------------------------------------- task table
def test_task_table():
    assert len(TASKS) == 22
    kinds = [t.task for t in TASKS.values()]
    assert kinds.count("regression") == 9 and kinds.count("binary") == 13
    assert TASKS["cyp3a4_substrate_carbonmangels"].metric == "roc_auc"
    assert {n for n, t in TASKS.items() if t.metric == "pr_auc"} == {
        "cyp2c9_veith", "cyp2d6_veith", "cyp3a4_veith",
        "cyp2c9_substrate_carbonmangels", "cyp2d6_substrate_carbonmangels"}
    assert {n for n, t in TASKS.items() if t.metric == "spearman"} == {
        n for n, t in TASKS.items() if t.log_scale} == {
        "vdss_lombardo", "half_life_obach", "clearance_hepatocyte_az", "clearance_microsome_az"}
    assert {n for n, t in TASKS.items() if t.metric == "mae"} == {
        "caco2_wang", "lipophilicity_astrazeneca", "solubility_aqsoldb", "ppbr_az", "ld50_zhu"}
    assert not TASKS["caco2_wang"].greater_is_better and TASKS["ames"].greater_is_better
    assert tdc.task_info(" Caco2_Wang ").name == "caco2_wang"
    with pytest.raises(KeyError, match="known tasks: caco2_wang"):
        tdc.task_info("tox21")


def test_published_anchors():
    assert set(PUBLISHED) == set(TASKS) == set(tdc.LEADERBOARD_BEST_METHOD)
    for name, anchors in PUBLISHED.items():
        assert set(anchors) == {"maplight", "maplight_gnn", "chemprop_rdkit", "leaderboard_best"}
        best = anchors["leaderboard_best"][0]
        for mean, std in anchors.values():
            assert std >= 0
            # the leaderboard best is at least as good as every other anchor, in its direction
            assert (best >= mean) if TASKS[name].greater_is_better else (best <= mean), name
    assert PUBLISHED["bioavailability_ma"]["leaderboard_best"] == (0.753, 0.0)
    assert PUBLISHED["caco2_wang"]["maplight"] == (0.276, 0.005)


# --------------------------------------------------------------------------- data dir
def _tiny_task(root: Path, name: str = "caco2_wang") -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    df = pd.DataFrame({"Drug_ID": ["a", "b", "c"], "Drug": ["CCO", "c1ccccc1O", "C1CCCCC1N"],
                       "Y": [0.1, 0.2, 0.3]})
    df.to_csv(folder / "train_val.csv", index=False)
    df.iloc[:1].to_csv(folder / "test.csv", index=False)
    return root


def test_resolve_data_dir_layouts(tmp_path, monkeypatch):
    src = _tiny_task(tmp_path / "src")
    direct = tmp_path / "direct"
    direct.symlink_to(src, target_is_directory=True)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "admet_group").symlink_to(src, target_is_directory=True)

    assert resolve_data_dir(direct) == src.resolve()
    assert resolve_data_dir(str(cache)) == src.resolve()  # PyTDC: <path>/admet_group/<task>/
    monkeypatch.setenv(tdc.ENV_VAR, str(cache))
    assert resolve_data_dir() == src.resolve()
    train_val, test = load_task("CACO2_WANG")
    assert list(train_val.columns) == ["Drug_ID", "Drug", "Y"]
    assert (len(train_val), len(test)) == (3, 1)
    with pytest.raises(FileNotFoundError, match="hia_hou"):
        load_task("hia_hou")  # known task, folder absent
    with pytest.raises(KeyError, match="known tasks"):
        load_task("no_such_task")


def test_resolve_data_dir_errors(tmp_path, monkeypatch):
    monkeypatch.delenv(tdc.ENV_VAR, raising=False)
    with pytest.raises(FileNotFoundError, match=tdc.ENV_VAR):
        resolve_data_dir()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError) as err:
        resolve_data_dir(empty)
    msg = str(err.value)
    assert str(empty) in msg and str(empty / "admet_group") in msg and "tried" in msg
    monkeypatch.setenv(tdc.ENV_VAR, str(empty))
    with pytest.raises(FileNotFoundError, match=rf"\${tdc.ENV_VAR}"):
        resolve_data_dir()


# --------------------------------------------------------------------------- split (synthetic)
def test_split_on_synthetic_data_follows_pytdc_rules():
    # rows 1 and 8 share the benzene scaffold; row 4 is unparsable and must be dropped.
    smiles = ["CCO", "c1ccccc1C", "C1CC1", "C1CCC1", "not_a_smiles", "C1CCCC1", "C1CCNC1",
              "c1ccncc1", "c1ccccc1O", "C1CCOC1", "c1ccsc1", "c1ccoc1"]
    df = pd.DataFrame({"Drug": smiles})
    groups, errors = tdc.scaffold_groups(df["Drug"])
    assert errors == 1
    assert groups[1] == {1, 8} and len(groups) == 10  # first-appearance order
    n = len(df) - 1
    for seed in tdc.SEEDS:
        train, valid = train_valid_split(df, seed)
        assert 4 not in train and 4 not in valid
        assert len(train) <= int(n * 0.875) and len(train) + len(valid) == n
        assert not set(train) & set(valid)
        assert np.array_equal(train, train_valid_split(df, seed)[0])  # deterministic
        for part in (train, valid):
            if 1 in part:  # groups are emitted in CPython set order: {1, 8} iterates 8, 1
                pos = list(part).index(8)
                assert list(part[pos:pos + 2]) == [8, 1]


# --------------------------------------------------------------------------- split (reference)
@pytest.fixture(scope="module")
def all_splits() -> dict[str, dict[int, tuple[np.ndarray, np.ndarray]]]:
    """Our splits for 22 tasks x 5 seeds (scaffolds once per task, 2 worker processes)."""
    names = sorted(TASKS, key=lambda t: -TASKS[t].n_train_val)  # big first: better balance
    workers = min(2, os.cpu_count() or 1)
    if workers == 1:
        return {n: tdc.seed_splits(n, DATA) for n in names}
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return dict(zip(names, pool.map(tdc.seed_splits, names, [DATA] * len(names))))


@needs_shared
@pytest.mark.parametrize("name", list(TASKS))
def test_split_matches_reference(name, all_splits):
    ref = pd.read_csv(SPLITS / f"{name}.csv")
    assert np.array_equal(ref["row"].to_numpy(), np.arange(TASKS[name].n_train_val))
    for seed, (train, valid) in all_splits[name].items():
        ours = np.full(len(ref), "", dtype=object)
        ours[train] = "train"
        ours[valid] = "valid"
        assert len(train) + len(valid) == len(ref)  # disjoint and complete (no RDKit errors)
        mismatch = np.flatnonzero(ours != ref[f"seed{seed}"].to_numpy())
        assert mismatch.size == 0, f"{name} seed {seed}: {mismatch.size} rows differ"


@needs_shared
@pytest.mark.parametrize("name", list(REF_SIZES))
def test_split_sizes_match_table(name, all_splits):
    sizes = [(len(t), len(v)) for t, v in all_splits[name].values()]
    assert sizes == REF_SIZES[name]


@needs_shared
def test_load_task_sizes_match_table():
    for name, info in TASKS.items():
        train_val, test = load_task(name, DATA)
        assert (len(train_val), len(test)) == (info.n_train_val, info.n_test), name


@needs_shared
def test_single_chemotype_valid_sets(all_splits):
    train_val, _ = load_task("solubility_aqsoldb", DATA)
    _, valid = all_splits["solubility_aqsoldb"][5]
    assert len(valid) == 2940  # the acyclic molecules: scaffold ''
    groups, _ = tdc.scaffold_groups(train_val["Drug"])
    assert set(valid.tolist()) in groups


# --------------------------------------------------------------------------- scoring
def test_evaluate_rounds_official_metric():
    y = np.array([0, 1, 0, 1, 1, 0])
    p = np.array([0.1, 0.8, 0.35, 0.3, 0.9, 0.2])
    from sklearn.metrics import average_precision_score, roc_auc_score

    assert evaluate("ames", y, p) == round(roc_auc_score(y, p), 3)
    assert evaluate("cyp2d6_veith", y, p) == round(average_precision_score(y, p), 3)
    assert evaluate("Caco2_Wang", [1.0, 2.0], [1.5, 2.25]) == 0.375
    with pytest.raises(ValueError, match="NaN"):
        evaluate("caco2_wang", [1.0, 2.0], [1.5, np.nan])
    with pytest.raises(ValueError, match="undefined"):
        evaluate("ames", [1, 1], [0.2, 0.3])
    with pytest.raises(ValueError, match="2 labels but 3"):
        evaluate("caco2_wang", [1.0, 2.0], [1.0, 2.0, 3.0])


def test_summarize_population_std():
    scores = [0.271, 0.274, 0.280, 0.276, 0.279]
    mean, std = summarize(scores)
    assert mean == round(np.mean(scores), 3) == 0.276
    assert std == round(np.std(scores), 3) == 0.003  # ddof=0 (ddof=1 would give 0.004)
    assert round(np.std(scores, ddof=1), 3) == 0.004
    with pytest.raises(ValueError, match=">= 5"):
        summarize(scores[:3])
    # PyTDC rounds NumPy scalars: mean 0.2725 -> 0.272 (Python's round(float) gives 0.273)
    assert summarize(scores[:2], allow_fewer=True) == (0.272, 0.002)
    assert tdc.round3(0.2725) == 0.272 and round(0.2725, 3) == 0.273
