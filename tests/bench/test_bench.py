"""End to end: `genbench bench` on the shipped tiny scenes, and the one-line errors of bad input."""

import json
import subprocess
import sys

import pytest
import torch

from genbench.bench import read_rows
from genbench.cli import main
from genbench.config import compose
from genbench.paths import configs_dir

FAST = ["trainer.max_iterations=3", "bench.num_samples=60", "bench.metric_options.classifier.epochs=3",
        "bench.metric_options.classifier.max_train=2000", "bench.metric_options.ssim_samples=12",
        "model.g_width=8", "model.d_width=8"]


def _args(*extra):
    out = []
    for item in FAST:
        out += ["--set", item]
    return [*out, *extra]


@pytest.fixture(scope="module")
def bench_row(tmp_path_factory):
    boards = tmp_path_factory.mktemp("boards")
    argv = ["bench", "--model", "dcgan", "--data", "imagenet-scenes-tiny", "--n", "10", "--seed", "3",
            "--leaderboards", str(boards), *_args()]
    assert main(argv) == 0
    rows, bad = read_rows(boards / "imagenet-scenes-tiny" / "smoke.jsonl")
    assert bad == [] and len(rows) == 1
    return boards, rows[0]


def test_bench_writes_a_complete_row(bench_row):
    boards, row = bench_row
    assert (row["model"], row["data"], row["n"], row["seed"], row["preset"]) == ("dcgan", "imagenet-scenes-tiny", 10, 3, "smoke")
    assert row["n_train"] == 100 and row["n_samples"] == 60 and row["iterations"] == 3
    metrics = row["metrics"]
    assert set(metrics) == {"classifier_score", "top1_probability", "classifier_fid", "classifier_kid",
                            "classifier_precision", "classifier_recall", "pairwise_ssim"}
    assert metrics["classifier_score"]["mean"] >= 1.0 and metrics["classifier_score"]["std"] is not None
    assert metrics["classifier_fid"]["mean"] > 0 and metrics["classifier_kid"]["std"] is not None
    assert 0 < metrics["pairwise_ssim"]["mean"] <= 1
    assert row["classifier"]["top1"] > 0.2 and row["classifier"]["n_train"] == 2000
    assert set(row["protocols"]) == set(metrics) and "shuffle seed 2020" in row["protocols"]["classifier_score"]
    assert "60 samples" in row["protocols"]["classifier_fid"] and "5000 real train images" in row["protocols"]["classifier_fid"]
    assert row["real_images"]["classifier"]["count"] == 5000 and row["kind"] == "model"
    budget = row["budget"]
    assert budget["iterations"] == 3 and budget["images_seen"] == 3 * 64 and budget["epochs"] == round(192 / 100, 2)
    assert budget["wall_seconds"] > 0 and row["sample_device"] == "cpu"
    for key in ("git_commit", "config_hash", "versions", "train_seconds", "images_per_second", "data_fingerprint", "device"):
        assert row[key] not in (None, "")
    assert row["versions"]["torch"] and row["config"]["run"]["seed"] == 3
    from pathlib import Path

    run_dir = Path(row["run_dir"])
    assert (run_dir / "samples.png").stat().st_size > 0 and (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert json.loads((run_dir / "result.json").read_text())["config_hash"] == row["config_hash"]
    md = (boards / "imagenet-scenes-tiny" / "smoke.md").read_text()
    assert "| dcgan |" in md and "n=10" in md
    assert f"| dcgan | 10 | 3 | 3 | 192 | 1.92 | {budget['wall_seconds']:.0f} | {row['device']} |" in md


@pytest.mark.parametrize("argv, message", [
    (["bench", "--model", "nope"], "unknown model 'nope'; known: "),
    (["bench", "--data", "nope"], "unknown dataset 'nope'; known: "),
    (["bench", "--preset", "huge"], "unknown preset 'huge'; known: cpu, cpu-30min, mnist, paper, smoke, textures"),
    (["bench", "--n", "501"], "n_per_class=501 exceeds the 500 training images"),
    (["bench", "--set", "model.colour=1"], "unknown model (dcgan) option(s) ['colour']"),
    (["bench", "--set", "data.root=/nonexistent/scenes"], "no data for 'imagenet-scenes-tiny': tried /nonexistent/scenes"),
    (["bench", "--set", "bench.metrics=[inception_score]"], "weights-inception-2015-12-05-6726825d.pth not found"),
    (["bench", "--set", "bench.metric_options.kid_subset_size=1000"], "KID subset size 1000 exceeds the 500 generated"),
    (["bench", "--set", "bench.metrics=[classifier_fidd]"], "unknown metric 'classifier_fidd'; known: "),
    (["bench", "--set", "bench.num_sample=3"], "unknown bench option(s) ['num_sample']; accepted: curve_samples, eval_every, grid_every"),
    (["bench", "--set", "logger.wandbb=true"], "unknown logger option(s) ['wandbb']; accepted: entity, group"),
    (["bench", "--set", "trainer.max_iteration=3"], "unknown trainer option(s) ['max_iteration']; accepted: "),
    (["bench", "--set", "model=5"], "config section 'model' must be a mapping of settings"),
    (["bench", "--set", "bench=oops"], "config section 'bench' must be a mapping of settings"),
    (["bench", "--set", "model.lr=.nan"], "bad model (dcgan) option lr=nan: a number must be finite"),
    (["bench", "--set", "model.lr=-0.1"], "bad model (dcgan) option lr=-0.1: a learning rate must be positive"),
    (["bench", "--set", "trainer.max_time=banana"], "trainer.max_time must be DD:HH:MM:SS or a mapping"),
    (["bench", "--set", "trainer.max_time={minutes: -5}"], "trainer.max_time must be DD:HH:MM:SS or a mapping"),
    (["bench", "--set", "trainer.max_time={minutes: 0}"], "trainer.max_time must be longer than zero"),
    (["bench", "--run-name", "r" * 300], "--run-name must be at most 200 characters (it becomes a file name), got 300"),
    (["bench", "--set", "bench.metrics=[]"], "bench.metrics is empty: a row needs at least one score"),
])
def test_bad_input_is_one_line_and_keeps_leaderboard(bench_row, argv, message, capsys, monkeypatch, tmp_path):
    boards, _ = bench_row
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    table = boards / "imagenet-scenes-tiny" / "smoke.jsonl"
    before = table.read_bytes()
    assert main([*argv, "--leaderboards", str(boards)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert table.read_bytes() == before


def test_reference_rows_are_scored_and_rendered_first(bench_row, capsys):
    boards, model_row = bench_row
    argv = ["reference", "--data", "imagenet-scenes-tiny", "--leaderboards", str(boards), *_args()]
    assert main(argv) == 0
    rows, _ = read_rows(boards / "imagenet-scenes-tiny" / "smoke.jsonl")
    refs = {r["model"]: r for r in rows if r.get("kind") == "reference"}
    assert set(refs) == {"real images", "image averages", "noise"} and all(r["n"] == 10 for r in refs.values())
    real, noise = refs["real images"], refs["noise"]
    assert real["n_samples"] == noise["n_samples"] == model_row["n_samples"] == 60
    assert set(real["metrics"]) == set(model_row["metrics"]) and real["heldout_split"] == "val"
    assert real["metrics"]["classifier_fid"]["mean"] < noise["metrics"]["classifier_fid"]["mean"]
    assert real["metrics"]["classifier_score"]["mean"] > noise["metrics"]["classifier_score"]["mean"]
    md = (boards / "imagenet-scenes-tiny" / "smoke.md").read_text()
    section = md[md.index("## FID (Offline classifier features)"):]
    table_rows = [line for line in section.splitlines() if line.startswith("| ")][1:5]
    assert [line.split("|")[1].strip() for line in table_rows] == ["*real images* (reference)",
                                                                   "*image averages* (reference)", "*noise* (reference)",
                                                                   "dcgan"]


def test_the_image_averages_reference_is_the_up_sampled_means_of_the_rows_training_images():
    """Each image is one training image of the row's n draw averaged to 1×1 and replicated: constant per channel, its
    value that image's channel means (computed here from the training images on their own)."""
    from genbench.bench.reference import reference_images
    from genbench.data import build_datamodule

    training = build_datamodule("digits", n_per_class=5)
    images = reference_images("image averages", build_datamodule("digits"), 30, seed=4, training=training)
    assert images.shape == (30, 1, 8, 8)
    flat = images.flatten(1)
    assert torch.equal(flat, flat[:, :1].expand_as(flat))  # constant images
    means = training.train_images().mean(dim=(1, 2, 3))
    assert all(torch.isclose(means, value, atol=1e-6).any() for value in flat[:, 0])
    assert len(set(flat[:, 0].tolist())) == 30  # 30 of the 50 images, none twice (no more samples than images)


def test_config_prints_the_effective_config_and_its_hash(capsys):
    """``genbench config`` against what the files and the class signature say, read here on their own, and a hash
    recomputed from the printed YAML."""
    import hashlib
    import inspect

    import yaml

    from genbench.models.coopnets import CoopNets

    assert main(["config", "--model", "coopnets", "--preset", "paper", "--n", "50", "--set", "model.lr=0.01"]) == 0
    out = capsys.readouterr().out
    printed = yaml.safe_load(out)
    paper = yaml.safe_load((configs_dir() / "presets" / "paper.yaml").read_text())
    assert printed["run"] == {"model": "coopnets", "data": "imagenet-scenes-tiny", "preset": "paper", "n": 50, "seed": 0}
    assert printed["model"]["lr"] == 0.01 and printed["data"]["n_per_class"] == 50
    assert {k: printed["data"][k] for k in ("resize", "pixel_norm")} == {k: paper["data"][k] for k in ("resize", "pixel_norm")}
    assert printed["bench"]["metrics"] == paper["bench"]["metrics"]
    defaults = inspect.signature(CoopNets.__init__).parameters
    assert all(printed["model"][k] == defaults[k].default for k in ("num_chains", "latent_dim", "sigma", "gen_lr"))
    digest = hashlib.sha256(json.dumps(printed, sort_keys=True).encode()).hexdigest()[:12]
    assert out.strip().splitlines()[-1] == f"# config hash: {digest}"
    assert main(["config", "--model", "coopnets", "--preset", "paper", "--n", "50", "--set", "model.lr=0.02"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] != f"# config hash: {digest}"
    assert main(["config", "--set", "bench.num_sample=3"]) == 2


def test_a_config_file_runs_as_it_is_and_takes_no_other_settings(tmp_path, capsys, monkeypatch):
    """What ``genbench config`` prints, run by ``bench --spec``: the row is that config (its hash) and the run folder
    holds it; names or overrides beside the file are refused in one line, before any folder is made."""
    import yaml

    runs, boards = tmp_path / "runs", tmp_path / "boards"
    monkeypatch.setenv("GENBENCH_RUNS", str(runs))
    assert main(["config", "--data", "digits", "--n", "20", "--seed", "4", *_args()]) == 0
    printed = capsys.readouterr().out
    spec = tmp_path / "job.yaml"
    spec.write_text(printed)
    printed_hash = printed.strip().splitlines()[-1].removeprefix("# config hash: ")
    for extra in (["--model", "vae"], ["--set", "model.lr=0.1"], ["--seed", "4"], ["--resume", str(tmp_path)]):
        assert main(["bench", "--spec", str(spec), "--leaderboards", str(boards), *extra]) == 2
        assert "takes its settings from the file alone" in capsys.readouterr().err
    assert not runs.exists() and not boards.exists()
    assert main(["bench", "--spec", str(tmp_path / "absent.yaml")]) == 2
    assert "absent.yaml does not exist" in capsys.readouterr().err
    good = yaml.safe_load(printed)
    broken = {"not yaml": "run: [", "a list": "- 1\n- 2", "no run": yaml.safe_dump({k: v for k, v in good.items() if k != "run"}),
              "run without data": yaml.safe_dump({**good, "run": {"model": "dcgan"}}),
              "seed a string": yaml.safe_dump({**good, "run": {**good["run"], "seed": "x"}}),
              "data a number": yaml.safe_dump({**good, "data": 5}),
              "unknown model key": yaml.safe_dump({**good, "model": {**good["model"], "lrr": 1}}),
              "duplicate key": printed + "\nrun: {}\n"}
    for what, text in broken.items():
        bad = tmp_path / "bad.yaml"
        bad.write_text(text)
        assert main(["bench", "--spec", str(bad), "--leaderboards", str(boards)]) == 2, what
        err = capsys.readouterr().err
        assert err.startswith("genbench: error: ") and err.count("\n") == 1, (what, err)
    assert main(["bench", "--spec", str(spec), "--leaderboards", str(boards)]) == 0
    rows, bad = read_rows(boards / "digits" / "smoke.jsonl")
    assert not bad and [r["config_hash"] for r in rows] == [printed_hash]
    assert (rows[0]["n"], rows[0]["seed"]) == (20, 4)
    (folder,) = list(runs.glob("digits/dcgan/*/config.yaml"))
    assert yaml.safe_load(folder.read_text()) == yaml.safe_load(printed)


def test_console_script_reports_errors_with_nonzero_exit():
    proc = subprocess.run([sys.executable, "-m", "genbench.cli", "bench", "--model", "nope"], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.strip().startswith("genbench: error: unknown model 'nope'")


@pytest.mark.parametrize("argv", [["--help"], ["bench", "--help"], ["table", "--help"]])
def test_help_answers_without_loading_torch(argv):
    code = ("import sys\nfrom genbench.cli import main\ntry:\n    main(%r)\nexcept SystemExit:\n    pass\n"
            "print('torch loaded' if 'torch' in sys.modules else 'torch not loaded')" % argv)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "usage: genbench" in done.stdout and done.stdout.strip().splitlines()[-1] == "torch not loaded"
    if argv == ["--help"]:  # a line per command
        assert all(f"    {command} " in done.stdout for command in ("fit", "bench", "reference", "sweep", "table"))
    if argv == ["table", "--help"]:
        assert "is-vs-n" in done.stdout and "completion" in done.stdout


def test_the_table_names_in_help_are_the_registered_tables():
    from genbench.cli import table_names
    from genbench.tasks.tables import TABLES

    assert table_names() == sorted(TABLES.names())


def test_presets_compose_in_order():
    cfg = compose("dcgan", "imagenet-scenes-tiny", "paper", ["model.lr=0.5"])
    assert cfg["bench"]["table"] == "paper" and cfg["data"]["batch_size"] == 128 and cfg["model"]["lr"] == 0.5
    smoke = compose("dcgan", "imagenet-scenes-tiny", "smoke")
    assert smoke["model"]["g_width"] == 32 and smoke["trainer"]["max_iterations"] > 0


def test_every_shipped_model_shares_its_tables_preprocessing():
    from genbench.runs.config import run_config
    from genbench.models import MODELS

    for preset in ("smoke", "paper"):
        seen = set()
        for model in MODELS.names():
            cfg = run_config(model, "imagenet-scenes-tiny", preset, None, 0, None).cfg
            seen.add(tuple(cfg["data"].get(k) for k in ("image_size", "channels", "resize", "pixel_norm")))
        assert len(seen) == 1, (preset, seen)


def test_a_model_that_changes_its_tables_preprocessing_is_refused(tmp_path, monkeypatch, capsys):
    import shutil

    from genbench.paths import configs_dir

    shutil.copytree(configs_dir(), tmp_path / "configs")
    (tmp_path / "configs" / "models" / "dcgan.yaml").write_text("presets:\n  smoke:\n    data: {pixel_norm: minmax}\n")
    monkeypatch.setattr("genbench.config.composition.configs_dir", lambda: tmp_path / "configs")
    assert main(["bench", "--model", "dcgan"]) == 2
    err = capsys.readouterr().err
    assert "model 'dcgan' changes data.pixel_norm to 'minmax' but the 'smoke' table" in err and len(err.splitlines()) == 1
    from genbench.runs.config import run_config

    cfg = run_config("dcgan", "imagenet-scenes-tiny", "smoke", None, 0, ["bench.table=dcgan-minmax"]).cfg
    assert cfg["data"]["pixel_norm"] == "minmax"  # a table of its own is fine


@pytest.mark.slow
def test_a_cpu_preset_model_beats_the_noise_reference_by_a_margin(tmp_path):
    """The cpu tier end to end on a subset: DCGAN with its cpu settings (32×32, half-width nets) for 600 of its
    cpu-preset iterations on n = 50 per class, scored on 300 samples; its classifier FID is far below the noise row's
    and above the real-images row's. A quick offline classifier (3 epochs) keeps the test to a few minutes."""
    boards = tmp_path / "boards"
    quick = ["trainer.max_iterations=600", "bench.num_samples=300", "bench.metric_options.classifier.epochs=3",
             "bench.metric_options.classifier.max_train=2000", "bench.metric_options.ssim_samples=20"]
    sets = sum((["--set", item] for item in quick), [])
    assert main(["bench", "--model", "dcgan", "--data", "imagenet-scenes-tiny", "--preset", "cpu", "--n", "50",
                 "--leaderboards", str(boards), *sets]) == 0
    assert main(["reference", "--data", "imagenet-scenes-tiny", "--preset", "cpu", "--leaderboards", str(boards),
                 *sets]) == 0
    rows, _ = read_rows(boards / "imagenet-scenes-tiny" / "cpu.jsonl")
    fid = {r["model"]: r["metrics"]["classifier_fid"]["mean"] for r in rows}
    assert rows[0]["config"]["data"]["image_size"] == 32 and rows[0]["iterations"] == 600
    assert fid["real images"] < fid["dcgan"] < 0.6 * fid["noise"], fid
    gallery = boards / "imagenet-scenes-tiny" / "cpu-gallery.png"
    assert gallery.is_file() and "cpu-gallery.png" in (boards / "imagenet-scenes-tiny" / "cpu.md").read_text()


def test_a_row_written_into_leaderboards_does_not_make_the_next_one_dirty(tmp_path, monkeypatch):
    """git_commit() marks a change to the code dirty, but not the results genbench itself writes under leaderboards/."""
    import subprocess

    from genbench.runs import provenance

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "leaderboards").mkdir()
    (tmp_path / "leaderboards" / "t.jsonl").write_text("{}\n")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "start")
    monkeypatch.setattr(provenance, "PROJECT_ROOT", tmp_path)
    clean = provenance.git_commit()
    assert len(clean) == 40 and not clean.endswith("-dirty")
    (tmp_path / "leaderboards" / "t.jsonl").write_text("{}\n{}\n")  # a row appended by a run
    assert provenance.git_commit() == clean
    (tmp_path / "code.py").write_text("x = 2\n")  # the code changed
    assert provenance.git_commit() == clean + "-dirty"


def test_the_cpu_tier_is_32px_on_every_dataset_and_an_override_needs_a_table_of_its_own():
    from genbench.runs.config import run_config
    from genbench.errors import GenbenchError

    for data in ("imagenet-scenes-tiny", "celeba", "mnist", "digits", "cifar10"):
        assert compose("dcgan", data, "cpu")["data"]["image_size"] == 32, data
    with pytest.raises(GenbenchError, match="the 'cpu' tier fixes data.image_size=32"):
        run_config("dcgan", "imagenet-scenes-tiny", "cpu", None, 0, ["data.image_size=64"]).cfg
    cfg = run_config("dcgan", "imagenet-scenes-tiny", "cpu", None, 0, ["data.image_size=64", "bench.table=cpu-64"]).cfg
    assert cfg["data"]["image_size"] == 64


def test_a_preset_that_extends_another_is_its_tier_with_its_own_budget(tmp_path, monkeypatch):
    """cpu-30min = the cpu tier (preprocessing, levers, each model's cpu block) with its own iterations and table;
    an extends chain that loops is refused in one line."""
    base = compose("coopnets", "imagenet-scenes-tiny", "cpu")
    long = compose("coopnets", "imagenet-scenes-tiny", "cpu-30min")
    assert long["bench"]["table"] == "cpu-30min" and base["bench"]["table"] == "cpu"
    assert long["model"] == base["model"] and long["data"] == base["data"] and long["speed"] == base["speed"]
    assert long["trainer"]["max_iterations"] > 10 * base["trainer"]["max_iterations"]
    assert long["data"]["resize"] == "stretch" and long["data"]["pixel_norm"] == "minmax"
    from genbench.config import table_levers

    assert table_levers("cpu-30min") == table_levers("cpu") == ["channels_last", "reuse_host_memory"]
    assert table_levers("smoke") == []
    import shutil

    from genbench.errors import GenbenchError
    from genbench.paths import configs_dir

    shutil.copytree(configs_dir(), tmp_path / "configs")
    (tmp_path / "configs" / "presets" / "cpu.yaml").write_text("extends: cpu-30min\n")
    monkeypatch.setattr("genbench.config.composition.configs_dir", lambda: tmp_path / "configs")
    with pytest.raises(GenbenchError, match="extend each other in a circle"):
        compose("dcgan", "imagenet-scenes-tiny", "cpu")


@pytest.mark.parametrize("text, message", [
    ("parameters:\n  model: {value: dcgan}\n  model: {value: vae}\n",
     "the key 'model' is given twice in one mapping (lines 2 and 3); keep one"),
    ("a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi")),
     "the document expands to more than 100,000 values through its aliases"),
])
def test_a_config_with_a_duplicate_key_or_an_alias_bomb_is_refused_in_one_line(tmp_path, capsys, text, message):
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(text)
    assert main(["sweep", "--config", str(sweep), "--leaderboards", str(tmp_path / "boards")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and len(err) < 400


def test_genbench_reference_takes_the_averages_from_the_rows_own_n_draw(tmp_path, monkeypatch):
    from genbench.bench import reference

    seen = {}
    original = reference.reference_images

    def spy(kind, datamodule, count, seed, training=None):
        if kind == "image averages":
            seen.update(n=training.n_per_class, train=training.num_train, count=count)
        return original(kind, datamodule, count, seed, training)

    monkeypatch.setattr(reference, "reference_images", spy)
    rows = reference.run_reference("digits", "smoke", [7], 0, ["bench.metrics=[pairwise_ssim]", "bench.num_samples=30",
                                                               "bench.metric_options.ssim_samples=10"],
                                   tmp_path, log=lambda *args: None, kinds=["image averages"])
    assert seen == {"n": 7, "train": 70, "count": 30}
    assert [r["model"] for r in rows] == ["image averages"]


def test_the_real_images_reference_comes_in_a_seeded_order_across_classes():
    """The held-out split is stored class by class; pairwise SSIM and the sample sheet read the first images, so the
    reference takes its subset in a seeded order: the first dozen images span several classes."""
    from genbench.bench.reference import reference_images
    from genbench.data import build_datamodule

    dm = build_datamodule("imagenet-scenes-tiny", image_size=16)
    images = reference_images("real images", dm, 200, seed=0)
    held = dm.images(dm.heldout_split)
    labels = dm.datasets[dm.heldout_split].labels
    index = [int(((held - image).abs().flatten(1).sum(dim=1) == 0).nonzero()[0]) for image in images[:12]]
    assert len({int(labels[i]) for i in index}) >= 4
    assert torch.equal(reference_images("real images", dm, 200, seed=0), images)  # seeded


def test_list_answers_without_torch_and_names_what_is_registered():
    """``genbench list`` reads the config files and the metric sources (no torch); what it prints is exactly what
    the registries hold once everything is imported."""
    code = ("import sys\nfrom genbench.cli import main\nmain(['list'])\n"
            "print('torch loaded' if 'torch' in sys.modules else 'torch not loaded')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    lines = done.stdout.strip().splitlines()
    assert lines[-1] == "torch not loaded"
    listed = {line.split(":")[0]: line.split(":", 1)[1].split() for line in lines[:-1]}
    from genbench.data import DATASETS
    from genbench.metrics import METRICS
    from genbench.models import MODELS
    from genbench.tasks.tables import TABLES

    assert listed == {"models": MODELS.names(), "datasets": DATASETS.names(), "metrics": METRICS.names(),
                      "tables": TABLES.names()}
