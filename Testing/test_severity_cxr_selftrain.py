"""Progressive self-training bookkeeping and a CPU smoke run of the severity task."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from covidweak.severity.cxr_selftrain import SelfTrainSchedule


def test_progressive_schedule_adds_a_fifth_every_interval():
    schedule = SelfTrainSchedule(unlabelled=10, mode="progressive", first_step=100, every=100, increments=5, seed=3)
    assert [schedule.stage(s) for s in (0, 99, 100, 199, 200, 450, 500, 10_000)] == [0, 0, 1, 1, 2, 4, 5, 5]
    assert [len(schedule.pool(s)) for s in (99, 100, 200, 300, 400, 500)] == [0, 2, 4, 6, 8, 10]
    order = schedule.order()
    assert sorted(order) == list(range(10))
    assert schedule.pool(250).tolist() == sorted(order[:4].tolist())  # stage 2: the first 4 of the order
    assert set(schedule.pool(150)) <= set(schedule.pool(250))
    assert schedule.pool(600).tolist() == list(range(10))


def test_odd_pool_sizes_round_up_and_one_step_adds_everything_at_once():
    assert [SelfTrainSchedule(7, first_step=0, every=1, increments=5).count(k) for k in range(6)] == [0, 2, 3, 5, 6, 7]
    one_step = SelfTrainSchedule(unlabelled=10, mode="one-step", first_step=100, every=100, increments=5)
    assert len(one_step.pool(99)) == 0 and len(one_step.pool(100)) == 10 and one_step.stage(5000) == 1
    assert len(SelfTrainSchedule(unlabelled=10, mode="none").pool(10_000)) == 0
    with pytest.raises(ValueError):
        SelfTrainSchedule(unlabelled=10, mode="twice")


@pytest.fixture(scope="module")
def prepared_task(phantom_dir):
    from covidweak.datasets import open_dataset, split_by_patient
    from covidweak.training.config import build_config
    from covidweak.training.task import TaskData
    from covidweak.training.tasks import get_task

    task = get_task("severity-selftrain")
    config = build_config(task, overrides=[
        "batch_size=4", "params.steps_per_epoch=4", "params.ensemble=2", "params.labelled_fraction=0.34",
        "params.first_step=2", "params.every=2", "params.increments=2", "preprocess.size=64",
        "model.vit={depth: 1, dim: 32, heads: 2, mlp_dim: 64}", "model.embed={init_features: 8, growth_rate: 4}"])
    splits = split_by_patient(open_dataset(phantom_dir), [0.75, 0.25, 0.0], seed=0)
    task.prepare(TaskData(splits=splits, root=phantom_dir), config)
    return task, config


def test_task_batches_follow_the_schedule(prepared_task):
    task, config = prepared_task
    labelled = int(task.labelled.sum())
    assert labelled == 2 and task.schedule.unlabelled == 4  # 3 training patients x 2 studies; round(0.34 x 3) = 1 labelled patient
    first, second = task.train_batches(config, 0, seed=0), task.train_batches(config, 1, seed=0)
    steps = [int(b["step"][0]) for b in first + second]
    assert steps == list(range(8))
    for batch in first + second:
        pool = task.pool(int(batch["step"][0]))
        assert set(batch["index"].tolist()) <= set(pool.tolist())
    assert len(task.pool(1)) == 2 and len(task.pool(2)) == 4 and len(task.pool(4)) == 6


@pytest.mark.slow
def test_cpu_smoke_run_lowers_the_loss_and_fills_the_ensemble(prepared_task):
    task, config = prepared_task
    torch.manual_seed(0)
    model = task.build_model(config)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    batch = task.train_batches(config, 0, seed=0)[0]
    losses = []
    for _ in range(15):
        loss = task.training_step(model, batch, config, "cpu")["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert np.mean(losses[-3:]) < losses[0]
    # Update 6 of 8 (= total - steps_per_epoch) copies the head into the second ensemble slot.
    task.training_step(model, {"index": batch["index"], "step": torch.full((4,), 4)}, config, "cpu")
    assert model.filled.tolist() == [False, True]
    with torch.no_grad():  # as the training loop calls it
        metrics = task.validate(model.eval(), config, "cpu")
    assert set(metrics) == {"mse", "mae", "cc", "r2", "mean_auc"} and metrics["mse"] >= 0


def test_pseudo_labels_are_the_teachers_binarised_arrays(prepared_task):
    task, config = prepared_task
    torch.manual_seed(1)
    model = task.build_model(config)
    task.stage = None
    task.training_step(model, task.train_batches(config, 0, seed=0)[2], config, "cpu")  # step 2: stage 1
    pool = task.pool(2)
    unlabelled = [i for i in pool if not task.labelled[i]]
    assert task.stage == 1 and len(unlabelled) == 2
    train = task.cache["train"]
    with torch.no_grad():
        teacher = task._arrays(model.eval(), train, torch.as_tensor(unlabelled), trained_only=True)
    assert torch.equal(task.pseudo[unlabelled], (teacher >= 0.5).float())
    labelled = np.flatnonzero(task.labelled)
    assert torch.equal(task.pseudo[labelled], train["severity"][labelled])


def test_training_step_runs_under_bf16_autocast(prepared_task):
    # The loss is BCE on max-pooled probabilities, which autocast refuses; an H100 run with
    # amp=bf16 stopped there until the loss was taken out of autocast.
    task, config = prepared_task
    torch.manual_seed(2)
    model = task.build_model(config)
    batch = task.train_batches(config, 0, seed=0)[0]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = task.training_step(model, batch, config, "cpu")["loss"]
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()


def test_tuned_embedding_trains_f_at_its_own_rate_and_keeps_its_statistics(phantom_dir):
    """model.tune_embed: F's weights get gradients and an update at embed_lr_factor x lr, while its
    batch-norm statistics stay put; a frozen F gets neither and its features are cached."""
    from covidweak.datasets import open_dataset, split_by_patient
    from covidweak.training.config import build_config
    from covidweak.training.loop import build_model_and_optimizer
    from covidweak.training.task import TaskData
    from covidweak.training.tasks import get_task

    splits = split_by_patient(open_dataset(phantom_dir), [0.75, 0.25, 0.0], seed=0)
    small = ["batch_size=4", "params.steps_per_epoch=4", "params.ensemble=1", "preprocess.size=64",
             "model.vit={depth: 1, dim: 32, heads: 2, mlp_dim: 64}", "model.embed={init_features: 8, growth_rate: 4}",
             "optim.lr=0.001", "params.embed_lr_factor=0.1"]
    for tuned in (True, False):
        task = get_task("severity")
        config = build_config(task, overrides=small + [f"model.tune_embed={str(tuned).lower()}"])
        task.prepare(TaskData(splits=splits, root=phantom_dir), config)
        model, optimizer = build_model_and_optimizer(task, config, "cpu")
        assert [g["lr"] for g in optimizer.param_groups] == ([0.001, 0.0001] if tuned else [0.001])
        weights = {k: v.clone() for k, v in model.embed.state_dict().items()}
        model.train()
        loss = task.training_step(model, task.train_batches(config, 0, seed=0)[0], config, "cpu")["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        after = model.embed.state_dict()
        changed = [k for k in weights if not torch.equal(weights[k], after[k])]
        assert ("features" not in task.cache["train"]) == tuned
        assert bool(changed) == tuned
        assert all(not k.endswith(("running_mean", "running_var", "num_batches_tracked")) for k in changed)
