"""The task tables (completion, recovery, reconstruction, synthesis quality, is-vs-n): one command each, end to end on the 8×8
digits (offline, from scikit-learn) or, for synthesis quality, one shipped scene category at 16×16; their bad inputs;
and ABP learning from corrupted images."""

from __future__ import annotations

import json

import pytest
import torch

from genbench.errors import GenbenchError
from genbench.tasks.tables import run_table, table_settings


def _rows(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture()
def places(tmp_path, monkeypatch):
    monkeypatch.setenv("GENBENCH_RUNS", str(tmp_path / "runs"))
    return tmp_path / "boards", tmp_path / "runs"


@pytest.mark.parametrize("args, message", [
    (("nope", "cpu"), "unknown table 'nope'; known: completion, features, is-vs-n, prior, reconstruction, recovery, synthesis-quality, textures"),
    (("completion", "nope"), "has no preset 'nope'"),
    (("completion", "smoke", ["baselines=[blur]"]), "unknown completer 'blur'; known: harmonic"),
    (("completion", "smoke", ["models=[vae]"]), "no learned completer for 'vae'"),
    (("completion", "smoke", ["corruptions=[P.5]"]), "takes occlusions"),
    (("recovery", "smoke", ["corruptions=[P1.5]"]), "unknown corruption 'P1.5'"),
    (("recovery", "smoke", ["corruptions=[P.0]"]), "fraction must be in (0, 1)"),
    (("completion", "smoke", ["imgs=3"]), "unknown completion table option(s) ['imgs']"),
    (("features", "smoke", ["models=[vae]"]), "model 'vae' has no feature nets"),
    (("features", "smoke", ["labels=[1]"]), "labels must be sizes"),
    (("features", "smoke", ["costs=[0]"]), "costs must be positive"),
    (("features", "smoke", ["test_images=-3"]), "test_images must be a positive count"),
    (("prior", "smoke", ["models=[vae]"]), "no learned completer for 'vae'"),
    (("prior", "smoke", ["corruptions=[D0]"]), "at least one stroke"),
    (("prior", "smoke", ["context_encoder={iterations: 0}"]), "must be positive"),
    (("prior", "smoke", ["context_encoder={iters: 5}"]), "unknown context_encoder option(s) ['iters']"),
])
def test_bad_table_settings_are_one_line_each(args, message):
    with pytest.raises(GenbenchError, match=None) as info:
        table_settings(*args)
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("table, setting, message", [
    ("completion", "corruptions=[M3,M9]", "M9: an occluding square of 9×9 does not fit in the table's 8×8 images"),
    ("recovery", "corruptions=[P.5,M12]", "M12: an occluding square of 12×12 does not fit"),
    ("reconstruction", "dims=[4,65]", "d = 65 exceeds"),
])
def test_impossible_sizes_fail_before_any_training(places, table, setting, message):
    boards, runs = places
    with pytest.raises(GenbenchError) as info:
        run_table(table, "smoke", overrides=[setting], leaderboards=boards, runs=runs, log=lambda *_: None)
    assert message in str(info.value)
    assert not runs.exists() or not any(runs.rglob("last.ckpt"))  # nothing was trained


def test_completion_table_end_to_end_and_rerun_reuses_runs_and_rows(places):
    boards, runs = places
    logs: list[str] = []
    written = run_table("completion", "smoke", leaderboards=boards, runs=runs, log=logs.append)
    jsonl = boards / "digits" / "tasks" / "completion-smoke.jsonl"
    rows = _rows(jsonl)
    assert {(r["method"], r["corruption"]) for r in rows} == {(m, c) for m in ("abp", "harmonic", "masked-input")
                                                               for c in ("M3", "M4")}
    for r in rows:
        assert r["mask_seed"] == 0 and r["n_images"] == 24 and r["split"] and r["git_commit"]
        assert set(r["scores"]) == {"mask", "image"}
    by = {(r["method"], r["corruption"]): r["scores"]["mask"]["error"] for r in rows}
    for c in ("M3", "M4"):  # filling the hole with anything sensible beats leaving the occluder in place
        assert by[("harmonic", c)] < by[("masked-input", c)]
        assert by[("abp", c)] < by[("masked-input", c)]
    learned = next(r for r in rows if r["method"] == "abp")
    assert learned["model_run"]["iterations"] == 60 and not learned["model_run"]["reused_run"]
    md = jsonl.with_suffix(".md").read_text()
    assert "| M3 |" in md and "Published (" in md and ".115" in md and "completion-smoke.png" in md
    assert jsonl.with_suffix(".png").is_file() and jsonl.with_suffix(".md") in written
    # a second command trains nothing and recomputes no row
    logs.clear()
    run_table("completion", "smoke", leaderboards=boards, runs=runs, log=logs.append)
    assert len(_rows(jsonl)) == len(rows)
    assert any("reusing" in line for line in logs) and not any("training" in line for line in logs)


def test_recovery_table_learns_from_the_corrupted_images(places):
    boards, runs = places
    run_table("recovery", "smoke", leaderboards=boards, runs=runs, log=lambda *_: None)
    rows = _rows(boards / "digits" / "tasks" / "recovery-smoke.jsonl")
    by = {(r["method"], r["corruption"]): r for r in rows}
    assert abs(by[("abp", "P.5")]["corrupted_fraction"] - 0.5) < 0.01
    assert by[("abp", "M3")]["corrupted_fraction"] == pytest.approx(9 / 64)
    for c in ("P.5", "M3"):
        assert by[("abp", c)]["scores"]["mask"]["error"] < by[("masked-input", c)]["scores"]["mask"]["error"]
        assert by[("abp", c)]["model_run"]["config_hash"] != by[("abp", "P.5" if c == "M3" else "M3")]["model_run"]["config_hash"]
    config = json.loads((boards / "digits" / "tasks" / "recovery-smoke.jsonl").read_text().splitlines()[0])
    assert config["split"] == "train"


def test_reconstruction_table_rows_and_pca_closed_form(places):
    from genbench.runs.config import run_config
    from genbench.data import build_datamodule
    from genbench.tasks.reconstruction import pca_reconstruct, reconstruction_errors

    boards, runs = places
    run_table("reconstruction", "smoke", leaderboards=boards, runs=runs, log=lambda *_: None)
    rows = _rows(boards / "digits" / "tasks" / "reconstruction-smoke.jsonl")
    assert {(r["method"], r["d"]) for r in rows} == {("abp", 4), ("abp", 8), ("pca", 4), ("pca", 8)}
    pca = {r["d"]: r["errors"]["mse"] for r in rows if r["method"] == "pca"}
    assert pca[8] < pca[4]  # more components, smaller error
    # the PCA row equals an independent recomputation on the same split
    cfg = run_config("abp", "digits", "smoke", None, 0, ["trainer.max_iterations=60"]).cfg
    dm = build_datamodule("digits", **cfg["data"])
    held = dm.images(dm.heldout_split)
    from genbench.data.subsets import seeded_subset

    held = held[seeded_subset(held.shape[0], 40, 0)]
    assert reconstruction_errors(held, pca_reconstruct(dm.images("train"), held, 4))["mse"] == pytest.approx(pca[4])
    md = (boards / "digits" / "tasks" / "reconstruction-smoke.md").read_text()
    assert "| abp |" in md and "| pca |" in md and ".1038" in md


def test_a_trained_generator_beats_pca_on_a_curved_low_dimensional_data_set():
    """x = W·(z1, z2, z1² − 1, z2² − 1, z1·z2): a 2-d manifold that no 2-d linear subspace holds. ABP with d = 2
    (learned by alternating back-propagation) reconstructs held-out points better than PCA with d = 2."""
    from genbench.models.abp import infer_latent, reconstruction_loss
    from genbench.samplers.langevin import LangevinConfig
    from genbench.models.nets import build_generator
    from genbench.tasks.reconstruction import pca_reconstruct, reconstruction_errors

    torch.manual_seed(0)
    dims, d = 64, 2
    directions = torch.linalg.qr(torch.randn(dims, 5))[0].T * 4

    def make(n: int, generator: torch.Generator) -> torch.Tensor:
        z = torch.randn(n, d, generator=generator)
        features = torch.stack([z[:, 0], z[:, 1], z[:, 0] ** 2 - 1, z[:, 1] ** 2 - 1, z[:, 0] * z[:, 1]], dim=1)
        return (features @ directions).view(n, 1, 8, 8)

    source = torch.Generator().manual_seed(1)
    train, test = make(2000, source), make(200, source)
    net = build_generator("mlp", d, 8, 1, {"hidden": 128, "depth": 2})
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    sigma, latents = 0.3, torch.zeros(2000, d)
    for _ in range(500):
        index = torch.randint(0, 2000, (100,))
        h, _ = infer_latent(net, latents[index], train[index], sigma, LangevinConfig(n_steps=20, step_size=0.05))
        latents[index] = h
        optimizer.zero_grad()
        reconstruction_loss(net, h, train[index], sigma).backward()
        optimizer.step()
    h, _ = infer_latent(net, torch.zeros(200, d), test, sigma, LangevinConfig(n_steps=300, step_size=0.05))
    abp = reconstruction_errors(test, net(h).detach())["mae"]
    pca = reconstruction_errors(test, pca_reconstruct(train, test, d))["mae"]
    assert abp < 0.85 * pca, (abp, pca)


def test_abp_learning_from_corrupted_images_ignores_the_corrupted_pixels():
    """Batches of a corrupted datamodule carry the mask of intact pixels, and an ABP iteration (inference and
    learning) gives the same weights whatever values the corrupted pixels hold."""
    from genbench.data import build_datamodule
    from genbench.models import build_model

    dm = build_datamodule("digits", image_size=8, channels=1, batch_size=16, corruption="P.3", corruption_seed=5)
    dm.setup()
    x, _, index, observed = next(iter(dm.train_dataloader()))
    assert observed.shape == (16, 1, 8, 8) and abs(float(1 - observed.mean()) - 0.3) < 0.02
    clean = dm.images("train")[index]
    assert torch.equal(x * observed, clean * observed)  # intact pixels are the clean ones

    def one_iteration(images):
        torch.manual_seed(0)
        model = build_model("abp", image_size=8, channels=1, latent_dim=4, num_train=dm.num_train,
                            latent_langevin={"n_steps": 5, "step_size": 0.1}, generator_net={"base_width": 8})
        model.optimizers = lambda: torch.optim.SGD(model.generator.parameters(), lr=0.1)
        model.log_diagnostics = lambda *a, **k: None
        model.update = lambda opt, loss, *a: (opt.zero_grad(), loss.backward(), opt.step())
        model.train_iteration((images, None, index, observed))
        return torch.cat([p.detach().flatten() for p in model.generator.parameters()]), model.latents[index]

    weights_a, latents_a = one_iteration(x)
    weights_b, latents_b = one_iteration(torch.where(observed.bool(), x, torch.rand_like(x) * 2 - 1))
    assert torch.equal(latents_a, latents_b) and torch.equal(weights_a, weights_b)
    weights_c, _ = one_iteration(torch.rand_like(x))  # changing intact pixels does change them
    assert not torch.equal(weights_a, weights_c)


def test_only_models_that_learn_from_corrupted_images_accept_them(places):
    from genbench.bench import run_fit

    with pytest.raises(GenbenchError, match="cannot learn from corrupted images"):
        run_fit("dcgan", "digits", "smoke", overrides=["data.corruption=P.5"], runs=places[1])
    with pytest.raises(GenbenchError, match="fraction must be in"):
        run_fit("abp", "digits", "smoke", overrides=["data.corruption=P.0"], runs=places[1])


def test_is_vs_n_drops_what_the_data_cannot_hold_and_adds_missing_references(places, monkeypatch):
    from genbench.tasks.tables import grid, is_vs_n

    boards, _ = places
    calls = {}
    monkeypatch.setattr(grid, "run_jobs", lambda jobs, *a, **k: calls.setdefault("jobs", jobs) and
                        {"done": jobs, "skipped": [], "failed": []})
    monkeypatch.setattr(grid, "run_reference", lambda data, preset, ns, seed, *a, **k: calls.setdefault("refs", (data, preset, ns, seed)))
    monkeypatch.setattr(is_vs_n, "render_leaderboards", lambda *a, **k: [])
    logs: list[str] = []
    run_table("is-vs-n", "paper", data="digits", overrides=["models=[dcgan,abp]", "ns=[50,100000]", "model_preset=smoke"],
              leaderboards=boards, log=logs.append)
    assert [(j.model, j.n) for j in calls["jobs"]] == [("dcgan", 50), ("abp", 50)]
    assert calls["refs"] == ("digits", "smoke", [50], 0)
    assert any("dropping n = 100000" in line for line in logs)


def test_a_sweep_job_with_its_own_overrides_owns_only_its_rows(tmp_path):
    import yaml

    from genbench.bench.sweep import Job, write_spec
    from genbench.config import config_hash

    alp = Job("dcgan", "imagenet-scenes-tiny", 50, 0, "cpu", ('data.categories=["alp"]', "bench.table=cpu-alp"), "alp")
    plain = Job("dcgan", "imagenet-scenes-tiny", 50, 0, "cpu")
    row = {"model": "dcgan", "data": "imagenet-scenes-tiny", "n": 50, "seed": 0, "preset": "cpu",
           "config": {"data": {"categories": ["alp"], "image_size": 32}, "bench": {"table": "cpu-alp"}}}
    cliff = {**row, "config": {"data": {"categories": ["cliff"]}, "bench": {"table": "cpu-alp"}}}
    assert alp.owns(row) and not alp.owns(cliff) and not alp.owns({**row, "n": 100})
    assert plain.owns(row)  # a job without its own overrides matches on the grid keys alone
    alp_name, plain_name = alp.run_name(alp.resolve()), plain.run_name(plain.resolve())
    assert alp_name.startswith("sweep-cpu-alp-n50-s0-") and plain_name.startswith("sweep-cpu-n50-s0-")
    assert alp_name[-12:] != plain_name[-12:]  # its overrides change its config, so its folder
    # the job runs its config resolved once, under the sweep's overrides then its own, from a file: no flag list
    resolved = alp.resolve(["trainer.max_iterations=5"])
    spec = write_spec(tmp_path / "specs", alp, resolved)
    assert alp.command(spec, resolved, tmp_path) == ["bench", "--spec", str(spec), "--run-name", alp.run_name(resolved),
                                                     "--leaderboards", str(tmp_path)]
    cfg = yaml.safe_load(spec.read_text())
    assert config_hash(cfg) == resolved.hash and cfg["trainer"]["max_iterations"] == 5
    assert cfg["data"]["categories"] == ["alp"] and cfg["bench"]["table"] == "cpu-alp"


@pytest.mark.parametrize("setting, message", [
    ("categories=[]", "categories must be a non-empty list"),
    ("ns=[0,20]", "ns must be a non-empty list of positive integers"),
    ("models=[dcgan,gan9]", "unknown model 'gan9'; known:"),
    ("categories=[nope]", "lacks class folders ['nope']"),
])
def test_bad_synthesis_quality_settings_fail_in_one_line_before_training(places, setting, message):
    boards, runs = places
    with pytest.raises(GenbenchError) as info:
        run_table("synthesis-quality", "smoke", overrides=[setting], leaderboards=boards, runs=runs, log=lambda *_: None)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert not runs.exists() or not any(runs.rglob("last.ckpt"))


def test_synthesis_quality_end_to_end_on_one_category_and_rerun_runs_nothing(places):
    boards, _ = places
    logs: list[str] = []
    run_table("synthesis-quality", "smoke", leaderboards=boards, log=logs.append)
    rows = _rows(boards / "imagenet-scenes-tiny" / "smoke-alp.jsonl")
    models = [r for r in rows if r.get("kind") != "reference"]
    assert sorted((r["model"], r["n"]) for r in models) == [("dcgan", 20), ("dcgan", 40)]
    assert all(r["config"]["data"]["categories"] == ["alp"] for r in rows)
    assert all(r["classifier"]["num_classes"] == 10 for r in rows)  # the classifier learned every category
    refs = {(r["model"], r["n"]): r["metrics"] for r in rows if r.get("kind") == "reference"}
    assert set(refs) == {(kind, n) for kind in ("real images", "image averages", "noise") for n in (20, 40)}
    for n in (20, 40):  # the ceiling is above the floor on every panel
        real, noise = refs[("real images", n)], refs[("noise", n)]
        assert real["class_probability"]["mean"] > noise["class_probability"]["mean"]
        assert real["top5_error"]["mean"] < noise["top5_error"]["mean"]
    md = (boards / "imagenet-scenes-tiny" / "tasks" / "synthesis-quality-smoke.md").read_text()
    assert (boards / "imagenet-scenes-tiny" / "tasks" / "synthesis-quality-smoke.png").stat().st_size > 10_000
    for header in ("Softmax probability of the true category", "Top-5 classification error", "Average pairwise SSIM"):
        assert f"## {header}" in md
    dcgan40 = next(r for r in models if r["n"] == 40)["metrics"]["class_probability"]["mean"]
    assert f"| dcgan | {next(r for r in models if r['n'] == 20)['metrics']['class_probability']['mean']:.3f} | {dcgan40:.3f} |" in md
    assert "no numbers are published" in md
    logs.clear()
    run_table("synthesis-quality", "smoke", leaderboards=boards, log=logs.append)
    assert any("2 jobs, 2 finished already, 0 to run" in line for line in logs)
    assert len(_rows(boards / "imagenet-scenes-tiny" / "smoke-alp.jsonl")) == len(rows)


def test_synthesis_quality_averages_categories_and_keeps_them_apart(tmp_path):
    from genbench.tasks.tables.synthesis_quality import SynthesisQualityTable, render_synthesis_quality

    def row(model, n, probability, kind="model"):
        metrics = {"class_probability": {"mean": probability, "std": None}, "top5_error": {"mean": 1 - probability, "std": None},
                   "pairwise_ssim": {"mean": 0.1, "std": 0.01}}
        return {"model": model, "n": n, "seed": 0, "kind": kind, "metrics": metrics, "config": {"data": {"image_size": 8}}}

    tables = []
    for name, rows in {"cpu-alp": [row("dcgan", 50, 0.2), row("dcgan", 50, 0.9), row("real images", 50, 0.8, "reference"),
                                   row("vae", 50, 0.5), row("dcgan", 70, 0.5)],  # a model and an n the table does not hold
                       "cpu-cliff": [row("dcgan", 50, 0.4), row("real images", 50, 0.6, "reference")]}.items():
        tables.append(tmp_path / f"{name}.jsonl")
        tables[-1].write_text("".join(json.dumps(r) + "\n" for r in rows))
    settings = SynthesisQualityTable(data="x", models=["dcgan"], categories=["alp", "cliff"], ns=[50])
    md, png = render_synthesis_quality(settings, "cpu", tables, None, tmp_path / "tasks" / "synthesis-quality-cpu")
    text = md.read_text()
    # the latest alp row (0.9) and cliff's 0.4: mean 0.65 (the superseded 0.2 is not counted); real images (0.8 + 0.6) / 2
    assert "| dcgan | 0.650 |" in text and "| *real images* (reference) | 0.700 |" in text
    assert "| dcgan | 0.350 |" in text  # top-5 error, the other panel
    assert png.is_file() and "[cpu-alp](../cpu-alp.md)" in text
    assert "| vae |" not in text and "n=70" not in text


def test_a_baseline_row_is_keyed_by_the_preprocessing_of_its_images(tmp_path):
    """A completion baseline has no model run whose config would carry the images' preprocessing: a table rerun
    under another preprocessing computes its rows again instead of reusing the earlier ones."""
    from genbench.tasks.rows import TableRows, scored_row

    rows = TableRows(tmp_path / "t.jsonl")
    calls = []

    def score(base):
        return scored_row(rows, base, ("method",), lambda: calls.append(1), lambda _: {"scores": {}}, lambda _: "",
                          lambda *_: None)

    plain = {"method": "harmonic", "model_run": None}
    score(plain)
    score(plain)
    assert len(calls) == 1  # found by its key
    score({**plain, "preprocessing": {"resize": "stretch", "pixel_norm": "minmax"}})
    assert len(calls) == 2
