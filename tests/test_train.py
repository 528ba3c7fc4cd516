"""Tests of mug_nb.train: exact resume of both stages, pickle-free checkpoints, configs, prompt dropout, data."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from mug_nb.train import (EpochBatchSampler, StageConfig, TrainConfig, TrainError, drop_prompt, load_train_config,
                          load_training_checkpoint, mirror_notes, augment_mel, save_training_checkpoint, train_model)

torch.set_num_threads(1)
W = 64  # note frames: the smallest window the tiny U-Net and audio encoder accept


class RandomCharts(Dataset):
    "Random note arrays, mels and prompts; draws from the global RNGs (which the loop reseeds per batch)."
    def __init__(self, n, ids):
        self.n, self.ids = n, ids

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        note = (torch.rand(16, W, generator=g) < 0.08).float()
        note = torch.where(torch.rand(16, W) < 0.02, 1 - note, note)       # "augmentation" from the global RNG
        return {"note": note, "valid_flag": torch.ones(W), "audio": torch.rand(128, 8 * W, generator=g),
                "feature": torch.as_tensor(self.ids)}


def tiny_config(steps=4):
    return TrainConfig(model={"name": "tiny", "prompt": {"vocab": "default"}},
                       vae=StageConfig(lr=1e-3, batch_size=2, epochs=2, max_steps=steps),
                       diffusion=StageConfig(lr=1e-3, batch_size=2, epochs=2, max_steps=steps, optimizer="adamw",
                                             weight_decay=0.01),
                       seed=5, ckpt_every=1000, window=W)


@pytest.fixture(scope="module")
def data():
    from mug_nb.features import DEFAULT_VOCAB, prompt_to_ids
    ids = prompt_to_ids({"sr": 2.0, "ln_ratio": 0.2}, DEFAULT_VOCAB)
    return RandomCharts(6, ids), RandomCharts(2, ids)


def weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def straight(data, tmp_path_factory):
    model, hist = train_model(*data, tiny_config(), tmp_path_factory.mktemp("a"), progress=False)
    return weights(model), hist


@pytest.mark.parametrize("interrupt_at", [2, 6])  # inside stage 1 (VAE), inside stage 2 (diffusion)
def test_interrupted_and_resumed_equals_uninterrupted(data, straight, tmp_path, interrupt_at):
    ref, hist = straight
    assert hist["vae"]["step"] == 4 and hist["diffusion"]["step"] == 4
    train_model(*data, tiny_config(), tmp_path, stop_after=interrupt_at, progress=False)
    first = json.loads((tmp_path / ("vae" if interrupt_at <= 4 else "diffusion") / "last" / "state.json").read_text())
    assert first["step"] == (interrupt_at if interrupt_at <= 4 else interrupt_at - 4)
    model, hist2 = train_model(*data, tiny_config(), tmp_path, resume=True, progress=False)  # fresh objects
    got = weights(model)
    assert got.keys() == ref.keys()
    diff = [k for k in ref if not torch.equal(ref[k], got[k])]
    assert not diff, f"weights differ after resume: {diff[:5]}"
    assert hist2["diffusion"]["train_loss"] == hist["diffusion"]["train_loss"]


def test_resume_matters(data, straight, tmp_path):
    "A run that restarts from scratch with a different seed does not match: the test above can fail."
    ref, _ = straight
    tc = tiny_config(); tc.seed = 6
    model, _ = train_model(*data, tc, tmp_path, progress=False)
    assert any(not torch.equal(ref[k], v) for k, v in weights(model).items())


def test_checkpoint_files_are_not_pickles(straight, data, tmp_path):
    train_model(*data, tiny_config(3), tmp_path, progress=False)
    files = sorted(p.name for p in (tmp_path / "diffusion" / "last").iterdir())
    assert files == ["model.safetensors", "optimizer.safetensors", "state.json"]
    st = json.loads((tmp_path / "diffusion" / "last" / "state.json").read_text())
    assert {"optimizer", "rng", "train_loss", "val_loss", "step", "epoch"} <= set(st)
    assert len(st["val_loss"]) >= 1 and np.isfinite(st["val_loss"]).all()
    from mug_nb.model import load_checkpoint
    m = load_checkpoint(tmp_path / "model")
    assert m.config.prompt.vocab == "default"
    assert "sampling" not in m.meta                           # no refiner: generate keeps the original's settings


def test_optimizer_and_rng_roundtrip(tmp_path):
    m = torch.nn.Linear(3, 2); o = torch.optim.AdamW(m.parameters(), lr=0.1)
    m(torch.randn(4, 3)).sum().backward(); o.step()
    save_training_checkpoint(tmp_path / "ck", m, o, {"step": 1})
    after = torch.rand(3)
    m2 = torch.nn.Linear(3, 2); o2 = torch.optim.AdamW(m2.parameters(), lr=0.5)
    torch.rand(7)
    st = load_training_checkpoint(tmp_path / "ck", m2, o2)
    assert st["step"] == 1 and torch.equal(torch.rand(3), after)            # RNG state restored
    assert torch.equal(m.weight, m2.weight) and o2.param_groups[0]["lr"] == 0.1
    p, p2 = o.param_groups[0]["params"][0], o2.param_groups[0]["params"][0]
    assert torch.equal(o.state[p]["exp_avg_sq"], o2.state[p2]["exp_avg_sq"])
    with pytest.raises(TrainError):
        load_training_checkpoint(tmp_path / "nothing", m2)


def test_train_config_json(tmp_path):
    tc = TrainConfig.full()
    assert tc.diffusion.lr == 4.8e-4 and tc.diffusion.weight_decay == 0.01 and tc.vae.batch_size == 200
    p = tmp_path / "c.json"; p.write_text(json.dumps(tc.to_dict()))
    assert load_train_config(p) == tc and load_train_config("tiny") == TrainConfig.tiny()
    p.write_text('{"vae": {"lr": 1, "lrr": 2}}')
    with pytest.raises(TrainError, match="lrr"):
        load_train_config(p)
    p.write_text("{oops")
    with pytest.raises(TrainError, match="line 1"):
        load_train_config(p)
    with pytest.raises(TrainError):
        load_train_config(tmp_path / "missing.json")


def test_epoch_batches_are_a_seeded_permutation():
    full = list(EpochBatchSampler(11, 4, seed=1, epoch=0))
    assert sorted(sum(full, [])) == list(range(11)) and list(EpochBatchSampler(11, 4, 1, 0, start=2)) == full[2:]
    assert list(EpochBatchSampler(11, 4, 1, 1)) != full


def test_prompt_dropout_rates():
    ids = torch.arange(21).repeat(4000, 1) + 50
    miss = torch.arange(21)
    d = drop_prompt(ids, miss, 0.5, 0.1, torch.Generator().manual_seed(0))
    dropped = (d == miss)
    assert abs(dropped.float().mean().item() - (0.1 + 0.9 * 0.5)) < 0.02
    assert abs(dropped.all(1).float().mean().item() - 0.1) < 0.02
    assert torch.equal(drop_prompt(ids, miss, 0.0, 0.0), ids)


def test_few_feature_prompts():
    "few_p: rows keep only 1-3 of the features they have, every feature gets its turn alone, and p = 0 changes nothing."
    ids = torch.arange(21).repeat(3000, 1) + 100; miss = torch.arange(21)
    ids[:, 15:] = miss[15:]                                           # six features missing in the data itself
    d = drop_prompt(ids, miss, 0.5, 0.0, torch.Generator().manual_seed(0), few_p=1.0)
    kept = (d != miss).sum(1)
    assert kept.min() == 1 and kept.max() == 3 and abs((kept == 1).float().mean() - 1 / 3) < 0.05
    assert (d[kept == 1][:, :15] != miss[:15]).any(0).all() and (d[:, 15:] == miss[15:]).all()
    g = lambda: torch.Generator().manual_seed(5)
    assert torch.equal(drop_prompt(ids, miss, 0.5, 0.1, g()), drop_prompt(ids, miss, 0.5, 0.1, g(), few_p=0.0))


def test_mirror_and_augment():
    a = np.zeros((16, 5), np.float32); a[0, 1] = 1; a[4, 1] = 0.3; a[11, 2] = 1
    m = mirror_notes(a)
    assert m[3, 1] == 1 and m[7, 1] == np.float32(0.3) and m[8, 2] == 1 and np.array_equal(mirror_notes(m), a)
    mel = np.log1p(np.random.default_rng(0).random((128, 40)).astype(np.float32))
    np.random.seed(3); x = augment_mel(mel); np.random.seed(3); y = augment_mel(mel)
    assert x.shape == mel.shape and np.array_equal(x, y) and (x >= 0).all() and not np.array_equal(x, mel)


def test_lr_schedule():
    from mug_nb.train import lr_at
    sc = StageConfig(lr=1e-3)
    assert lr_at(sc, 0, 10) == lr_at(sc, 9, 10) == 1e-3                    # the original: constant
    sc = StageConfig(lr=1e-3, decay_from=4, min_lr_factor=0.0)
    assert [round(lr_at(sc, s, 8) / 1e-3, 3) for s in (0, 3, 4, 6, 8)] == [1, 1, 1, 0.5, 0]


TOOLS = str(Path(__file__).resolve().parents[1] / "tools")      # tools/train_bundled.py, imported by two tests


def test_bundled_recipe_builds_songs_in_parallel_identically(monkeypatch):
    "tools/train_bundled.py: songs synthesised by worker processes give the same windows, in the same order."
    monkeypatch.syspath_prepend(TOOLS)
    from train_bundled import synth_dataset
    one, two = (synth_dataset(range(1000, 1003), w, window=256, duration=12.0) for w in (1, 2))
    assert len(one) == len(two) > 0
    assert all(a[:3] == b[:3] and np.array_equal(a[3], b[3]) for a, b in zip(one.items, two.items))
    assert all(np.array_equal(a, b) for a, b in zip(one.mels, two.mels))
    for i in (0, len(one) - 1):
        x, y = one[i], two[i]
        assert torch.equal(x["note"].abs().sum(), y["note"].abs().sum()) and torch.equal(x["feature"], y["feature"])


def test_bundled_recipe_data_cache_roundtrip(tmp_path, monkeypatch):
    "tools/train_bundled.py --data-cache: a plain .npz (loaded without pickles) that gives back the same windows."
    monkeypatch.syspath_prepend(TOOLS)
    from train_bundled import load_datasets, save_datasets, synth_dataset
    from mug_nb.train import SynthChartDataset
    kw = dict(window=256, duration=12.0)
    train, val = synth_dataset(range(1000, 1002), 1, **kw), SynthChartDataset(range(900, 901), augment=False, hop=256, **kw)
    save_datasets(tmp_path / "c.npz", train, val)
    t2, v2 = load_datasets(tmp_path / "c.npz", **kw)
    for a, b in ((train, t2), (val, v2)):
        assert a.augment == b.augment and len(a) == len(b) > 0
        assert all(x[:3] == y[:3] and np.array_equal(x[3], y[3]) for x, y in zip(a.items, b.items))
        assert all(np.array_equal(x, y) and x.dtype == y.dtype for x, y in zip(a.mels + a.notes, b.mels + b.notes))
    assert torch.equal(val[0]["audio"], v2[0]["audio"]) and torch.equal(val[0]["note"], v2[0]["note"])


def test_bundled_finalize_records_the_runs_own_training_config(tmp_path, monkeypatch):
    "tools/train_bundled.py --finalize: the checkpoint records the lr and batch the run trained with, not the defaults."
    monkeypatch.syspath_prepend(TOOLS)
    import argparse
    from safetensors.torch import save_file
    from train_bundled import bundled_train_config, main
    from mug_nb.model import build_model
    from mug_nb.train import model_config
    args = argparse.Namespace(unet_channels=16, prompt_embedding=False, onset_bands=0, vae_lr=1e-3, vae_batch=8,
                              vae_steps=10, head_pos_weight=4.0, lr=3e-4, batch=8, diff_steps=30, decay_from=5,
                              window=512, stages=["vae", "diffusion"])
    tc = bundled_train_config(args)                          # what the run trained with: lr 3e-4, batch 8
    (tmp_path / "train_config.json").write_text(json.dumps(tc.to_dict()))
    (tmp_path / "command.json").write_text(json.dumps({"lr": 3e-4, "batch": 8}))
    sd = {k: v.contiguous() for k, v in build_model(model_config(tc)).state_dict().items()}
    for stage, step in (("vae", 10), ("diffusion", 30)):
        (tmp_path / stage / "last").mkdir(parents=True)
        save_file(sd, str(tmp_path / stage / "last" / "model.safetensors"))
        (tmp_path / stage / "last" / "state.json").write_text(json.dumps(
            {"step": step, "seconds": 1.0, "train_loss": [0.5], "val_loss": [0.4]}))
    main(["--out", str(tmp_path), "--finalize"])             # this command's own defaults: another lr and batch
    rec = json.loads((tmp_path / "model" / "config.json").read_text())["train_config"]["diffusion"]
    assert (rec["lr"], rec["batch_size"], rec["max_steps"]) == (3e-4, 8, 30)


def test_bundled_refiner_stage_trains_only_the_refiner(tmp_path, monkeypatch):
    "tools/train_bundled.py --stages refiner: drafts from the warm-started model, then only the refiner's weights move."
    monkeypatch.syspath_prepend(TOOLS)
    from safetensors.torch import load_file, save_file
    from train_bundled import bundled_train_config, main
    from mug_nb.model import build_model, load_checkpoint
    from mug_nb.train import model_config
    flags = ["--window", "256", "--duration", "12", "--songs", "1", "--val-songs", "1", "--seed0", "3000"]
    ap = __import__("argparse").Namespace(unet_channels=16, prompt_embedding=False, onset_bands=0, vae_lr=1e-3,
                                          vae_batch=8, vae_steps=1, head_pos_weight=4.0, lr=1e-3, batch=4,
                                          diff_steps=1, decay_from=None, window=256, stages=["vae", "diffusion"])
    torch.manual_seed(0)
    init = {k: v.contiguous() for k, v in build_model(model_config(bundled_train_config(ap))).state_dict().items()}
    save_file(init, str(tmp_path / "init.safetensors"))
    main(["--out", str(tmp_path / "run"), "--stages", "refiner", "--refiner-channels", "16", "--refiner-steps", "3",
          "--refiner-batch", "4", "--recommend-steps", "2", "--init-from", str(tmp_path / "init.safetensors"), *flags])
    m = load_checkpoint(tmp_path / "run" / "model")
    assert m.refiner is not None and m.config.refiner.channels == 16
    from mug_nb.generate import sampling_settings              # sampled the way its refiner's drafts were made
    assert m.meta["sampling"] == {"cfg_scale": 1.0, "steps": 2} and sampling_settings(m) == (2, 1.0)
    after = load_file(str(tmp_path / "run" / "model" / "model.safetensors"))
    # everything else is frozen; S4 kernels re-express C when they first meet a longer input (10_s4), a change of
    # parameterisation that computes the same function
    changed = [k for k, v in init.items() if not torch.equal(after[k], v) and not k.endswith(("kernel.C", "kernel.L"))]
    assert changed == [], changed
    assert float(after["refiner.out.weight"].abs().sum()) > 0                          # the zero-initialised output learned
    assert json.loads((tmp_path / "run" / "history.json").read_text())["refiner"]["step"] == 3
    with pytest.raises(SystemExit, match="refiner run"):
        main(["--out", str(tmp_path / "run"), "--stages", "refiner", "--finalize"])


def test_callback_sees_every_step_and_changes_nothing(data, straight, tmp_path):
    "`callback(stage, state, model)` after each optimizer step of each stage; `every` filters by stage and step."
    from mug_nb.train import every
    ref, hist = straight
    seen, picked = [], []
    def cb(stage, state, model):
        seen.append((stage, state["step"], type(model).__name__))
        picked_cb(stage, state, model)
    picked_cb = every(2, lambda state, model: picked.append(state["step"]), stage="diffusion")
    model, hist2 = train_model(*data, tiny_config(), tmp_path, progress=False, callback=cb)
    assert [(s, n) for s, n, _ in seen] == [("vae", i) for i in range(1, 5)] + [("diffusion", i) for i in range(1, 5)]
    assert seen[0][2] != seen[-1][2]          # the VAE alone in stage 1, the whole model in stage 2
    assert picked == [2, 4]
    got = weights(model)
    assert all(torch.equal(ref[k], got[k]) for k in ref)
    assert hist2["diffusion"]["train_loss"] == hist["diffusion"]["train_loss"]
