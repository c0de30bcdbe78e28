"""Metrics: closed forms, independent recomputation, validity orderings on real images, bad input."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage.metrics import structural_similarity
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
from torch_fidelity.metric_isc import isc_features_to_metric
from torch_fidelity.metric_kid import kid_features_to_metric
from torch_fidelity.metric_prc import calculate_precision_recall_full

from genbench.data import build_datamodule, to_uint8
from genbench.errors import GenbenchError
from genbench.metrics import DEFAULT_METRICS, MetricContext, check_metrics, compute_metrics, features
from genbench.metrics.classifier import (ClassifierSettings, SmallCNN, get_classifier, load_bundle, refusal_threshold)
from genbench.metrics.features import frechet_distance
from genbench.metrics.fidelity import resolve_inception_weights
from genbench.metrics.ssim import pairwise_ssim

FAST = {"width": 16, "epochs": 10, "batch_size": 64, "lr": 5e-3}
# a reduced scenes classifier for the tests (the default one trains for minutes and is cached by users)
SCENES = {"width": 16, "epochs": 6, "max_train": 3000}


@pytest.fixture(scope="module")
def digits_ctx():
    return MetricContext("digits", {}, {"classifier": FAST})


@pytest.fixture(scope="module")
def scenes_ctx():
    return MetricContext("imagenet-scenes-tiny", {}, {"classifier": SCENES, "kid_subsets": 50})


def _direct_features(classifier, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The classifier's logits and penultimate features computed here, without torch-fidelity: the bytes a
    user's image file would hold, the net loaded from its file."""
    bundle = load_bundle(classifier.path)
    net = SmallCNN(classifier.meta["channels"], classifier.num_classes, classifier.meta["settings"]["width"])
    net.load_state_dict(bundle["state_dict"])
    net.eval()
    x = to_uint8(images).float() / 127.5 - 1.0
    with torch.no_grad():
        feats, logits = net(x)
    return logits.double(), feats.double()


def test_is_closed_forms():
    uniform = isc_features_to_metric(torch.zeros(1000, 10), splits=10)
    assert uniform["inception_score_mean"] == pytest.approx(1.0, abs=1e-9)
    for k in (1, 3, 7):
        labels = torch.arange(2100) % k  # each split of 210 uses the k classes equally
        confident = torch.nn.functional.one_hot(labels, 10).double() * 60.0
        out = isc_features_to_metric(confident, splits=10, shuffle=False)
        assert out["inception_score_mean"] == pytest.approx(k, rel=1e-6)


def _symmetric_sqrt(m: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(m)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def test_fid_equals_closed_form_of_two_gaussians():
    gen = torch.Generator().manual_seed(0)
    d, n = 6, 40_000
    mu1, mu2 = torch.zeros(d), torch.linspace(-1, 1, d)
    sd1, sd2 = torch.linspace(0.5, 2.0, d), torch.linspace(1.5, 0.7, d)
    a = (mu1 + sd1 * torch.randn(n, d, generator=gen)).double()
    b = (mu2 + sd2 * torch.randn(n, d, generator=gen)).double()
    ours = frechet_distance(a, b)
    # exact on the sample statistics: Tr((Σ1Σ2)^½) = Tr((Σ1^½ Σ2 Σ1^½)^½), by symmetric eigendecompositions
    s1, s2 = np.cov(a.numpy(), rowvar=False), np.cov(b.numpy(), rowvar=False)
    r1 = _symmetric_sqrt(s1)
    diff = a.numpy().mean(0) - b.numpy().mean(0)
    exact = diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(_symmetric_sqrt(r1 @ s2 @ r1))
    assert ours == pytest.approx(exact, rel=1e-8)
    # and the population value of diagonal Gaussians: ‖μ1−μ2‖² + Σ (σ1 − σ2)²
    population = float(((mu1 - mu2) ** 2).sum() + ((sd1 - sd2) ** 2).sum())
    assert ours == pytest.approx(population, rel=0.03)


def test_scores_equal_torch_fidelity_on_features_from_a_separate_pass(digits_ctx):
    dm = digits_ctx.benchmark_data()
    images = dm.images(dm.heldout_split)[:300]
    scores = compute_metrics(DEFAULT_METRICS, images, digits_ctx)
    classifier = digits_ctx.classifier()
    logits, feats = _direct_features(classifier, images)
    real_logits, real_feats = _direct_features(classifier, dm.images("train"))
    isc = isc_features_to_metric(logits, splits=10, shuffle=True, rng_seed=2020)
    assert scores["classifier_score"].mean == pytest.approx(isc["inception_score_mean"], rel=1e-5)
    assert scores["classifier_score"].std == pytest.approx(isc["inception_score_std"], rel=1e-4)
    fid = fid_statistics_to_metric(fid_features_to_statistics(feats), fid_features_to_statistics(real_feats), False)
    assert scores["classifier_fid"].mean == pytest.approx(fid["frechet_inception_distance"], rel=1e-4, abs=1e-4)
    kid = kid_features_to_metric(feats, real_feats, kid_subsets=100, kid_subset_size=300, rng_seed=2020, verbose=False)
    assert scores["classifier_kid"].mean == pytest.approx(kid["kernel_inception_distance_mean"], rel=1e-4, abs=1e-6)
    precision, recall = calculate_precision_recall_full(feats.float(), real_feats.float(), 3)
    assert scores["classifier_precision"].mean == pytest.approx(precision, abs=1 / 300)
    assert scores["classifier_recall"].mean == pytest.approx(recall, abs=2 / 1438)
    top1 = logits.softmax(1).max(1).values.mean()
    assert scores["top1_probability"].mean == pytest.approx(float(top1), rel=1e-5)
    assert "1438 real train images of digits" in scores["classifier_fid"].protocol


def test_one_feature_pass_per_sample_set_and_no_decoding_on_cache_hit(digits_ctx, monkeypatch):
    dm = digits_ctx.benchmark_data()
    images = dm.images(dm.heldout_split)[:100]
    compute_metrics(["classifier_fid"], images, digits_ctx)  # classifier and real features are cached now
    calls = []
    original = features.extract_features
    monkeypatch.setattr("genbench.metrics.context.extract_features", lambda *a, **k: calls.append(1) or original(*a, **k))
    fresh = MetricContext("digits", {}, {"classifier": FAST})
    from genbench.data.base import ImageDataModule

    monkeypatch.setattr(ImageDataModule, "_load", lambda self, items: pytest.fail("a cache hit decoded images"))
    scores = compute_metrics(DEFAULT_METRICS[:-1], images, fresh)  # everything but SSIM, which reads pixels only
    assert len(calls) == 1 and {"classifier_score", "classifier_fid", "classifier_kid", "classifier_recall"} <= set(scores)


def test_classifier_is_cached_and_above_chance(digits_ctx):
    classifier = digits_ctx.classifier()
    rec = classifier.record()
    assert rec["top1"] > 0.5 and rec["top5"] > rec["top1"]
    again = get_classifier(lambda: build_datamodule("digits"), "digits", ClassifierSettings(**FAST), classifier.path.parent)
    assert again.path == classifier.path and again.meta["top1"] == rec["top1"]


def test_classifier_near_chance_is_refused(tmp_path):
    hopeless = ClassifierSettings(width=2, epochs=1, lr=1e-7, max_train=64)
    with pytest.raises(GenbenchError, match="refusing to score"):
        get_classifier(lambda: build_datamodule("digits"), "digits", hopeless, tmp_path)


def test_refusal_rule_admits_good_two_class_classifiers(tmp_path):
    assert refusal_threshold(10) == pytest.approx(0.2) and refusal_threshold(100) == pytest.approx(0.11)
    assert refusal_threshold(2) == pytest.approx(0.75) and refusal_threshold(3) == pytest.approx(2 / 3)
    two = lambda: build_datamodule("imagenet-scenes-tiny", categories=["alp", "coral_reef"], image_size=32)  # noqa: E731
    classifier = get_classifier(two, "imagenet-scenes-tiny", ClassifierSettings(width=8, epochs=4), tmp_path)
    assert classifier.num_classes == 2 and classifier.meta["top1"] >= 0.75


def test_validity_orderings_on_real_scenes(scenes_ctx):
    """Real held-out > blurred > noisy > Gaussian noise in classifier score; the reverse in FID and KID."""
    dm = scenes_ctx.benchmark_data()
    real = dm.images(dm.heldout_split)
    gen = torch.Generator().manual_seed(0)
    blurred = F.interpolate(F.avg_pool2d(real, 4), scale_factor=4, mode="nearest")
    noisy = (real + 0.5 * torch.randn(real.shape, generator=gen)).clamp(-1, 1)
    noise = torch.randn(real.shape, generator=gen).clamp(-1, 1)
    names = ["classifier_score", "classifier_fid", "classifier_kid", "classifier_pr"]
    scores = [compute_metrics(names, x, scenes_ctx) for x in (real, blurred, noisy, noise)]
    assert scenes_ctx.records["classifier"]["top1"] > 0.4
    score = [s["classifier_score"].mean for s in scores]
    fid = [s["classifier_fid"].mean for s in scores]
    kid = [s["classifier_kid"].mean for s in scores]
    assert score == sorted(score, reverse=True) and score[0] > 1.5 * score[-1], score
    assert fid == sorted(fid) and fid[-1] > 10 * fid[0], fid
    assert kid == sorted(kid) and kid[-1] > 10 * max(kid[0], 1e-3), kid
    assert scores[0]["classifier_precision"].mean > 0.5 > scores[-1]["classifier_precision"].mean
    assert scores[0]["classifier_recall"].mean > 0.5 > scores[-1]["classifier_recall"].mean


def test_copies_of_one_image_score_one_and_a_high_fid(scenes_ctx):
    dm = scenes_ctx.benchmark_data()
    real = dm.images(dm.heldout_split)
    copies = real[:1].repeat(500, 1, 1, 1)
    scores = compute_metrics(["classifier_score", "classifier_fid", "classifier_pr"], copies, scenes_ctx)
    honest = compute_metrics(["classifier_fid"], real, scenes_ctx)
    assert scores["classifier_score"].mean == pytest.approx(1.0, abs=1e-6)
    assert scores["classifier_fid"].mean > 5 * honest["classifier_fid"].mean
    assert scores["classifier_recall"].mean < 0.05  # one point covers almost none of the real images


def test_real_vs_real_fid_is_far_below_real_vs_noise(scenes_ctx):
    dm = scenes_ctx.benchmark_data()
    held = dm.images(dm.heldout_split)
    noise = torch.randn(held.shape, generator=torch.Generator().manual_seed(1)).clamp(-1, 1)
    real_fid = compute_metrics(["classifier_fid"], held, scenes_ctx)["classifier_fid"].mean
    noise_fid = compute_metrics(["classifier_fid"], noise, scenes_ctx)["classifier_fid"].mean
    assert real_fid < noise_fid / 20


def test_one_category_model_gets_true_class_numbers_from_the_all_category_classifier(scenes_ctx):
    alp = MetricContext("imagenet-scenes-tiny", {"categories": ["alp"]}, {"classifier": SCENES})
    check_metrics(DEFAULT_METRICS, alp)
    assert alp.benchmark_data().num_classes == 1 and alp.classifier_data().num_classes == 10
    held = alp.benchmark_data().images(alp.benchmark_data().heldout_split)
    scores = compute_metrics(["synthesis_quality", "classifier_fid"], held, alp)
    assert alp.classifier().path == scenes_ctx.classifier().path  # the same all-category classifier
    other = scenes_ctx.benchmark_data()
    not_alp = other.images(other.heldout_split)[other.datasets[other.heldout_split].labels != 0][:50]
    wrong = compute_metrics(["synthesis_quality"], not_alp, alp)
    assert scores["class_probability"].mean > 0.3 > wrong["class_probability"].mean
    assert scores["top5_error"].mean < wrong["top5_error"].mean
    assert "50 real train images" not in scores["classifier_fid"].protocol  # the reference is alp's 500 train images
    assert "500 real train images of imagenet-scenes-tiny" in scores["classifier_fid"].protocol


@pytest.mark.parametrize("options, n_samples, message", [
    ({"kid_subset_size": 1000}, 500, "KID subset size 1000 exceeds the 500 generated"),
    ({"pr_neighborhood": 20}, 15, "needs more than 20 generated and real images"),
    ({}, 5, "needs at least 10 samples (one per split)"),
    ({"splits": 0}, 500, "metric_options.splits must be a positive integer"),
])
def test_impossible_metric_settings_fail_before_any_work(options, n_samples, message):
    with pytest.raises(GenbenchError) as info:
        check_metrics(DEFAULT_METRICS, MetricContext("digits", {}, {"classifier": FAST, **options}, n_samples=n_samples))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_unknown_metric_option_names_the_accepted_ones():
    with pytest.raises(GenbenchError, match=r"unknown bench.metric_options option\(s\) \['kid_subset'\]"):
        MetricContext("digits", {}, {"kid_subset": 10})


def test_one_class_dataset_is_refused_for_classifier_metrics(tmp_path):
    from PIL import Image

    for split in ("train", "val"):
        folder = tmp_path / split / "faces"
        folder.mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (16, 16), (i * 40, 0, 0)).save(folder / f"{i}.png")
    ctx = MetricContext("imagenet-scenes-tiny", {"root": str(tmp_path)}, {}, n_samples=50)
    with pytest.raises(GenbenchError, match="need a labelled dataset with ≥ 2 classes; imagenet-scenes-tiny has 1"):
        check_metrics(["classifier_score"], ctx)
    check_metrics(["pairwise_ssim"], ctx)


def test_corrupt_cached_files_give_one_line(digits_ctx, tmp_path):
    classifier = digits_ctx.classifier()
    broken = tmp_path / classifier.path.name
    broken.write_bytes(classifier.path.read_bytes()[:200])
    with pytest.raises(GenbenchError, match="cannot load classifier .* delete it to retrain"):
        get_classifier(lambda: build_datamodule("digits"), "digits", ClassifierSettings(**FAST), tmp_path)
    digits_ctx.reference("classifier")
    cached = next(digits_ctx.space("classifier").cache_dir.glob(f"{classifier.identity}.real-*.pt"))
    saved = cached.read_bytes()
    try:
        cached.write_bytes(b"not a tensor file")
        fresh = MetricContext("digits", {}, {"classifier": FAST})
        with pytest.raises(GenbenchError, match="cached real-image features .* unreadable .* delete the file"):
            fresh.reference("classifier")
    finally:
        cached.write_bytes(saved)


def test_missing_inception_weights_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("GENBENCH_INCEPTION_WEIGHTS", raising=False)
    with pytest.raises(GenbenchError) as info:
        resolve_inception_weights()
    message = str(info.value)
    assert "weights-inception-2015-12-05-6726825d.pth" in message and str(tmp_path / "hub" / "checkpoints") in message
    assert "\n" not in message
    with pytest.raises(GenbenchError, match="weights-inception-2015-12-05-6726825d.pth"):
        check_metrics(["fid"], MetricContext("digits", {}, {}))


def test_inception_space_runs_the_same_code_with_local_weights(tmp_path, monkeypatch):
    """The real Inception-v3 path with randomly initialised weights saved where a user would put them:
    IS/FID/KID/PR in Inception features equal torch-fidelity's functions on its own features."""
    import torch_fidelity.feature_extractor_inceptionv3 as tfi

    monkeypatch.setattr(tfi, "load_state_dict_from_url", lambda *a, **k: None)
    monkeypatch.setattr(tfi.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd: None)
    torch.manual_seed(0)
    net = tfi.FeatureExtractorInceptionV3("inception-v3-compat", ["logits_unbiased", "2048"])
    monkeypatch.undo()
    weights = tmp_path / "weights-inception-2015-12-05-6726825d.pth"
    torch.save(net.state_dict(), weights)
    monkeypatch.setenv("GENBENCH_INCEPTION_WEIGHTS", str(weights))
    ctx = MetricContext("digits", {}, {"splits": 2, "kid_subsets": 5, "reference_max_images": 40})
    check_metrics(["inception_score", "fid", "kid", "inception_pr"], ctx)
    images = torch.rand(24, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    scores = compute_metrics(["inception_score", "fid", "kid", "inception_pr"], images, ctx)
    net.eval()
    with torch.no_grad():
        logits, pool = net(to_uint8(images).expand(-1, 3, -1, -1))
    isc = isc_features_to_metric(logits.double(), splits=2)
    assert scores["inception_score"].mean == pytest.approx(isc["inception_score_mean"], rel=1e-6)
    real_pool = ctx.reference("inception").features.pool
    assert real_pool.shape == (40, 2048)
    fid = fid_statistics_to_metric(fid_features_to_statistics(pool.double()), fid_features_to_statistics(real_pool), False)
    assert scores["fid"].mean == pytest.approx(fid["frechet_inception_distance"], rel=1e-4)
    assert {"kid", "inception_precision", "inception_recall"} <= set(scores)


def test_pairwise_ssim_matches_scikit_image():
    gen = torch.Generator().manual_seed(0)
    base = torch.rand(1, 3, 32, 32, generator=gen)
    images = (base + 0.3 * torch.rand(6, 3, 32, 32, generator=gen)).clamp(0, 1) * 2 - 1
    ours = pairwise_ssim(images)
    unit = ((images + 1) / 2).numpy()
    ref = []
    for i in range(6):
        for j in range(i + 1, 6):
            ref.append(structural_similarity(unit[i], unit[j], channel_axis=0, gaussian_weights=True, sigma=1.5,
                                             use_sample_covariance=False, data_range=1.0))
    assert ours["pairwise_ssim_pairs"] == 15
    assert ours["pairwise_ssim"] == pytest.approx(float(np.mean(ref)), abs=2e-3)


def test_pairwise_ssim_equals_torchmetrics_pair_by_pair():
    from torchmetrics.functional.image import structural_similarity_index_measure

    gen = torch.Generator().manual_seed(1)
    images = (torch.rand(1, 3, 24, 24, generator=gen) + 0.5 * torch.rand(7, 3, 24, 24, generator=gen)).clamp(0, 1) * 2 - 1
    ours = pairwise_ssim(images, batch_pairs=4)
    unit = (images + 1) / 2
    i, j = torch.triu_indices(7, 7, offset=1)
    direct = structural_similarity_index_measure(unit[i], unit[j], data_range=1.0, reduction="none").double()
    assert ours["pairwise_ssim"] == pytest.approx(float(direct.mean()), abs=1e-6)
    assert ours["pairwise_ssim_std"] == pytest.approx(float(direct.std(unbiased=False)), abs=1e-6)


def test_pairwise_ssim_identical_samples_is_one():
    images = torch.rand(1, 3, 16, 16).repeat(4, 1, 1, 1) * 2 - 1
    assert pairwise_ssim(images)["pairwise_ssim"] == pytest.approx(1.0, abs=1e-5)


def test_rounding_quantisation():
    x = torch.tensor([-1.0, -0.996, 0.0, 0.999, 1.0])
    assert to_uint8(x).tolist() == [0, 1, 128, 255, 255]
