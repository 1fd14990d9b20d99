"""FEDS teacher/student: architecture facts, growth from the hyperprior, distillation losses,
the stage schedule and a real distillation run through the CLI (resumed, exported)."""

import json

import pytest
import torch
from PIL import Image

from conftest import make_untrained, random_image
from licodec.cli.main import main
from licodec.codec.blocks import ResidualBlock, SwinV2Stage
from licodec.train.distill import (
    ALIGNED,
    Distiller,
    channel_distillation_loss,
    channel_entropy_weights,
    feature_alignment_loss,
    stage_at,
)
from licodec.zoo import create_model, export_weights


def n_params(m):
    return sum(p.numel() for p in m.parameters())


@pytest.fixture(scope="module")
def teacher():
    return make_untrained("feds-teacher")


@pytest.fixture(scope="module")
def student():
    return make_untrained("feds-student")


def test_teacher_is_larger_than_the_core_and_student_at_most_40_percent(teacher, student):
    core = make_untrained("hyperprior-vr")
    assert teacher.config.M > core.config.M
    assert n_params(teacher) > n_params(core)
    assert n_params(student) <= 0.4 * n_params(teacher)
    swin = [m for m in teacher.modules() if isinstance(m, SwinV2Stage)]
    # analysis, synthesis and both hyper transforms carry Swin-V2 stages
    for part in (teacher.g_a, teacher.g_s, teacher.latent.h_a, teacher.latent.h_s):
        assert any(isinstance(m, SwinV2Stage) for m in part.modules())
    assert len(swin) >= 6 and any(isinstance(m, ResidualBlock) for m in teacher.modules())
    assert not any(isinstance(m, (SwinV2Stage, ResidualBlock)) for m in student.modules())


def test_swin_stage_any_size_and_scaled_cosine_attention():
    torch.manual_seed(0)
    stage = SwinV2Stage(32, depth=2, window=8)
    for blk in stage.blocks:  # move away from the identity start
        torch.nn.init.ones_(blk.norm1.weight)
        torch.nn.init.ones_(blk.norm2.weight)
    assert hasattr(stage.blocks[0].attn, "logit_scale") and hasattr(stage.blocks[0].attn, "cpb_mlp")
    assert stage.blocks[1].shift_size == (4, 4)
    for h, w in [(1, 1), (5, 13), (8, 8), (17, 30)]:
        x = torch.randn(2, 32, h, w)
        y = stage(x)
        assert y.shape == x.shape and torch.isfinite(y).all()
        assert not torch.allclose(y, x)


def test_new_blocks_start_as_identity():
    x = torch.randn(1, 32, 9, 11)
    assert torch.equal(ResidualBlock(32)(x), x)
    assert torch.allclose(SwinV2Stage(32)(x), x)


def test_teacher_grown_from_the_hyperprior_computes_the_same():
    import licodec

    core = licodec.load("hyperprior-vr")
    torch.manual_seed(0)
    teacher = create_model("feds-teacher", pretrained=False)
    teacher.grow_from(core)
    x = torch.rand(2, 3, 64, 128)
    with torch.no_grad():
        a, b = core(x, 3.3), teacher(x, 3.3)
    assert torch.equal(a.x_hat, b.x_hat)
    # the 48 extra latent channels are all zero, coded at the smallest scale: a few bits in all
    assert torch.allclose(a.bits, b.bits, atol=1.0)


def test_grow_refuses_a_mismatched_source():
    teacher = create_model("feds-teacher", pretrained=False)
    with pytest.raises(ValueError, match="cannot grow"):
        teacher.grow_from(make_untrained("hyperprior-vr", N=64))


@torch.no_grad()
def test_feature_alignment_loss_zero_when_equal_and_grows_with_difference():
    torch.manual_seed(0)
    teacher_feats = {n: torch.randn(2, 6, 8, 8) for n in ALIGNED}
    adapters = torch.nn.ModuleDict({n: torch.nn.Conv2d(6, 6, 1) for n in ALIGNED})
    for conv in adapters.values():  # identity adapters
        torch.nn.init.zeros_(conv.bias)
        conv.weight.data = torch.eye(6)[:, :, None, None]
    assert float(feature_alignment_loss(teacher_feats, teacher_feats, adapters)) == 0.0
    noise = {n: torch.randn_like(f) for n, f in teacher_feats.items()}
    losses = [float(feature_alignment_loss({n: f + e * noise[n] for n, f in teacher_feats.items()}, teacher_feats, adapters))
              for e in (0.01, 0.1, 1.0)]
    assert 0 < losses[0] < losses[1] < losses[2]


def test_channel_distillation_weights_follow_the_teachers_entropy():
    torch.manual_seed(0)
    lik = torch.full((2, 3, 4, 4), 0.5)
    lik[:, 0] = 0.999  # channel 0 carries almost no information
    lik[:, 2] = 0.01  # channel 2 carries the most
    w = channel_entropy_weights(lik)
    assert torch.isclose(w.sum(), torch.tensor(1.0)) and w[0] < w[1] < w[2]
    y_t = torch.randn(2, 3, 4, 4)
    assert float(channel_distillation_loss(y_t, y_t, w)) == 0.0
    err = torch.zeros_like(y_t)
    err_low, err_high = err.clone(), err.clone()
    err_low[:, 0], err_high[:, 2] = 0.5, 0.5
    low = float(channel_distillation_loss(y_t + err_low, y_t, w))
    high = float(channel_distillation_loss(y_t + err_high, y_t, w))
    assert 0 < low < high  # the same error costs more in an informative channel
    assert float(channel_distillation_loss(y_t + 2 * err_high, y_t, w)) > high


@pytest.mark.parametrize("step,stage", [(0, "align"), (2, "align"), (3, "channel"), (6, "channel"),
                                        (7, "finetune"), (100, "finetune")])
def test_stage_schedule(step, stage):
    assert stage_at(step, align_steps=3, channel_steps=4) == stage
    assert stage_at(step, 0, 0) == "finetune"


def test_distiller_matches_student_and_teacher_features(teacher, student):
    d = Distiller(student, teacher, align_steps=1, channel_steps=1)
    x = torch.rand(2, 3, 64, 64)
    q = torch.tensor([1.0, 8.0])
    out = student(x, q, features=True)
    for step, key in [(0, "align"), (1, "channel")]:
        terms = d.loss(step, x, q, out)
        assert set(terms) == {"distill", key} and float(terms[key].detach()) > 0
    assert d.loss(2, x, q, out) == {}
    assert not any(p.requires_grad for p in d.teacher[0].parameters())
    assert all("teacher" not in k for k in d.state_dict())


def test_distillation_run_is_staged_logged_resumable_and_exports(tmp_path, rng, capsys):
    data = tmp_path / "data"
    data.mkdir()
    for i in range(3):
        Image.fromarray(random_image(rng, 80, 96)).save(data / f"{i}.png")
    torch.manual_seed(0)
    teacher_dir = export_weights(create_model("feds-teacher", pretrained=False), "feds-teacher", tmp_path / "teacher")
    run = tmp_path / "run"
    args = ["train", "--model", "feds-student", "--teacher", str(teacher_dir), "--data", str(data), "--out", str(run),
            "--crop", "64", "--batch", "2", "--checkpoint-every", "2", "--log-every", "1",
            "--align-steps", "2", "--channel-steps", "2"]
    assert main(args + ["--steps", "2"]) == 0
    assert main(args + ["--steps", "6"]) == 0  # resumes at step 2, adapters included
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4, 5, 6]
    assert [r["stage"] for r in log] == ["align", "align", "channel", "channel", "finetune", "finetune"]
    assert all("align" in r for r in log[:2]) and all("channel" in r for r in log[2:4])
    ckpt = torch.load(run / "checkpoint.pt", weights_only=False)
    assert ckpt["step"] == 6 and set(ckpt["distill"]) >= {"latent_adapter.weight", "adapters.a0.weight"}
    meta = json.loads((run / "export" / "config.json").read_text())
    assert meta["codec"] == "feds-student"
    assert meta["training"]["teacher"]["align_steps"] == 2 and meta["training"]["teacher"]["finetune_steps"] == 2
    assert "--teacher" in meta["training"]["command"]
    codec = create_model("feds-student", weights_dir=run / "export")
    x = torch.rand(1, 3, 33, 70)
    assert codec.decompress(codec.compress(x, 5.0)).shape == x.shape
    # a run with another teacher does not silently resume this one
    other = tmp_path / "other-teacher"
    other.mkdir()
    for f in teacher_dir.iterdir():
        (other / f.name).write_bytes(f.read_bytes())
    args[args.index(str(teacher_dir))] = str(other)
    assert main(args + ["--steps", "8"]) == 1
    assert "trained with teacher" in capsys.readouterr().err


def test_distillation_flags_need_a_teacher(tmp_path, capsys):
    code = main(["train", "--model", "feds-student", "--data", str(tmp_path), "--out", str(tmp_path / "r"),
                 "--align-steps", "3"])
    assert code != 0 and "--teacher" in capsys.readouterr().err


def test_half_export_loads_back_to_exactly_the_exported_model(tmp_path):
    torch.manual_seed(0)
    model = create_model("feds-student", pretrained=False)
    out = export_weights(model, "feds-student", tmp_path / "w", half=True)
    meta = json.loads((out / "config.json").read_text())
    assert meta["weights_dtype"] == "float16"
    full = export_weights(create_model("feds-student", pretrained=False), "feds-student", tmp_path / "f")
    assert (out / "model.safetensors").stat().st_size < 0.6 * (full / "model.safetensors").stat().st_size
    loaded = create_model("feds-student", weights_dir=out)  # tables are fresh: compress works
    x = torch.rand(1, 3, 40, 50)
    assert loaded.compress(x, 4.0).streams == model.compress(x, 4.0).streams


# -- the shipped weights ------------------------------------------------------------------
FEDS = ("feds-teacher", "feds-student")


def test_both_feds_codecs_ship_weights():
    from licodec.zoo import get_entry

    for name in FEDS:
        assert get_entry(name).has_weights, name


def test_teacher_table_choice_does_not_depend_on_thread_count():
    import licodec

    teacher = licodec.load("feds-teacher")
    z_hat = torch.round(torch.randn(1, teacher.config.N, 5, 7) * 2)
    scales, _ = teacher.latent._entropy_parameters(z_hat)
    threads = torch.get_num_threads()
    torch.set_num_threads(1 if threads > 1 else 2)
    try:
        single, _ = teacher.latent._entropy_parameters(z_hat)
    finally:
        torch.set_num_threads(threads)
    y_model = teacher.latent.y_model
    assert torch.equal(y_model.table_indexes(single), y_model.table_indexes(scales))
