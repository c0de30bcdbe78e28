"""What a user can rely on: the feature space of every score is fixed and recorded, a run never resumes under another
config, and each input a user can get wrong is one line before any training (docs/reliability.md)."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from genbench.bench.harness import render_after_row, run_fit
from genbench.bench.leaderboard import render_leaderboards, render_table
from genbench.cli import main
from genbench.config import config_hash, parse_override
from genbench.data import build_datamodule
from genbench.errors import DivergenceError, GenbenchError
from genbench.metrics import DEFAULT_METRICS, MetricContext, SampleSet, compute_metrics, feature_spaces
from genbench.metrics import classifier as classifier_module
from genbench.metrics.classifier import SHIPPED_DIR, get_classifier, load_bundle, read_manifest
from genbench.results import append_row, by_feature_space, feature_space_of, read_rows, sample_sheet_path
from genbench.runs.config import check_memory, run_config, resolve_config
from genbench.runs.folder import RunRequest, check_checkpoint_fits, prepare_run, record_start

SCENES = Path(__file__).resolve().parents[2] / "assets" / "imagenet-scenes-tiny"
TINY = ["bench.metrics=[pairwise_ssim]", "bench.num_samples=20", "bench.metric_options.ssim_samples=10",
        "model.g_width=8", "model.d_width=8"]


def _row(model: str, n: int, space: str | None, value: float, kind: str = "model", stamp: str = "2026-01-01") -> dict:
    row = {"model": model, "n": n, "seed": 0, "kind": kind, "data": "d", "preset": "cpu", "timestamp": stamp,
           "metrics": {"classifier_fid": {"mean": value, "std": None}}}
    if space:
        row["feature_space"] = space
    return row


# -- 1. one fixed feature space per table, shipped with the project --------------------------------------------------

@pytest.mark.parametrize("data, name", [({"image_size": 32}, "imagenet-scenes-tiny-32px"),
                                        ({"image_size": 64}, "imagenet-scenes-tiny-64px"),
                                        ({"image_size": 32, "resize": "stretch", "pixel_norm": "minmax"},
                                         "imagenet-scenes-tiny-32px-stretch-minmax")])
def test_scenes_score_with_the_shipped_classifier_and_train_none(monkeypatch, data, name):
    """Each shipped classifier is found by the preprocessing it was trained for (the cpu tier's is stretch +
    min-max), so no run of those tables trains one."""
    monkeypatch.setattr(classifier_module, "train_classifier", lambda *a, **k: pytest.fail("a classifier was trained"))
    entry = next(e for e in read_manifest() if e["name"] == name)
    ctx = MetricContext("imagenet-scenes-tiny", data)
    classifier = ctx.classifier()
    assert classifier.source == "shipped" and classifier.sha256 == entry["sha256"]
    assert classifier.identity == f"{name}@{entry['sha256'][:12]}" == ctx.records["classifier"]["feature_space"]
    assert classifier.path.parent == SHIPPED_DIR


def test_mnist_classifier_is_shipped_and_accurate():
    entry = next(e for e in read_manifest() if e["name"] == "mnist-28px")
    assert entry["top1"] >= 0.98 and entry["data"]["image_size"] == 28 and entry["data"]["channels"] == 1
    assert classifier_module.file_sha256(SHIPPED_DIR / entry["file"]) == entry["sha256"]


def test_a_retrained_classifier_is_a_feature_space_of_its_own(tmp_path):
    two = lambda: build_datamodule("imagenet-scenes-tiny", categories=["alp", "coral_reef"], image_size=32)  # noqa: E731
    local = get_classifier(two, "imagenet-scenes-tiny", classifier_module.ClassifierSettings(width=8, epochs=4), tmp_path)
    assert local.source == "local" and local.identity.startswith("imagenet-scenes-tiny-32px-local@")
    assert local.identity.endswith(classifier_module.file_sha256(local.path)[:12])


def test_a_shipped_classifier_that_fails_its_checksum_stops_scoring_before_training(tmp_path, monkeypatch):
    copy = tmp_path / "classifiers"
    shutil.copytree(SHIPPED_DIR, copy)
    entry = next(e for e in read_manifest(copy) if e["name"] == "imagenet-scenes-tiny-32px-stretch-minmax")
    data = bytearray((copy / entry["file"]).read_bytes())
    data[-100] ^= 0xFF
    (copy / entry["file"]).write_bytes(bytes(data))
    monkeypatch.setattr(classifier_module, "SHIPPED_DIR", copy)
    monkeypatch.setattr(classifier_module, "_VERIFIED", {})
    monkeypatch.setattr(classifier_module.get_classifier, "__defaults__", (None, None, copy, None))
    cfg = run_config("dcgan", "imagenet-scenes-tiny", "cpu", 50, 0, None).cfg
    from genbench.bench.harness import metric_setup

    with pytest.raises(GenbenchError, match="fails its checksum"):
        metric_setup(cfg)


def test_a_corrupt_feature_cache_stops_the_run_before_training(tmp_path, monkeypatch):
    monkeypatch.setenv("GENBENCH_CACHE", str(tmp_path / "cache"))
    from genbench.bench.harness import metric_setup

    cfg = run_config("dcgan", "imagenet-scenes-tiny", "cpu", 50, 0, None).cfg
    metric_setup(cfg)  # computes and caches the real images' features
    (cached,) = (tmp_path / "cache" / "features").glob("*.pt")
    cached.write_bytes(b"not a tensor file")
    with pytest.raises(GenbenchError, match="unreadable"):
        metric_setup(cfg)


def test_caches_follow_the_content_of_the_images_not_their_names(tmp_path):
    root = tmp_path / "scenes"
    for split in ("train", "val"):
        for name in ("alp", "coral_reef"):
            shutil.copytree(SCENES / split / name, root / split / name)
    dm = lambda: build_datamodule("imagenet-scenes-tiny", root=str(root), categories=["alp", "coral_reef"])  # noqa: E731
    before = dm().content_signature(["train", "val"])
    moved = tmp_path / "elsewhere"
    shutil.copytree(root, moved)
    elsewhere = build_datamodule("imagenet-scenes-tiny", root=str(moved), categories=["alp", "coral_reef"])
    assert elsewhere.content_signature(["train", "val"]) == before  # where the data lives does not matter
    victim = sorted((root / "train" / "alp").iterdir())[0]
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(victim, format="JPEG")
    assert dm().content_signature(["train", "val"]) != before  # the same names with other pixels do


def test_rows_of_two_feature_spaces_never_share_a_column():
    rows = [_row("dcgan", 50, "a@1", 10.0), _row("coopnets", 50, "a@1", 20.0),
            _row("real images", 50, "a@1", 1.0, kind="reference"),
            _row("dcgan", 50, "b@2", 99.0, stamp="2026-06-01")]
    groups = by_feature_space(rows)
    assert [space for space, _ in groups] == ["b@2", "a@1"]  # the space of the newest model row is shown first
    text = render_table(rows, "t")
    shown, other = text.split("## Rows in feature space `a@1`")
    assert "99.000" in shown and "10.000" not in shown and "10.000" in other and "99.000" not in other
    older = [*rows[:3], {**rows[3], "timestamp": "2000-01-01"}]  # the same rows, b@2's written first
    assert [space for space, _ in by_feature_space(older)] == ["a@1", "b@2"]


def test_rows_without_a_recorded_space_get_a_legacy_one_per_classifier_record():
    record = {"dataset": "scenes", "key": "scenes-63915876b393", "top1": 0.69, "top5": 0.976, "n_train": 5000,
              "n_heldout": 500}
    old = {"classifier": record}
    rekeyed = {"classifier": {**record, "key": "scenes-d452cf955108"}}  # the same weights under a newer cache key
    retrained = {"classifier": {**record, "top1": 0.70}}  # the same key, other weights
    assert feature_space_of(old) == "legacy scenes classifier (top-1 69.00%, top-5 97.60%, 5000/500 images)"
    assert feature_space_of(rekeyed) == feature_space_of(old) != feature_space_of(retrained)
    assert feature_space_of({"metrics": {}}) is None


def test_every_committed_row_keeps_its_place():
    """Each committed table still renders every row it holds, and the rows written before feature spaces were recorded
    (migrated on reading, never rewritten) stay together: one legacy space per table, whatever cache key they had."""
    boards = Path(__file__).resolve().parents[2] / "leaderboards"
    for jsonl in boards.glob("*/*.jsonl"):
        if jsonl.name.endswith(".failures.jsonl"):
            continue
        rows, bad = read_rows(jsonl)
        assert not bad and all(feature_space_of(r) for r in rows if "metrics" in r), jsonl
        legacy = {feature_space_of(r) for r in rows if "feature_space" not in r}
        assert len(legacy) <= 1, (jsonl, legacy)  # tables begun after feature spaces were recorded have none
        text = render_table(rows, jsonl.stem)
        for row in rows:
            assert f"| {row['model']}" in text or f"*{row['model']}*" in text, (jsonl, row["model"])


# -- 2. a run never resumes under another config ----------------------------------------------------------------------

def test_the_effective_config_resolves_every_setting_and_its_hash_covers_defaults(monkeypatch):
    cfg = run_config("coopnets", "imagenet-scenes-tiny", "cpu", None, 0, None).cfg
    model = cfg["model"]
    assert model["lr"] == 0.007 and model["gen_lr"] == 1e-4 and model["ref_std"] == 0.016
    assert model["langevin"]["n_steps"] == 15 and model["langevin"]["step_size"] == 0.002
    assert model["generator_net"]["kernel_size"] == 5 and cfg["data"]["resize"] == "stretch"
    assert resolve_config(cfg) == cfg  # resolving is idempotent
    before = config_hash(cfg)
    from genbench.models.coopnets import CoopNets

    defaults = list(CoopNets.__init__.__defaults__)
    defaults[1] = 0.25  # sigma
    monkeypatch.setattr(CoopNets.__init__, "__defaults__", tuple(defaults))
    assert config_hash(run_config("coopnets", "imagenet-scenes-tiny", "cpu", None, 0, None).cfg) != before


def test_a_named_run_never_resumes_under_another_config(tmp_path):
    runs = tmp_path / "runs"
    first = prepare_run(RunRequest("dcgan", "digits", "smoke", None, 0, ("model.lr=0.0002",), runs, "same"), "bench")
    record_start(first)  # the run started: its folder holds its config
    cfg, run_dir = first.cfg, first.run_dir
    os.environ.pop("GENBENCH_RUN_DIR", None)
    written = (run_dir / "config.yaml").read_text()
    assert json.loads((run_dir / "run.json").read_text())["config_hash"] == config_hash(cfg)
    with pytest.raises(GenbenchError, match=r"model\.lr \(0\.05 here, 0\.0002 in the run\)"):
        prepare_run(RunRequest("dcgan", "digits", "smoke", None, 0, ("model.lr=0.05",), runs, "same"), "bench")
    os.environ.pop("GENBENCH_RUN_DIR", None)
    assert (run_dir / "config.yaml").read_text() == written  # the refused run wrote nothing


def test_resume_refuses_another_model_and_validates_like_a_new_run(tmp_path):
    runs = tmp_path / "runs"
    spec = prepare_run(RunRequest("vae", "digits", "smoke", None, 0, ("model.width=8",), runs, "v"), "fit")
    record_start(spec)
    run_dir = spec.run_dir
    os.environ.pop("GENBENCH_RUN_DIR", None)
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    ckpt.parent.mkdir(parents=True)
    torch.save({"state_dict": {}}, ckpt)
    with pytest.raises(GenbenchError, match=r"run\.model \('dcgan' here, 'vae' in the run\)"):
        prepare_run(RunRequest("dcgan", runs=runs, resume=str(run_dir)), "bench")
    with pytest.raises(GenbenchError, match="unknown config section"):
        prepare_run(RunRequest(overrides=("trainer_max_iterations=3",), runs=runs, resume=str(run_dir)), "bench")
    resumed = prepare_run(RunRequest(overrides=("trainer.max_iterations=500",), runs=runs, resume=str(run_dir)), "bench")
    cfg, same = resumed.cfg, resumed.run_dir
    assert same == run_dir and cfg["run"]["model"] == "vae"  # training longer is the one change a resume may make


def test_a_checkpoint_of_another_model_is_one_line_before_training(tmp_path, capsys):
    from genbench.runs.trainer import build

    _, dcgan = build(run_config("dcgan", "digits", "smoke", None, 0, ["model.g_width=8", "model.d_width=8"]).cfg)
    _, vae = build(run_config("vae", "digits", "smoke", None, 0, ["model.width=8"]).cfg)
    ckpt = tmp_path / "vae.ckpt"
    torch.save({"state_dict": vae.state_dict()}, ckpt)
    with pytest.raises(GenbenchError, match="was not written by this dcgan"):
        check_checkpoint_fits(ckpt, dcgan, "dcgan")
    spec = prepare_run(RunRequest("dcgan", "digits", "smoke", None, 0, ("model.g_width=8", "model.d_width=8"),
                                  tmp_path / "runs", "d"), "fit")
    record_start(spec)
    run_dir = spec.run_dir
    os.environ.pop("GENBENCH_RUN_DIR", None)
    (run_dir / "checkpoints").mkdir()
    shutil.copyfile(ckpt, run_dir / "checkpoints" / "last.ckpt")  # a foreign checkpoint in a dcgan run folder
    config = (run_dir / "config.yaml").read_text()
    assert main(["fit", "--resume", str(run_dir)]) == 2
    assert "was not written by this dcgan" in capsys.readouterr().err
    assert (run_dir / "config.yaml").read_text() == config and not (run_dir / "logs").exists()
    assert not (run_dir / "data.json").exists()


def test_sweep_run_names_carry_their_overrides_and_follow_the_config_files(tmp_path, monkeypatch):
    """A job's folder name changes with every setting of its effective config — an override, or an edit of a
    preset file — so a changed job never meets a folder it would be refused to resume; the same job keeps it."""
    from genbench.bench.sweep import Job
    from genbench.paths import configs_dir

    job = Job("dcgan", "digits", 20, 0, "smoke")

    def name(overrides=None):
        return job.run_name(job.resolve(overrides))

    assert name().startswith("sweep-smoke-n20-s0-")
    assert name(["model.lr=0.05"]) != name(["model.lr=0.01"]) != name()
    assert name(["trainer.max_iterations=999"]) != name(["trainer.max_iterations=1999"])
    assert name(["bench.num_samples=30"]) != name()
    before = name()
    assert before.endswith(config_hash(run_config("dcgan", "digits", "smoke", 20, 0, []).cfg))
    assert name() == before  # the same job resumes its folder
    shutil.copytree(configs_dir(), tmp_path / "configs")
    model_file = tmp_path / "configs" / "models" / "dcgan.yaml"
    spec = yaml.safe_load(model_file.read_text())
    spec["presets"]["smoke"].setdefault("model", {})["lr"] = 0.0003  # the smoke preset edited
    model_file.write_text(yaml.safe_dump(spec))
    monkeypatch.setattr("genbench.config.composition.configs_dir", lambda: tmp_path / "configs")
    assert name() != before


def test_fit_run_name_is_honoured_and_runs_leave_one_checkpoint_and_append_their_log(tmp_path):
    env = {**os.environ, "GENBENCH_RUNS": str(tmp_path / "runs")}
    base = [sys.executable, "-m", "genbench.cli", "fit", "--model", "dcgan", "--data", "digits", "--n", "20",
            "--run-name", "mine", "--set", "model.g_width=8", "--set", "model.d_width=8", "--set", "trainer.log_every_n_steps=1"]
    first = subprocess.run([*base, "--set", "trainer.max_iterations=3"], env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    run_dir = tmp_path / "runs" / "digits" / "dcgan" / "mine"
    assert "train: iteration 3/3" in first.stderr  # a progress line in a log file (no terminal)
    second = subprocess.run([*base, "--set", "trainer.max_iterations=6"], env=env, capture_output=True, text=True,
                            timeout=300)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "weights_only" not in second.stderr
    assert sorted(p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*.ckpt")) == ["checkpoints/last.ckpt"]
    lines = (run_dir / "logs" / "metrics.csv").read_text().splitlines()
    steps = [int(float(line.split(",")[lines[0].split(",").index("step")])) for line in lines[1:]]
    assert min(steps) < 3 <= max(steps)  # both parts of the run are in the log
    third = subprocess.run([*base, "--set", "trainer.max_iterations=6", "--set", "model.lr=0.05"], env=env,
                           capture_output=True, text=True, timeout=300)
    errors = [line for line in third.stderr.splitlines() if line.startswith("genbench: error")]
    assert third.returncode == 2 and len(errors) == 1 and "model.lr" in errors[0]


# -- 3. defects found by probing ---------------------------------------------------------------------------------------

def test_sigterm_outside_training_removes_what_was_half_written_and_exits_143_in_one_line(tmp_path):
    # found by the fault campaign: SIGTERM while a bench rendered its plots left a temp PNG behind (exit −15)
    script = textwrap.dedent(f"""
        import os, signal, sys
        from pathlib import Path
        import genbench.cli as cli
        from genbench.files import write_via_temp

        def terminated_while_writing(command, args):
            write_via_temp(Path({str(tmp_path)!r}) / "plot.png", lambda tmp: (tmp.write_text("half"),
                                                                               os.kill(os.getpid(), signal.SIGTERM)))
        cli.dispatch = terminated_while_writing
        sys.exit(cli.main(["list"]))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 143, proc.stderr
    assert proc.stderr.splitlines() == [line for line in proc.stderr.splitlines() if line.startswith("genbench: stopped by SIGTERM")]
    assert len(proc.stderr.splitlines()) == 1 and list(tmp_path.iterdir()) == []


def test_sigterm_during_fit_is_left_to_lightning():
    """Inside ``fitting()`` genbench's handler does nothing (Lightning's, which calls it, stops at the iteration's
    end); outside it raises ``Terminated``."""
    import signal

    from genbench.errors import Terminated
    from genbench.runs.signals import fitting, terminate_outside_fitting

    with fitting():
        terminate_outside_fitting(signal.SIGTERM, None)
    with pytest.raises(Terminated):
        terminate_outside_fitting(signal.SIGTERM, None)


def test_a_file_write_cut_short_keeps_the_old_file_and_fails_in_one_line(tmp_path):
    # found by the fault campaign: a file-size limit of a few KB stopped `fit` at its data.json with a traceback
    target, weights = tmp_path / "data.json", tmp_path / "weights.pt"
    target.write_text("old")
    weights.write_text("old")
    script = textwrap.dedent(f"""
        import resource, signal, sys
        import torch
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))
        from genbench.files import write_text, write_via_temp
        from genbench.errors import GenbenchError
        try:
            write_text(__import__("pathlib").Path({str(target)!r}), "x" * 5000)
        except GenbenchError as exc:
            print(exc, file=sys.stderr)
        try:  # torch.save reports the same as a RuntimeError
            write_via_temp(__import__("pathlib").Path({str(weights)!r}),
                           lambda tmp: torch.save({{"w": torch.zeros(5000)}}, tmp))
        except GenbenchError as exc:
            print(exc, file=sys.stderr)
            sys.exit(3)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    lines = proc.stderr.splitlines()
    assert proc.returncode == 3 and len(lines) == 2, proc.stderr
    assert lines[0] == (f"could not write {target} (File too large); it was left as it was — free space in "
                        f"{tmp_path} or raise the file-size limit, then rerun")
    assert lines[1].startswith(f"could not write {weights} (the file-size limit of 1000 bytes was reached)")
    assert target.read_text() == "old" and weights.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.json", "weights.pt"]  # no temp file left


def test_an_append_cut_short_is_undone_and_fails(tmp_path):
    table = tmp_path / "t.jsonl"
    append_row(table, {"model": "a", "n": 1})
    size = table.stat().st_size
    script = textwrap.dedent(f"""
        import resource, signal, sys
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, ({size + 40}, {size + 40}))
        from genbench.results import append_row
        from genbench.errors import GenbenchError
        try:
            append_row(__import__("pathlib").Path({str(table)!r}), {{"model": "b" * 500, "n": 2}})
        except GenbenchError as exc:
            print(exc, file=sys.stderr)
            sys.exit(3)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3 and "could not write the row" in proc.stderr
    assert table.stat().st_size == size
    with open(table, "a") as fh:
        fh.write('{"model": "half')  # a partial line left by something else
    append_row(table, {"model": "c", "n": 3})
    rows, bad = read_rows(table)
    assert [r["model"] for r in rows] == ["a", "c"] and bad == ["line 2 is not valid JSON"]


@pytest.mark.parametrize("override", ["bench.table=../../x", "bench.table=/tmp/x", "bench.table=.hidden"])
def test_table_names_that_leave_the_leaderboards_are_refused(override):
    with pytest.raises(GenbenchError, match="bench.table must be a plain name"):
        run_config("dcgan", "digits", "smoke", None, 0, [override]).cfg


def test_run_names_that_leave_the_runs_folder_are_refused(tmp_path):
    with pytest.raises(GenbenchError, match="--run-name must be a plain name"):
        prepare_run(RunRequest("dcgan", "digits", "smoke", None, 0, (), tmp_path / "runs", "../../../x"), "bench")
    assert not any(tmp_path.rglob("config.yaml"))


def test_a_lever_run_has_its_own_sample_sheet(tmp_path):
    plain = {"model": "dcgan", "n": 50, "seed": 0, "config": {"speed": {"fused_adam": False}}}
    lever = {"model": "dcgan", "n": 50, "seed": 0, "config": {"speed": {"fused_adam": True}}}
    assert sample_sheet_path(tmp_path / "cpu.jsonl", plain) != sample_sheet_path(tmp_path / "cpu.jsonl", lever)
    assert "fused_adam" in sample_sheet_path(tmp_path / "cpu.jsonl", lever).name


def test_a_16_bit_png_is_scaled_to_8_bits(tmp_path):
    values = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode.startswith("I")
    dm = build_datamodule("scene15", image_size=64, channels=1)
    pixels = dm._load_one(path)[0].astype(int)
    assert np.abs(pixels - np.round(values / 257.0)).max() <= 1 and (pixels == 255).mean() < 0.01


def test_a_decompression_bomb_and_a_non_utf8_name_are_one_line(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    Image.fromarray(np.zeros((64, 64, 3), dtype=np.uint8)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    dm = build_datamodule("scene15", image_size=8)
    with pytest.raises(GenbenchError, match="refusing image"):
        dm._load_one(path)
    root = tmp_path / "scenes"
    for split in ("train", "val"):
        shutil.copytree(SCENES / split / "alp", root / split / "alp")
    bad = root / "train" / "alp" / os.fsdecode(b"caf\xe9.JPEG")
    shutil.copyfile(next((SCENES / "train" / "alp").iterdir()), bad)
    with pytest.raises(GenbenchError, match="not valid UTF-8"):
        build_datamodule("imagenet-scenes-tiny", root=str(root), categories=["alp"]).plan()


@pytest.mark.parametrize("override, message", [
    ("trainer_max_iterations=3", "unknown config section"),
    ("trainer.max_iterations=-1", "trainer.max_iterations must be a positive integer"),
    ("data.batch_size=0", "data.batch_size must be a positive integer"),
    ("bench.sample_batch_size=0", "bench.sample_batch_size must be an integer ≥ 1"),
    ("trainer.accelerator=tpu", "trainer.accelerator must be one of"),
    ("model.lr=abc", "bad model (dcgan) option lr='abc': expected float"),
    ("data.image_size=20000", "over a quarter of this machine"),
])
def test_bad_values_are_one_line_before_training(tmp_path, capsys, override, message):
    argv = ["bench", "--model", "dcgan", "--data", "digits", "--leaderboards", str(tmp_path / "boards"),
            "--set", override]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1] and len([line for line in err if line.startswith("genbench: error")]) == 1
    assert not (tmp_path / "boards").exists()


def test_a_negative_seed_is_one_line(capsys):
    assert main(["config", "--model", "dcgan", "--data", "digits", "--seed", "-1"]) == 2
    assert "--seed must be an integer" in capsys.readouterr().err


def test_exponents_are_numbers():
    assert parse_override("model.lr=1e-4") == {"model": {"lr": 1e-4}}
    cfg = run_config("dcgan", "digits", "smoke", None, 0, ["model.lr=1e-4"]).cfg
    assert cfg["model"]["lr"] == 1e-4


def test_two_renders_at_once_and_a_failing_render_lose_nothing(tmp_path, monkeypatch):
    table = tmp_path / "boards" / "d" / "cpu.jsonl"
    for i in range(6):
        append_row(table, _row(f"m{i}", 50, "a@1", float(i)))
    script = ("import sys\nfrom pathlib import Path\nfrom genbench.bench.leaderboard import render_leaderboards\n"
              "for _ in range(15):\n    render_leaderboards(Path(sys.argv[1]))\n")
    procs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "boards")], stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errors
    assert not list(table.parent.glob(".*")) and "| m5 |" in table.with_suffix(".md").read_text()
    monkeypatch.setattr("genbench.bench.harness.render_leaderboards", lambda *a: 1 / 0)
    render_after_row(tmp_path / "boards", "d")  # a warning, not an exception


def test_a_line_that_is_not_an_object_is_skipped_with_its_number(tmp_path, capsys):
    table = tmp_path / "boards" / "d" / "cpu.jsonl"
    append_row(table, _row("dcgan", 50, "a@1", 1.0))
    with open(table, "a") as fh:
        fh.write("[1, 2]\n")
    append_row(table, _row("vae", 50, "a@1", 2.0))
    render_leaderboards(tmp_path / "boards")
    assert "line 2 is a JSON list" in capsys.readouterr().err
    assert "| vae |" in (table.with_suffix(".md")).read_text()


def test_a_classifier_file_without_meta_is_one_line(tmp_path):
    path = tmp_path / "c.pt"
    torch.save({"state_dict": {}}, path)
    with pytest.raises(GenbenchError, match="not a genbench classifier"):
        load_bundle(path)


def test_divergence_while_sampling_names_the_sampling_settings():
    from genbench.models import build_model

    model = build_model("descriptor", image_size=8, channels=1, net={"widths": [4, 4, 4], "n_out": 2},
                        sample_langevin={"n_steps": 10, "step_size": 1000.0})
    with pytest.raises(DivergenceError, match=r"model\.sample_langevin\.step_size"):
        model.sample(4)


def test_streamed_samples_score_as_the_whole_set_and_keep_only_a_head():
    ctx = MetricContext("imagenet-scenes-tiny", {"image_size": 32})
    images = ctx.benchmark_data().images("val")[:300]
    names = [m for m in DEFAULT_METRICS]
    whole = compute_metrics(names, images, ctx)
    streamed = SampleSet.from_stream(iter(images.split(64)), ctx, feature_spaces(names), keep=100)
    assert streamed.images.shape[0] == 100 and streamed.count == 300
    for name, score in compute_metrics(names, streamed, ctx).items():
        assert score.mean == pytest.approx(whole[name].mean, rel=1e-6, abs=1e-9), name


def test_impossible_sizes_are_refused_before_anything_is_written(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GENBENCH_RUNS", str(tmp_path / "runs"))
    assert main(["fit", "--model", "dcgan", "--data", "digits", "--set", "data.image_size=20000"]) == 2
    assert "over a quarter of this machine" in capsys.readouterr().err and not (tmp_path / "runs").exists()
    cfg = run_config("dcgan", "digits", "smoke", None, 0, None).cfg
    cfg["bench"]["sample_batch_size"] = 10**6  # 256 MB of 8×8 images
    with pytest.raises(GenbenchError, match="bench.sample_batch_size"):
        check_memory(cfg, memory=2**28)
    check_memory(run_config("dcgan", "digits", "smoke", None, 0, None).cfg, memory=24 * 2**30)


def test_progress_lines_come_every_interval():
    from genbench.runs.callbacks import ProgressLog

    now = [0.0]
    lines = []
    progress = ProgressLog(100, every=30, clock=lambda: now[0], log=lines.append)

    class Module:
        iteration = 0

    class Trainer:
        is_global_zero = True
        callback_metrics = {"loss": torch.tensor(0.5)}

    progress.on_train_start(Trainer, Module)
    for step in range(1, 61):
        now[0] = step * 2.0
        Module.iteration = step
        progress.on_train_batch_end(Trainer, Module, None, None, step)
    assert len(lines) == 1 + 4 and "iteration 15/100, 0.50 it/s, ETA 2m50s, loss 0.5" in lines[1]


def test_the_shipped_feature_space_reproduces_the_committed_reference_rows():
    """A user's scores equal the committed table's on the same images: the cpu table's real-images and noise rows,
    recomputed here with the shipped classifier, match the committed ones."""
    from genbench.bench.harness import metric_setup, score_row
    from genbench.bench.reference import reference_images

    boards = Path(__file__).resolve().parents[2] / "leaderboards" / "imagenet-scenes-tiny"
    entry = next(e for e in read_manifest() if e["name"] == "imagenet-scenes-tiny-32px-stretch-minmax")
    space = f"{entry['name']}@{entry['sha256'][:12]}"
    rows, _ = read_rows(boards / "cpu.jsonl")
    latest = {r["model"]: r for r in rows if r.get("kind") == "reference" and r.get("feature_space") == space
              and r["n"] == 50}  # the latest row of each reference (the table shows it)
    assert set(latest) == {"real images", "image averages", "noise"}
    for row in latest.values():
        cfg = run_config(None, "imagenet-scenes-tiny", "cpu", 50, row["seed"], None).cfg
        names, ctx = metric_setup(cfg)
        training = build_datamodule("imagenet-scenes-tiny", **cfg["data"])
        images = reference_images(row["model"], ctx.benchmark_data(), ctx.n_samples, row["seed"], training)
        again = score_row(names, images, ctx)
        assert again["feature_space"] == space
        for name, value in row["metrics"].items():
            assert again["metrics"][name]["mean"] == pytest.approx(value["mean"], rel=1e-5, abs=1e-7), (row["model"], name)


def test_migrate_maps_a_legacy_space_only_when_its_reference_rows_reproduce(tmp_path):
    from genbench.bench.migrate import migrate

    boards = tmp_path / "boards"
    quick = ["bench.metric_options.classifier={width: 16, epochs: 10, batch_size: 64, lr: 0.005}", "bench.num_samples=200"]
    assert main(["reference", "--data", "digits", "--n", "[20]", "--leaderboards", str(boards),
                 *sum((["--set", q] for q in quick), [])]) == 0
    table = boards / "digits" / "smoke.jsonl"
    fresh, _ = read_rows(table)
    space = fresh[0]["feature_space"]

    def legacy(row, top1):  # a row as written before feature spaces were recorded
        old = {k: v for k, v in json.loads(json.dumps(row)).items() if k != "feature_space"}
        old["classifier"] = {k: v for k, v in row["classifier"].items() if k not in ("feature_space", "sha256", "source")}
        old["classifier"]["top1"] = top1
        return old

    same = [legacy(r, 0.5) for r in fresh]
    other = [legacy(r, 0.6) for r in fresh]
    other[0]["metrics"]["classifier_fid"]["mean"] *= 1.01  # scored with other weights
    table.unlink()
    for row in [*same, *other]:
        append_row(table, row)
    records = migrate(boards, "digits", log=lambda *_: None)
    assert [r["feature_space"] for r in records] == [space] and records[0]["legacy"] == feature_space_of(same[0])
    assert all(e["largest_relative_difference"] <= 1e-9 for e in records[0]["evidence"])
    render_leaderboards(boards, "digits")
    text = (boards / "digits" / "smoke.md").read_text()
    assert f"feature space `{space}`" in text.splitlines()[4] and "Rows in feature space `legacy digits" in text


@pytest.mark.parametrize("argv", [
    ["bench", "--model", "dcgan", "--data", "digits", "--n", "500"],                        # more images than a class holds
    ["bench", "--model", "dcgan", "--set", "data.root=/nonexistent/scenes"],                # no data there
    ["fit", "--model", "dcgan", "--set", "data.root=/nonexistent/x"],
])
def test_a_run_refused_before_training_leaves_no_run_folder(tmp_path, monkeypatch, capsys, argv):
    monkeypatch.setenv("GENBENCH_RUNS", str(tmp_path / "runs"))
    assert main([*argv, "--leaderboards", str(tmp_path / "boards")] if argv[0] == "bench" else argv) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("*"))


@pytest.mark.parametrize("variable", ["GENBENCH_LEADERBOARDS", "GENBENCH_RUNS", "GENBENCH_CACHE"])
@pytest.mark.parametrize("target", ["file", "/dev/null"])
def test_an_output_folder_that_cannot_be_written_is_refused_before_training(tmp_path, monkeypatch, capsys, variable,
                                                                              target):
    path = tmp_path / "a-file"
    path.write_text("not a folder")
    monkeypatch.setenv("GENBENCH_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv(variable, str(path) if target == "file" else target)
    argv = ["bench", "--model", "dcgan", "--data", "digits", "--set", "trainer.max_iterations=2"]
    if variable != "GENBENCH_LEADERBOARDS":
        argv += ["--leaderboards", str(tmp_path / "boards")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and ("cannot be a folder" in err or "cannot be made" in err), err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("*.ckpt"))


def test_a_run_folder_in_use_by_another_process_is_refused_before_anything_is_written(tmp_path, capsys, monkeypatch):
    import fcntl

    monkeypatch.setenv("GENBENCH_RUNS", str(tmp_path / "runs"))
    run_dir = run_fit("dcgan", "digits", "smoke", None, 0, ["model.g_width=8", "model.d_width=8",
                                                             "trainer.max_iterations=2"])
    os.environ.pop("GENBENCH_RUN_DIR", None)
    record = (run_dir / "run.json").read_text()
    capsys.readouterr()
    with open(run_dir / ".lock", "a+") as other:  # another process training in the folder holds its lock
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert main(["fit", "--resume", str(run_dir), "--set", "trainer.max_iterations=4"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is in use by" in err and "another --run-name" in err
    assert (run_dir / "run.json").read_text() == record  # nothing written
    assert main(["fit", "--resume", str(run_dir), "--set", "trainer.max_iterations=4"]) == 0  # free again: it resumes
