"""course_lib.cnn.cifar: the CNN (plain and ResNet-9-like), training with resume, evaluation, plots."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from course_lib.cnn import cifar
from course_lib.cnn.airbench import AirbenchNet, LookaheadSGD, Muon, orthogonalise, whitening_filters
from course_lib.cnn.cifar import (
    CifarCNN,
    CourseVGG,
    build_model,
    checkpoint_key,
    make_optimizer,
    one_cycle,
    per_class_accuracy,
    plot_confusion,
    plot_examples,
    plot_history,
    plot_misclassified,
    predict_logits,
    run_key,
    train_cnn,
)
from course_lib.cnn.cifar_data import CLASSES, DeviceBatches
from course_lib.cnn.config import FULL, LAPTOP, SMOKE
from course_lib.core.device import seed_everything
from course_lib.core.digests import code_digest
from course_lib.core.training import count_parameters
from tests.cnn.synthetic import learnable_split

AIRBENCH94 = LAPTOP.override(optimizer="sgd_one_cycle", lookahead=True, warmup=0.23, lr_start=0.2,
                             lr_end=0.07, bias_lr_scale=64.0)
"""The laptop network under airbench94's one-cycle SGD with lookahead (the laptop profile trains by Muon)."""


@pytest.mark.parametrize(("architecture", "params"), [
    # convs: 3*3*c_in*c_out weights + 2*c_out batch-norm; head: 16*10 + 10
    (dict(widths=(8, 16), convs_per_block=2), 232 + 592 + 1184 + 2336 + 170),
    (dict(widths=(8, 16), convs_per_block=1, stem=4, residual=True, logit_scale=0.125),
     116 + 304 + 2 * 592 + 1184 + 2 * 2336 + 170),
])
def test_cnn_shapes_and_parameter_counts(architecture, params):
    model = CifarCNN(SMOKE.override(**architecture), [120.0, 120.0, 110.0], [60.0, 60.0, 65.0])
    logits = model(torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8))
    assert logits.shape == (5, 10)
    assert count_parameters(model) == params


def test_run_key_changes_with_settings_seed_and_source():
    key = run_key(SMOKE, 0, "cifar10-jpg")
    assert key == run_key(SMOKE.override(), 0, "cifar10-jpg") and len(key) == 12
    others = {run_key(SMOKE.override(lr=0.2), 0, "cifar10-jpg"), run_key(SMOKE, 1, "cifar10-jpg"),
              run_key(SMOKE, 0, "cifar-10-batches-py")}
    assert key not in others and len(others) == 3


SETTINGS = SMOKE.override(epochs=2, batch_size=32, lr=0.05, widths=(8, 16), convs_per_block=1, dropout=0.0,
                          augment=True)


def test_training_learns_and_records_whole_split_metrics():
    train, test = learnable_split(320, 0), learnable_split(200, 1)
    seed_everything(0)
    history = train_cnn(build_model(SETTINGS, train), train, test, SETTINGS, seed=0, device="cpu",
                        progress=False)
    assert history.column("test_accuracy")[-1] > 0.9 and history.column("train_accuracy")[-1] > 0.9
    assert set(history.last()) >= {"train_loss", "test_loss", "train_eval_loss", "epoch_time_s"}


def test_checkpoint_key_holds_settings_seed_data_and_code():
    train, test = learnable_split(8, 0), learnable_split(8, 1)
    key = checkpoint_key(SETTINGS, 0, train, test)
    assert key["settings"] == SETTINGS.to_dict() and key["seed"] == 0 and key["source"] == "synthetic"
    assert key["code"] == code_digest("course_lib.cnn", "course_lib.core.training")
    assert key["data"]["train"] == train.digest()
    others = [(SETTINGS.override(lr=0.2), 0, train, test), (SETTINGS, 1, train, test),
              (SETTINGS, 0, learnable_split(8, 2), test), (SETTINGS, 0, train, train)]
    assert all(checkpoint_key(*other) != key for other in others)


def test_per_class_accuracy_and_plots():
    labels = np.array([0, 0, 1, 1, 2])
    assert per_class_accuracy(labels, np.array([0, 1, 1, 1, 0]), 3).tolist() == [0.5, 1.0, 0.0]
    split = learnable_split(40, 2)
    probabilities = np.random.default_rng(0).dirichlet(np.ones(10), size=40)
    figures = [plot_examples(split, per_class=2), plot_misclassified(split, probabilities, n=5),
               plot_confusion(split.labels, probabilities.argmax(1), CLASSES)]
    assert len(figures[1].axes) == 8 and sum(bool(ax.images) for ax in figures[1].axes) == 5
    history = train_cnn(build_model(SETTINGS, split), split, split, SETTINGS.override(epochs=1), seed=0,
                        device="cpu", progress=False)
    figures.append(plot_history(history))
    for fig in figures:
        plt.close(fig)


def test_full_profile_builds_a_resnet9_like_model_that_trains():
    settings = FULL.override(epochs=1, batch_size=4, lr=0.01)  # lr 0.4 on batches of 4 diverges
    split = learnable_split(8, 3)
    model = build_model(settings, split)
    assert 6_000_000 < count_parameters(model) < 8_000_000  # ResNet-9 has 6.6M; one extra residual pair
    assert model.features[1].residual is not None and model.logit_scale == 0.125  # [0] is the stem
    history = train_cnn(model, split, split, settings, seed=0, device="cpu", progress=False)
    assert np.isfinite(history.last()["train_loss"])


def test_build_model_makes_the_course_vgg_at_vgg_width():
    small = build_model(SMOKE.course_recipe(), learnable_split(8, 0))
    assert isinstance(small, CourseVGG) and small.features[4][0].out_channels == 128  # 512 * 0.25
    assert small.head[1].in_features == 128 * 4 * 4


def test_course_recipe_and_optimizers():
    recipe = SMOKE.course_recipe()
    assert (recipe.architecture, recipe.optimizer, recipe.lr, recipe.batch_size, recipe.dropout) == (
        "vgg", "adam", 1e-3, 32, 0.5)
    assert recipe.epochs == SMOKE.vgg_epochs and recipe.weight_decay == 0.0 and not recipe.augment
    model = torch.nn.Linear(2, 2)
    optimizer, schedule = make_optimizer(model, recipe, 10)
    assert isinstance(optimizer, torch.optim.Adam) and schedule is None
    optimizer, schedule = make_optimizer(model, SMOKE, 10)
    assert isinstance(optimizer, torch.optim.SGD) and schedule is not None
    with pytest.raises(ValueError, match="architecture='resnet'"):
        SMOKE.override(architecture="resnet")


def test_training_logs_the_loss_every_few_batches_and_keeps_it_on_resume(tmp_path):
    train, test = learnable_split(96, 0), learnable_split(16, 1)
    settings = SETTINGS.override(batch_size=8, log_every=5, epochs=1)  # 12 batches: groups of 5, 5, 2
    seed_everything(0)
    path = tmp_path / "run.pt"
    history = train_cnn(build_model(settings, train), train, test, settings, seed=0, device="cpu",
                        checkpoint_path=path, progress=False)
    xs, steps = history.step_curve(settings.log_every)
    assert xs == [5 / 12, 10 / 12, 1.0] and all(np.isfinite(steps))
    mean_of_batches = (5 * steps[0] + 5 * steps[1] + 2 * steps[2]) / 12
    assert np.isclose(mean_of_batches, history.last()["train_loss"])
    reloaded = train_cnn(build_model(settings, train), train, test, settings, seed=0, device="cpu",
                         checkpoint_path=path, progress=False)
    assert reloaded.step_curve(settings.log_every) == (xs, steps)


def test_course_recipe_trains_with_adam():
    train = learnable_split(64, 0)
    settings = SMOKE.override(vgg_width=0.125, vgg_batch_size=16).course_recipe()
    seed_everything(0)
    history = train_cnn(build_model(settings, train), train, train, settings, seed=0, device="cpu",
                        progress=False)
    assert len(history.last()["step_losses"]) == 4 and np.isfinite(history.last()["train_loss"])


def test_airbench_whitening_layer_decorrelates_the_patches():
    images = torch.from_numpy(learnable_split(64, 2).images).permute(0, 3, 1, 2)
    model = AirbenchNet((8, 16, 16), [120.0] * 3, [60.0] * 3, images, logit_scale=1 / 9)
    assert model.whiten.weight.shape == (24, 3, 2, 2) and not model.whiten.weight.requires_grad
    with torch.no_grad():
        out = torch.nn.functional.conv2d(model.normalise(images), model.whiten.weight[:12])
    flat = out.permute(0, 2, 3, 1).reshape(-1, 12).double()
    covariance = flat.T @ flat / len(flat)  # whitened: close to the identity (eps keeps it just below)
    assert torch.allclose(covariance, torch.eye(12, dtype=torch.float64), atol=0.05)
    assert torch.equal(model.whiten.weight[12:], -model.whiten.weight[:12])
    assert model(images[:3]).shape == (3, 10)
    frozen = [m.weight.requires_grad for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert frozen and not any(frozen)


def test_laptop_profile_trains_at_tiny_size_with_bias_groups_and_test_time_augmentation():
    train, test = learnable_split(64, 0), learnable_split(16, 1)
    settings = LAPTOP.override(batch_size=16, widths=(8, 16, 16), epochs=2, train_eval_size=32)
    model = build_model(settings, train)
    assert isinstance(model, AirbenchNet)
    optimizer, _ = make_optimizer(model, settings, 4)
    assert isinstance(optimizer, Muon)
    head, shifts, whiten_bias, filters = optimizer.param_groups
    assert head["params"] == [model.head.weight] and not head["orthogonalise"]
    assert shifts["lr"] == pytest.approx(settings.bias_lr_scale * head["lr"]) == pytest.approx(106.0)
    for group in (shifts, whiten_bias):  # every bias loses the head's share of itself per step
        assert group["lr"] * group["weight_decay"] == pytest.approx(head["lr"] * head["weight_decay"])
    assert head["lr"] * head["weight_decay"] == pytest.approx(0.004)  # airbench94_muon: 2e-6 x 2000
    assert len(shifts["params"]) == 6  # one batch norm shift per conv: two per block
    assert whiten_bias["params"] == [model.whiten.bias] and whiten_bias["lr"] == shifts["lr"]
    assert filters["orthogonalise"] and len(filters["params"]) == 6 and filters["weight_decay"] == 0
    assert (filters["lr"], filters["momentum"], head["momentum"]) == (0.24, 0.6, 0.85)
    sgd, _ = make_optimizer(model, AIRBENCH94.override(widths=(8, 16, 16)), 4)
    weights, shifts, whiten_bias = sgd.param_groups
    assert isinstance(sgd, LookaheadSGD) and shifts["lr"] == pytest.approx(64 * weights["lr"])
    assert shifts["weight_decay"] == pytest.approx(weights["weight_decay"] / 64)
    assert whiten_bias["params"] == [model.whiten.bias] and whiten_bias["lr"] == weights["lr"]
    seed_everything(0)
    history = train_cnn(model, train, test, settings, seed=0, device="cpu", progress=False)
    assert len(history.epochs) == 2 and np.isfinite(history.last()["train_loss"])
    batches = DeviceBatches(test, "cpu", 8)
    augmented = predict_logits(model, batches, tta=True)
    x = batches.images.float()
    shifted_up_left = torch.cat([x[:, :, 1:2], x[:, :, :-1]], 2)  # one pixel, the border reflected
    shifted_up_left = torch.cat([shifted_up_left[:, :, :, 1:2], shifted_up_left[:, :, :, :-1]], 3)
    shifted_down_right = torch.cat([x[:, :, 1:], x[:, :, -2:-1]], 2)
    shifted_down_right = torch.cat([shifted_down_right[:, :, :, 1:], shifted_down_right[:, :, :, -2:-1]], 3)
    with torch.no_grad():
        model.eval()
        views = [model(v) for base in (x, shifted_up_left, shifted_down_right) for v in (base, base.flip(3))]
    expected = (views[0] + views[1]) / 4 + (views[2] + views[3] + views[4] + views[5]) / 8
    assert torch.allclose(augmented, expected, atol=1e-5)
    assert not torch.allclose(augmented, predict_logits(model, batches), atol=1e-3)


def test_muon_rates_fall_linearly_and_the_whitening_bias_reaches_zero_when_it_is_frozen():
    train = learnable_split(64, 0)
    settings = LAPTOP.override(widths=(8, 16, 16), epochs=5, whiten_bias_epochs=2)
    model = build_model(settings, train)
    optimizer, schedule = make_optimizer(model, settings, 4)
    rates = []
    for _ in range(20):
        rates.append([g["lr"] for g in optimizer.param_groups])
        model.zero_grad(set_to_none=True)
        schedule.after_step()
    head, whiten, filters = ([r[i] for r in rates] for i in (0, 2, 3))
    assert head == pytest.approx([settings.lr * (1 - k / 19) for k in range(20)])  # to 0 at the last step
    assert filters == pytest.approx([0.24 * (1 - k / 19) for k in range(20)])
    assert whiten == pytest.approx([106.0 * (1 - k / 8) for k in range(8)] + [0.0] * 12)
    assert not model.whiten_bias_trains


def test_orthogonalise_keeps_the_singular_vectors_and_evens_out_the_singular_values():
    torch.manual_seed(0)
    for shape in ((16, 72), (72, 16)):
        matrix = 100 * torch.randn(*shape) * torch.linspace(0.5, 2, shape[1])  # singular values spread 10x
        out = orthogonalise(matrix)
        assert out.shape == matrix.shape and out.dtype == matrix.dtype
        u, _, vh = torch.linalg.svd(matrix, full_matrices=False)
        values = torch.linalg.svdvals(out.double())
        assert 0.3 < values.min() and values.max() < 1.6  # about U V^T: every value near 1 (not exactly)
        cosine = (out.double() * (u @ vh).double()).sum() / (out.double().norm() * (u @ vh).double().norm())
        assert cosine > 0.9


def test_muon_steps_filters_by_their_orthogonalised_momentum_and_the_rest_as_sgd():
    torch.manual_seed(0)
    head, filters = torch.nn.Parameter(torch.randn(3, 4)), torch.nn.Parameter(torch.randn(8, 2, 3, 3))
    reference = torch.nn.Parameter(head.detach().clone())
    muon = Muon([{"params": [head]},
                 {"params": [filters], "lr": 0.5, "momentum": 0.6, "weight_decay": 0.0,
                  "orthogonalise": True}],
                lr=0.1, momentum=0.85, weight_decay=0.01)
    sgd = torch.optim.SGD([reference], lr=0.1, momentum=0.85, nesterov=True, weight_decay=0.01)
    grads = [(torch.randn(3, 4), torch.randn(8, 2, 3, 3)) for _ in range(3)]
    buffer, expected = None, filters.detach().clone()
    for head_grad, filter_grad in grads:
        head.grad, reference.grad, filters.grad = head_grad, head_grad.clone(), filter_grad
        muon.step()
        sgd.step()
        buffer = filter_grad.clone() if buffer is None else 0.6 * buffer + filter_grad
        expected = expected * 8 ** 0.5 / expected.norm()  # rescaled to norm sqrt(out channels), then moved
        nesterov = filter_grad.add(buffer, alpha=0.6)  # as Muon adds (bf16 rounds any other order apart)
        expected -= 0.5 * orthogonalise(nesterov.reshape(8, -1)).view_as(expected)
    assert torch.allclose(head, reference, atol=1e-6)  # torch's Nesterov SGD with coupled weight decay
    assert torch.allclose(filters, expected, atol=1e-4)
    resumed = Muon([{"params": [torch.nn.Parameter(head.detach().clone())]},
                    {"params": [torch.nn.Parameter(filters.detach().clone())], "orthogonalise": True}],
                   lr=1.0, momentum=0.0)
    resumed.load_state_dict(muon.state_dict())
    assert resumed.param_groups[1]["orthogonalise"] and resumed.param_groups[1]["momentum"] == 0.6
    assert torch.equal(next(iter(resumed.state.values()))["momentum_buffer"],
                       next(iter(muon.state.values()))["momentum_buffer"])


def test_lookahead_averages_late_and_resumes_from_its_state():
    weight = torch.nn.Parameter(torch.zeros(3))
    optimizer = LookaheadSGD([weight], total=20, start=5, every=5, lr=0.1, momentum=0.0)
    for _ in range(4):  # before ``start``: plain SGD
        weight.grad = -torch.ones(3)
        optimizer.step()
    assert torch.allclose(weight, torch.full((3,), 0.4))
    assert "lookahead_average" not in optimizer.state[weight]
    for _ in range(6):  # step 5 stores the average, step 10 pulls towards it
        weight.grad = -torch.ones(3)
        optimizer.step()
    rho = 0.95 ** 5 * (10 / 20) ** 3
    assert torch.allclose(weight, torch.full((3,), 0.5 * rho + 1.0 * (1 - rho)))
    copy = torch.nn.Parameter(weight.detach().clone())
    resumed = LookaheadSGD([copy], total=20, start=5, lr=0.1, momentum=0.0)
    resumed.load_state_dict(optimizer.state_dict())
    assert resumed.param_groups[0]["lookahead_step"] == 10
    assert torch.allclose(next(iter(resumed.state.values()))["lookahead_average"], weight)


def test_one_cycle_rises_from_lr_start_to_the_peak_and_falls_to_lr_end():
    assert one_cycle(0, 21, 0.25, 0.2, 0.07) == pytest.approx(0.2)
    assert one_cycle(5, 21, 0.25, 0.2, 0.07) == pytest.approx(1.0)  # the peak: a quarter of 20 steps
    assert one_cycle(20, 21, 0.25, 0.2, 0.07) == pytest.approx(0.07)
    assert one_cycle(21, 21, 0.25, 0.2, 0.07) == pytest.approx(0.07)  # after the last step it stays
    train = learnable_split(64, 0)
    settings = AIRBENCH94.override(widths=(8, 16, 16), epochs=5, lr=0.2, whiten_bias_epochs=2)
    model = build_model(settings, train)
    optimizer, schedule = make_optimizer(model, settings, 4)
    rates = []
    for _ in range(20):
        rates.append([g["lr"] for g in optimizer.param_groups])
        optimizer.step()
        schedule.after_step()
    weights = [r[0] for r in rates]
    assert weights[0] == pytest.approx(0.2 * settings.lr_start)
    assert weights[-1] == pytest.approx(0.2 * settings.lr_end)
    # the peak at 23% of the 19 steps after the first (4.37): rising through step 4, falling from step 5
    assert weights[:5] == sorted(weights[:5]) and weights[5:] == sorted(weights[5:], reverse=True)
    assert max(weights) == weights[5] > 0.9 * 0.2
    assert [r[1] for r in rates] == pytest.approx([64 * w for w in weights])
    assert [r[2] for r in rates] == pytest.approx(weights[:8] + [0.0] * 12)  # the whitening bias: 2 epochs


@pytest.mark.parametrize(("whiten_bias_epochs", "moves"), [(0, False), (None, True)])
def test_the_whitening_bias_trains_only_for_its_epochs(whiten_bias_epochs, moves):
    train, test = learnable_split(64, 0), learnable_split(16, 1)
    settings = LAPTOP.override(batch_size=16, widths=(8, 16, 16), epochs=2, train_eval_size=16, lr=0.2,
                               whiten_bias_epochs=whiten_bias_epochs)
    model = build_model(settings, train)
    seed_everything(0)
    train_cnn(model, train, test, settings, seed=0, device="cpu", progress=False)
    assert bool(model.whiten.bias.abs().max() > 0) is moves


def test_a_held_whitening_bias_takes_no_gradient():
    train = learnable_split(64, 0)
    settings = LAPTOP.override(widths=(8, 16, 16), epochs=2, whiten_bias_epochs=1)
    model = build_model(settings, train)
    optimizer, scheduler = make_optimizer(model, settings, 4)
    x = torch.from_numpy(train.images[:4]).permute(0, 3, 1, 2)
    grads = []
    for _ in range(8):
        model.zero_grad(set_to_none=True)
        model(x).sum().backward()
        grads.append(model.whiten.bias.grad)
        optimizer.step()
        scheduler.after_step()
    assert all(g is not None for g in grads[:4]) and all(g is None for g in grads[4:])  # held after epoch 1
    assert model.whiten.bias.requires_grad  # still counted as a trainable parameter


def test_the_whitening_layer_is_set_by_a_random_sample_of_the_training_images(monkeypatch):
    train = learnable_split(64, 0)
    monkeypatch.setattr(cifar, "WHITENING_IMAGES", 5)
    model = build_model(LAPTOP.override(widths=(8, 16, 16)), train)
    sample = train.subset(5)
    assert not np.array_equal(sample.images, train.images[:5])  # not the first ones (class by class)
    images = torch.from_numpy(sample.images).permute(0, 3, 1, 2)
    assert torch.allclose(model.whiten.weight, whitening_filters(model.normalise(images)))


def test_lookahead_ends_on_its_average():
    weight = torch.nn.Parameter(torch.zeros(3))
    optimizer = LookaheadSGD([weight], total=12, start=5, every=5, lr=0.1, momentum=0.0)
    for step in range(1, 13):
        weight.grad = -torch.ones(3)
        optimizer.step()
        if step == 10:
            after_the_last_average = weight.detach().clone()
    assert torch.equal(weight.detach(), after_the_last_average)  # steps 11 and 12 are averaged away
    assert torch.equal(weight.detach(), optimizer.state[weight]["lookahead_average"])


def test_the_laptop_profile_trains_and_predicts_under_cpu_bf16_autocast(monkeypatch):
    """Where the CPU has native bf16, the laptop profile (amp=True) trains under autocast: the same
    code path, forced here on any CPU (emulated bf16 is slow but fine at this size)."""
    from course_lib.core import device

    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: True)
    train, test = learnable_split(64, 0), learnable_split(16, 1)
    settings = LAPTOP.override(batch_size=16, widths=(8, 16, 16), epochs=2, train_eval_size=16, lr=0.2)
    assert settings.amp and device.amp_dtype("cpu", settings.amp) == torch.bfloat16
    model = build_model(settings, train)
    seed_everything(0)
    history = train_cnn(model, train, test, settings, seed=0, device="cpu", progress=False)
    assert np.isfinite(history.last()["train_loss"])
    logits = predict_logits(model, DeviceBatches(test, "cpu", 8), amp=True, tta=True)
    assert logits.dtype == torch.float32 and torch.isfinite(logits).all()


def test_train_cnn_runs_the_student_loops_on_given_batches(monkeypatch):
    """The course recipe's route: a DataLoader instead of the device batches; every epoch is a call of
    the student's train_epoch and every measurement one of evaluate_classifier (spied on here)."""
    from torch.utils.data import DataLoader, TensorDataset

    train = learnable_split(64, 0)
    settings = SMOKE.override(vgg_width=0.125, vgg_batch_size=16, vgg_epochs=2).course_recipe()
    images = torch.from_numpy(train.images).permute(0, 3, 1, 2)
    loader = DataLoader(TensorDataset(images, torch.from_numpy(train.labels)), batch_size=16, shuffle=True)
    calls = {"train_epoch": 0, "evaluate_classifier": 0}

    def spy(name, function):
        def wrapped(*args):
            calls[name] += 1
            return function(*args)
        monkeypatch.setattr(cifar, name, wrapped)

    spy("train_epoch", cifar.train_epoch)
    spy("evaluate_classifier", cifar.evaluate_classifier)
    seed_everything(0)
    history = train_cnn(build_model(settings, train), train, train, settings, seed=0, device="cpu",
                        progress=False, batches=loader)
    assert calls == {"train_epoch": 2, "evaluate_classifier": 4}  # train and test subsets, two epochs
    assert [len(e["step_losses"]) for e in history.epochs] == [4, 4]
    assert checkpoint_key(settings, 0, train, train, loader)["batches"] == "DataLoader"
    assert "batches" not in checkpoint_key(settings, 0, train, train)
