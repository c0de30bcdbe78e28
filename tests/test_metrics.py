import numpy as np
import pytest
import torch
import torch_fidelity
from skimage.metrics import structural_similarity
from torch_fidelity.metric_isc import isc_features_to_metric

from genbench.data import build_datamodule
from genbench.errors import GenbenchError
from genbench.metrics import fidelity
from genbench.metrics.classifier import EXTRACTOR_NAME, ClassifierSettings, classifier_score, get_classifier
from genbench.metrics.fidelity import Uint8Images, inception_score, resolve_inception_weights
from genbench.metrics.ssim import pairwise_ssim

FAST = ClassifierSettings(width=16, epochs=10, batch_size=64, lr=5e-3)


@pytest.fixture(scope="module")
def digits_classifier(tmp_path_factory):
    return get_classifier(lambda: build_datamodule("digits"), "digits", FAST, tmp_path_factory.mktemp("clf"))


def test_is_closed_forms():
    uniform = isc_features_to_metric(torch.zeros(1000, 10), splits=10)
    assert uniform["inception_score_mean"] == pytest.approx(1.0, abs=1e-9)
    for k in (1, 3, 7):
        labels = torch.arange(2100) % k  # each split of 210 uses the k classes equally
        confident = torch.nn.functional.one_hot(labels, 10).double() * 60.0
        out = isc_features_to_metric(confident, splits=10, shuffle=False)
        assert out["inception_score_mean"] == pytest.approx(k, rel=1e-6)


def test_classifier_is_cached_and_above_chance(digits_classifier, tmp_path):
    rec = digits_classifier.record()
    assert rec["top1"] > 0.5 and rec["top5"] > rec["top1"]
    again = get_classifier(lambda: build_datamodule("digits"), "digits", FAST, digits_classifier.path.parent)
    assert again.path == digits_classifier.path and again.meta["top1"] == rec["top1"]


def test_classifier_near_chance_is_refused(tmp_path):
    hopeless = ClassifierSettings(width=2, epochs=1, lr=1e-7, max_train=64)
    with pytest.raises(GenbenchError, match="refusing to score"):
        get_classifier(lambda: build_datamodule("digits"), "digits", hopeless, tmp_path)


def test_our_score_equals_torch_fidelity_with_same_extractor(digits_classifier):
    images = build_datamodule("digits").train_images()[:500]
    ours = classifier_score(images, digits_classifier)
    direct = torch_fidelity.calculate_metrics(
        input1=Uint8Images(images), isc=True, feature_extractor=EXTRACTOR_NAME,
        feature_extractor_weights_path=str(digits_classifier.path), cuda=False, verbose=False, cache=False)
    assert ours["classifier_score"] == pytest.approx(direct["inception_score_mean"], rel=1e-12)
    assert ours["classifier_score_std"] == pytest.approx(direct["inception_score_std"], rel=1e-12)
    assert ours["classifier_score"] > 3.0  # real digits of 10 classes are confidently and evenly classified


def test_true_class_probability_and_top5_error(digits_classifier):
    dm = build_datamodule("digits")
    dm.setup()
    threes = dm.train_images()[dm.datasets["train"].labels == 3]
    out = classifier_score(threes, digits_classifier, target_class=3)
    assert out["class_probability"] > 0.5 and out["top5_error"] < 0.2
    wrong = classifier_score(threes, digits_classifier, target_class=4)
    assert wrong["class_probability"] < out["class_probability"]


def test_missing_inception_weights_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("GENBENCH_INCEPTION_WEIGHTS", raising=False)
    with pytest.raises(GenbenchError) as info:
        resolve_inception_weights()
    message = str(info.value)
    assert "weights-inception-2015-12-05-6726825d.pth" in message and str(tmp_path / "hub" / "checkpoints") in message
    assert "\n" not in message


def test_inception_path_runs_through_torch_fidelity(tmp_path, monkeypatch):
    """The real Inception code path, with randomly initialised weights saved where a user would put them."""
    import torch_fidelity.feature_extractor_inceptionv3 as tfi

    monkeypatch.setattr(tfi, "load_state_dict_from_url", lambda *a, **k: None)
    monkeypatch.setattr(tfi.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd: None)
    torch.manual_seed(0)
    net = tfi.FeatureExtractorInceptionV3("inception-v3-compat", ["logits_unbiased"])
    monkeypatch.undo()
    weights = tmp_path / fidelity.INCEPTION_WEIGHTS_FILE
    torch.save(net.state_dict(), weights)
    images = torch.rand(20, 3, 32, 32) * 2 - 1
    out = inception_score(images, weights_path=weights, splits=2)
    direct = torch_fidelity.calculate_metrics(input1=Uint8Images(images), isc=True, isc_splits=2,
                                              feature_extractor_weights_path=str(weights), cuda=False, verbose=False,
                                              cache=False)
    assert out["inception_score"] == pytest.approx(direct["inception_score_mean"], rel=1e-9)


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


def test_pairwise_ssim_identical_samples_is_one():
    images = torch.rand(1, 3, 16, 16).repeat(4, 1, 1, 1) * 2 - 1
    assert pairwise_ssim(images)["pairwise_ssim"] == pytest.approx(1.0, abs=1e-5)


def test_rounding_quantisation():
    from genbench.data import to_uint8

    x = torch.tensor([-1.0, -0.996, 0.0, 0.999, 1.0])
    assert to_uint8(x).tolist() == [0, 1, 128, 255, 255]
