"""Evaluation samples of persistent-chain models: distinct chains, of the trained length, recorded."""

import lightning as L
import pytest
import torch

from genbench.bench import run_bench
from genbench.errors import GenbenchError
from genbench.models import build_model
from genbench.runs.sampling import sample_all

SMALL = {"image_size": 8, "channels": 1, "net": {"widths": [8, 8, 8], "n_out": 4}}


def _labelled_pcd(buffer_size: int, **options):
    """A PCD model whose buffer state i is the constant image i (a state's origin is readable from any pixel)
    and whose evaluation adds no Langevin step."""
    model = build_model("pcd", **SMALL, buffer_size=buffer_size, num_chains=4, ref_std=1.0,
                        sample_langevin={"n_steps": 0}, **options)
    model.buffer.states.copy_(torch.arange(buffer_size, dtype=torch.float32).view(-1, 1, 1, 1).expand_as(model.buffer.states))
    model.buffer.states.mul_(1.0 / buffer_size)  # inside [-1, 1] so sampling's clipping keeps the labels
    return model


def _origins(samples: torch.Tensor, buffer_size: int) -> list[int]:
    return (samples[:, 0, 0, 0] * buffer_size).round().long().tolist()


def test_buffer_evaluation_draws_distinct_states_across_chunks():
    torch.manual_seed(0)
    model = _labelled_pcd(50, eval_chains="buffer")
    samples = sample_all(model, 40, seed=3, chunk=8)  # 5 chunks, each seeded separately
    origins = _origins(samples, 50)
    assert len(set(origins)) == 40 and all(0 <= i < 50 for i in origins)
    assert model.evaluation_chains["chains"] == "buffer" and model.evaluation_chains["distinct_states"] == 40
    assert model.evaluation_chains["never_revised"] == 40  # untrained: no state was revised yet, and it says so
    again = sample_all(model, 40, seed=3, chunk=13)  # the order depends on the seed, not on the chunking
    assert _origins(again, 50) == origins


def test_buffer_evaluation_larger_than_the_buffer_is_refused_in_one_line():
    model = _labelled_pcd(50, eval_chains="buffer")
    with pytest.raises(GenbenchError, match="60 evaluation samples need 60 distinct buffer states.*buffer_size"):
        model.check_evaluation(60)


def test_fresh_evaluation_chains_run_the_trained_chain_length():
    """With every chain drawn each iteration and no re-initialisation, k iterations of l steps make chains of
    k·l steps; fresh evaluation chains start from noise and run that long."""
    L.seed_everything(0)
    model = build_model("pcd", **SMALL, buffer_size=16, num_chains=16, reinit_prob=0.0, ref_std=1.0,
                        langevin={"n_steps": 3, "step_size": 0.05})
    for _ in range(7):
        model.synthesize(16)
    assert model.buffer.chain_steps.tolist() == [21] * 16
    seen = []
    original = model.revise

    def spy(x0, config=None, trace=False, **kwargs):
        seen.append((x0.clone(), config.n_steps))
        return original(x0, config, trace, **kwargs)

    model.revise = spy
    model.buffer.states.fill_(0.5)  # if the chains came from the buffer, they would start at 0.5
    record = model.prepare_evaluation(400, seed=0)
    model.sample(400)
    assert record == {"chains": "fresh", "init": "gaussian", "steps": 21, "trained_chain_length": 21}
    x0, steps = seen[0]
    assert steps == 21
    assert abs(x0.mean().item()) < 0.01 and abs(x0.std().item() - 0.016) < 0.001  # N(0, init_std²) noise
    assert build_model("pcd", **SMALL, eval_steps=5).sampler.evaluation_langevin().n_steps == 5


def test_reinitialised_chains_restart_their_length():
    torch.manual_seed(0)
    model = build_model("pcd", **SMALL, buffer_size=400, num_chains=400, reinit_prob=0.5, ref_std=1.0,
                        langevin={"n_steps": 2, "step_size": 0.05})
    model.synthesize(400)
    model.synthesize(400)
    lengths = model.buffer.chain_steps
    assert set(lengths.tolist()) == {2, 4}
    assert 0.3 < (lengths == 4).float().mean() < 0.7  # about half survived the second draw


def test_an_impossible_buffer_evaluation_fails_before_training(tmp_path):
    with pytest.raises(GenbenchError, match="distinct buffer states"):
        run_bench("pcd", "digits", "smoke", seed=0, runs=tmp_path / "runs", leaderboards=tmp_path / "boards",
                  overrides=["model.eval_chains=buffer", "model.buffer_size=40", "bench.num_samples=61",
                             "bench.metrics=[pairwise_ssim]", "bench.metric_options.ssim_samples=10"])
    assert not list((tmp_path / "runs").rglob("*.ckpt"))


def test_a_checkpoint_without_chain_lengths_asks_for_eval_steps():
    """A buffer restored from a checkpoint written before lengths were counted has no trained chain length:
    fresh evaluation refuses to guess (it would silently run short chains)."""
    model = build_model("pcd", **SMALL, buffer_size=16, num_chains=16, ref_std=1.0)
    state = {k: v for k, v in model.state_dict().items() if k != "buffer.chain_steps"}
    checkpoint = {"state_dict": state, "genbench_iteration": 50}
    model.on_load_checkpoint(checkpoint)
    model.load_state_dict(checkpoint["state_dict"])
    with pytest.raises(GenbenchError, match="predates chain-length tracking.*set model.eval_steps"):
        model.prepare_evaluation(8, seed=0)
    model.synthesize(16)  # training on keeps the lengths unknown rather than wrong
    assert model.buffer.trained_chain_length() is None


def test_evaluation_options_that_would_be_ignored_are_refused():
    with pytest.raises(GenbenchError, match="eval_chains: buffer needs chain_init: persistent"):
        build_model("descriptor", **SMALL, eval_chains="buffer")
    with pytest.raises(GenbenchError, match="coopnets evaluates generator drafts"):
        build_model("coopnets", **SMALL, eval_steps=30)
