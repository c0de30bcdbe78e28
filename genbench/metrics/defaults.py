"""The metrics a run computes when its preset names none (``bench.metrics``): the offline classifier's scores and
pairwise SSIM, which need no download."""

DEFAULT_METRICS = ["classifier_score", "synthesis_quality", "classifier_fid", "classifier_kid", "classifier_pr", "pairwise_ssim"]
