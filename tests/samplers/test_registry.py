"""A chain sampler is one registered class: the one below, registered here in the test file alone, drives the
descriptor through training, evaluation, a bench row and its rendered table, with no edit to shared code."""

import torch

from genbench.bench import run_bench
from genbench.models import build_model
from genbench.runs.sampling import sample_all
from genbench.samplers import SAMPLERS, ChainSampler, describe_evaluation

GREY = 0.25


@SAMPLERS.register("test-constant-grey")
class ConstantGreyChains(ChainSampler):
    """Every chain starts at a constant grey image; the training starts are counted."""

    kinds = ("constant grey",)

    def __init__(self, model) -> None:
        super().__init__(model)
        self.started = 0

    def start(self, x_data, n):
        self.started += n
        return None, torch.full((n, *self.model.data_shape), GREY, device=self.model.device)

    def evaluation_start(self, n, first):
        return torch.full((n, *self.model.data_shape), GREY, device=self.model.device)

    @classmethod
    def describe(cls, record):
        return f"constant grey chains, {record['steps']} Langevin steps"


def test_a_sampler_registered_in_a_test_file_drives_the_descriptor(tmp_path):
    result = run_bench("descriptor", "digits", "smoke", None, 0,
                       ["model.chain_init=test-constant-grey", "trainer.max_iterations=3", "data.batch_size=16",
                        "model.num_chains=16", "model.sample_langevin={n_steps: 0}",
                        "model.net={widths: [8, 8, 8], n_out: 2}", "bench.metrics=[pairwise_ssim]", "bench.num_samples=20",
                        "bench.metric_options.ssim_samples=10"],
                       leaderboards=tmp_path / "boards", runs=tmp_path / "runs")
    assert result.row["evaluation_chains"] == {"chains": "constant grey", "steps": 0}
    assert "constant grey chains, 0 Langevin steps" in result.table.with_suffix(".md").read_text()
    model = build_model("descriptor", image_size=8, channels=1, chain_init="test-constant-grey",
                        sample_langevin={"n_steps": 0}, net={"widths": [8, 8, 8], "n_out": 2})
    model.synthesize(5)
    assert model.sampler.started == 5
    samples = sample_all(model, 7, seed=0, chunk=4)
    assert torch.equal(samples, torch.full((7, 1, 8, 8), GREY))  # the evaluation chains are the sampler's starts
    assert describe_evaluation(model.evaluation_chains, "running") == "constant grey chains, 0 Langevin steps; BN running"


def test_chains_of_no_step_say_their_starts_were_scored():
    assert describe_evaluation({"chains": "gaussian", "steps": 0}) == \
        "gaussian chains, 0 Langevin steps: their starts scored unrevised"
    assert describe_evaluation({"chains": "uniform", "steps": 20}) == "uniform chains, 20 Langevin steps"
