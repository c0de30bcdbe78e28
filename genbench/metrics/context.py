"""What metrics share while scoring: the validated options, the benchmark's data, the offline classifier,
the feature spaces with their cached real-image features, and — per sample set — one feature pass per
feature space, reused by every score computed in that space."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch

from genbench.config import instantiate
from genbench.data import build_datamodule
from genbench.data.pixels import to_uint8
from genbench.errors import GenbenchError
from genbench.metrics.classifier import ClassifierSettings, get_classifier
from genbench.metrics.features import (Features, FeatureSpace, Reference, concat_features, extract_features, make_extractor,
                                       reference_features)
from genbench.metrics.fidelity import inception_space

#: data options that change neither which images a dataset holds nor how they look
NON_CONTENT_DATA_OPTIONS = ("n_per_class", "shuffle_seed", "batch_size", "num_workers")


@dataclass
class MetricOptions:
    """``bench.metric_options``: how the metrics are computed (each value is recorded in the protocols).

    Args:
        splits: splits of the inception-style scores (the papers: 10).
        ssim_samples: pairwise SSIM over all pairs of the first ``ssim_samples`` samples.
        classifier: settings of the offline classifier (``ClassifierSettings``).
        reference_split: the real images FID/KID/precision-recall compare against (``train``: the
            benchmark's training split without the ``n_per_class`` draw; or ``val``/``test``).
        reference_max_images: at most this many real images (a seeded subset of a larger split).
        kid_subsets: KID subsets; ``kid_subset_size``: images per subset (None: min(1000, n_fake, n_real)).
        pr_neighborhood: k of the k-NN balls of precision/recall.
        inception_weights: explicit path of the Inception-v3 weights file.
        feature_batch_size: images per batch of a feature pass.
    """

    splits: int = 10
    ssim_samples: int = 100
    classifier: dict = field(default_factory=dict)
    reference_split: str = "train"
    reference_max_images: int = 10_000
    kid_subsets: int = 100
    kid_subset_size: int | None = None
    pr_neighborhood: int = 3
    inception_weights: str | None = None
    feature_batch_size: int = 256

    def __post_init__(self) -> None:
        for name in ("splits", "ssim_samples", "reference_max_images", "kid_subsets", "pr_neighborhood", "feature_batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise GenbenchError(f"bench.metric_options.{name} must be a positive integer, got {value!r}")


class MetricContext:
    """Shared state of one scoring session (one run's samples, or the reference rows of a table).

    ``data_options`` is the benchmark's ``data`` section; ``n_samples`` the number of samples that will be
    scored (known before training, so the checks can refuse impossible settings before any work)."""

    def __init__(self, dataset: str, data_options: dict, options: dict | MetricOptions | None = None,
                 n_samples: int | None = None, log=None) -> None:
        self.dataset = dataset
        self.data_options = {k: v for k, v in data_options.items() if k not in NON_CONTENT_DATA_OPTIONS}
        if not isinstance(options, MetricOptions):
            options = instantiate(MetricOptions, dict(options or {}), "bench.metric_options")
        self.options = options
        self.n_samples = n_samples
        self.log = log  # progress lines (training a classifier takes minutes)
        self.records: dict = {}  # filled while scoring: the classifier's record, the real-image sets
        self._datamodules: dict[str, object] = {}
        self._classifiers: dict[str, object] = {}  # the offline classifier, loaded once
        self._spaces: dict[str, FeatureSpace] = {}
        self._extractors: dict[str, object] = {}
        self._references: dict[str, Reference] = {}

    def for_samples(self, n_samples: int) -> "MetricContext":
        """A context for another sample count (a learning curve's) that shares this one's data, classifier, feature
        spaces, extractors and real-image features, and writes its records into the same place."""
        other = copy.copy(self)
        other.n_samples = n_samples
        return other

    # -- data --------------------------------------------------------------------------------------------
    def _datamodule(self, which: str, options: dict):
        if which not in self._datamodules:
            self._datamodules[which] = build_datamodule(self.dataset, **options)
        return self._datamodules[which]

    def benchmark_data(self):
        """The benchmark's dataset without the ``n_per_class`` draw (its images are decoded only on demand)."""
        return self._datamodule("benchmark", self.data_options)

    def classifier_data(self):
        """The classifier's dataset: the benchmark's, or — for a one-category benchmark (``categories:
        [alp]``) — all categories of the dataset, so the papers' true-class numbers can be read off."""
        options = dict(self.data_options)
        if self.benchmark_data().num_classes == 1 and options.get("categories"):
            options.pop("categories")
            return self._datamodule("classifier", options)
        return self.benchmark_data()

    # -- extractors ----------------------------------------------------------------------------------------
    def classifier(self):
        if "classifier" not in self._classifiers:
            settings = ClassifierSettings(**self.options.classifier)
            self._classifiers["classifier"] = get_classifier(self.classifier_data, self.dataset, settings, log=self.log)
            self.records["classifier"] = self._classifiers["classifier"].record()
        return self._classifiers["classifier"]

    def target_class(self) -> int | None:
        """The classifier's index of the benchmark's one category (None for several categories)."""
        names = self.benchmark_data().class_names
        if len(names) != 1:
            return None
        classes = self.classifier().meta["classes"]
        if names[0] not in classes:
            raise GenbenchError(f"category {names[0]!r} is not among the offline classifier's classes {classes}")
        return classes.index(names[0])

    def space(self, name: str) -> FeatureSpace:
        if name not in self._spaces:
            if name == "classifier":
                self._spaces[name] = self.classifier().feature_space()
            else:
                self._spaces[name] = inception_space(self.options.inception_weights)
        return self._spaces[name]

    def extractor(self, name: str):
        """The torch-fidelity extractor of feature space ``name``, loaded once per context."""
        if name not in self._extractors:
            self._extractors[name] = make_extractor(self.space(name))
        return self._extractors[name]

    def reference(self, name: str) -> Reference:
        """Cached features of the real images feature-space metrics compare against."""
        if name not in self._references:
            ref = reference_features(self.space(name), self.benchmark_data(), self.options.reference_split,
                                     self.options.reference_max_images, self.options.feature_batch_size)
            self._references[name] = ref
            self.records.setdefault("real_images", {})[name] = ref.meta
        return self._references[name]

    def reference_count(self) -> int:
        """How many real images the reference set holds (from the file list, before any decoding)."""
        plan = self.benchmark_data().plan()
        split = self.options.reference_split
        if split not in plan:
            raise GenbenchError(f"{self.dataset} has no {split!r} split for the metrics' real images; it has "
                                f"{', '.join(plan)} (set bench.metric_options.reference_split)")
        return min(len(plan[split]), self.options.reference_max_images)


class SampleSet:
    """The images being scored and their features, one extractor pass per feature space.

    ``images`` holds every sample, or — for a set streamed in chunks (``from_stream``) — only the first ones
    (what pairwise SSIM and the sample sheets read); ``count`` is the whole set's size either way."""

    def __init__(self, images: torch.Tensor, count: int | None = None, features: dict[str, Features] | None = None) -> None:
        self.images = images
        self.count = images.shape[0] if count is None else count
        self._features: dict[str, Features] = dict(features or {})

    def features(self, ctx: MetricContext, space: str) -> Features:
        if space not in self._features:
            if self.images.shape[0] != self.count:
                raise GenbenchError(f"the {space} features of this streamed sample set were not computed while it "
                                    f"streamed; name the space in from_stream")
            self._features[space] = extract_features(self.images, ctx.space(space), ctx.options.feature_batch_size,
                                                     ctx.extractor(space))
        return self._features[space]

    @classmethod
    def from_stream(cls, chunks, ctx: MetricContext, spaces: list[str], keep: int) -> "SampleSet":
        """Score a sample set that arrives in chunks (in [-1, 1]): each chunk goes through every feature space in
        ``spaces`` and is dropped, except the first ``keep`` samples. Memory: one chunk plus the features."""
        head: list[torch.Tensor] = []
        kept, count = 0, 0
        parts: dict[str, list[Features]] = {space: [] for space in spaces}
        for chunk in chunks:
            quantised = to_uint8(chunk)
            for space in spaces:
                parts[space].append(extract_features(quantised, ctx.space(space), ctx.options.feature_batch_size,
                                                      ctx.extractor(space)))
            if kept < keep:
                head.append(chunk[: keep - kept].cpu())
                kept += head[-1].shape[0]
            count += chunk.shape[0]
        images = torch.cat(head) if head else torch.zeros(0)
        return cls(images, count, {space: concat_features(p) for space, p in parts.items() if p})
