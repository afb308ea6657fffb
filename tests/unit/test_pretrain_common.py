"""The pretraining loop the three kinds share (``pretrain_common.run_steps``): cadence, CSV rows, epochs, Ctrl-C."""
from __future__ import annotations

import csv
from types import SimpleNamespace

import pytest

from uniqsar.models.pretrain_common import CsvLog, Progress, run_steps


def _loop(tmp_path, seen, total=7, n_batches=3, interrupt_at=None, start=None):
    """A fake kind: epochs of ``n_batches`` batches (each batch: (epoch, position)); records into ``seen``."""
    seen.update({"batches": [], "saves": [], "said": [], "epochs_started": []})
    p = Progress("tokens_seen")
    if start is not None:
        p.step, p.epoch, p.pos_in_epoch = start
    t = SimpleNamespace(log_every=2, val_every=3, checkpoint_every=4)
    log = CsvLog(tmp_path / "losses.csv", ["step", "loss", "acc", "lr", "mols", "tokens", "elapsed_s"], None)
    vlog = CsvLog(tmp_path / "val_losses.csv", ["step", "loss", "acc"], None)

    def batches(epoch, start):
        seen["epochs_started"].append((epoch, start))
        for k in range(start, n_batches):
            seen["batches"].append((epoch, k))
            yield epoch, k

    def train_step(batch):
        if p.step + 1 == interrupt_at:
            raise KeyboardInterrupt
        p.counts["tokens_seen"] += 10
        return {"loss": float(p.step + 1), "acc": 0.5}, 0.1, 4, {"tokens": 10}

    last = run_steps(p, total, t, batches=batches, train_step=train_step,
                     describe=lambda v: f"loss {v['loss']:.1f} acc {v['acc']:.1f}",
                     validate=lambda: {"loss": 9.0, "acc": 1.0}, save_state=lambda: seen["saves"].append(p.step),
                     log=log, vlog=vlog, say=seen["said"].append)
    seen["logs"] = (log, vlog)
    return p, last


def _rows(path):
    return list(csv.reader(open(path, newline="")))


def test_cadence_rows_and_epochs(tmp_path):
    seen = {}
    p, last = _loop(tmp_path, seen)
    assert (p.step, p.epoch, p.pos_in_epoch, p.mols_seen, p.counts) == (7, 2, 1, 28, {"tokens_seen": 70})
    assert seen["batches"] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (2, 0)]  # none drawn past the end
    assert seen["saves"] == [4, 7]  # every checkpoint_every steps and at the end
    rows = _rows(tmp_path / "losses.csv")
    assert rows[0] == ["step", "loss", "acc", "lr", "mols", "tokens", "elapsed_s"]
    assert [r[:6] for r in rows[1:3]] == [["1", "1", "0.5", "0.1", "4", "10"], ["2", "2", "0.5", "0.1", "4", "10"]]
    assert [r[0] for r in _rows(tmp_path / "val_losses.csv")[1:]] == ["3", "6", "7"]
    windows = [s for s in seen["said"] if "ETA" in s]
    assert [s.split(" |")[0] for s in windows] == ["step 2/7", "step 4/7", "step 6/7", "step 7/7"]
    assert windows[0].startswith("step 2/7 | loss 1.5 acc 0.5 | lr 1.00e-01 | ") and "mol/s" in windows[0]
    assert "step 3 validation: loss 9.0 acc 1.0" in seen["said"]
    assert last == {"loss": 7.0, "acc": 0.5}  # the last window: step 7 alone
    assert all(c.fh.closed for c in seen["logs"])


def test_interrupt_saves_and_resume_position(tmp_path):
    seen = {}
    with pytest.raises(KeyboardInterrupt):
        _loop(tmp_path, seen, interrupt_at=6)
    assert seen["saves"] == [4, 5]  # the checkpoint at step 4 (cadence), then the one Ctrl-C writes at step 5
    assert seen["said"][-1] == "interrupted at step 5; saving a checkpoint (resume with --resume)"
    (tmp_path / "again").mkdir()
    p, _ = _loop(tmp_path / "again", seen, start=(5, 1, 2))  # resumed at step 5: epoch 1, batch 2
    assert seen["epochs_started"] == [(1, 2), (2, 0)] and seen["batches"][0] == (1, 2)
    assert p.step == 7 and seen["saves"] == [7]


def test_interrupt_message(tmp_path):
    said = []
    p = Progress()
    t = SimpleNamespace(log_every=1, val_every=1, checkpoint_every=1)
    log = CsvLog(tmp_path / "l.csv", ["step", "loss", "lr", "mols", "elapsed_s"], None)
    vlog = CsvLog(tmp_path / "v.csv", ["step", "loss"], None)

    def train_step(batch):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_steps(p, 3, t, batches=lambda e, s: iter([1, 2, 3]), train_step=train_step, describe=str, validate=None,
                  save_state=lambda: said.append("saved"), log=log, vlog=vlog, say=said.append)
    assert said == ["interrupted at step 0; saving a checkpoint (resume with --resume)", "saved"]
    assert log.fh.closed and vlog.fh.closed
