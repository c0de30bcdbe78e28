"""The prior table (multi-grid paper): the learned energies fill only the missing pixels, the descriptor's prior
against its closed form, the doodle fixed by its seed, the Context Encoder learning to fill, and the table end to end
on the 8×8 digits."""

from __future__ import annotations

import json

import pytest
import torch

from genbench.data.corruption import CORRUPTION_KINDS, doodle_masks, parse_corruption
from genbench.errors import GenbenchError
from genbench.models import build_model
from genbench.models.completion import CompletionSettings, complete_with_model
from genbench.tasks.context_encoder import ContextEncoderSettings, train_context_encoder
from genbench.tasks.tables import run_table


@pytest.mark.parametrize("name, options", [  # steps large enough that untrained nets move the holes measurably
    ("multigrid", {"nets": [{"widths": [8, 8, 8]}, {"widths": [8, 8, 8, 8]}],
                   "sample_langevin": {"n_steps": 5, "step_size": 30.0}}),
    ("single-grid-cd", {"nets": [{"widths": [8, 8, 8, 8]}], "sample_langevin": {"n_steps": 5, "step_size": 30.0}}),
    ("pcd", {"net": {"widths": [8, 8, 8], "n_out": 1, "init_std": 0.1}, "ref_std": 1.0,
             "langevin": {"n_steps": 5, "step_size": 0.1}}),
])
def test_a_learned_prior_moves_only_the_missing_pixels(name, options):
    torch.manual_seed(0)
    model = build_model(name, image_size=16, channels=3, **options)
    images = torch.rand(6, 3, 16, 16) * 2 - 1
    holes = doodle_masks(6, (16, 16), 3, seed=4)
    torch.manual_seed(1)
    completed = complete_with_model(model, images, holes, CompletionSettings())
    observed = (~holes).expand_as(images)
    assert torch.equal(completed[observed], images[observed])
    hole = holes.expand_as(images)
    start = (images * ~hole).sum(dim=(2, 3), keepdim=True) / (~holes).sum(dim=(2, 3), keepdim=True)
    assert not torch.allclose(completed[hole], start.expand_as(images)[hole])  # the chains moved the holes
    # the observed pixels condition the fill beyond their mean colour: the same holes in images whose observed pixels
    # are mirrored (mean colour unchanged) are filled otherwise, with the same noise
    mirrored = torch.where(observed, images.flip(-1), images)
    mirrored = torch.where(observed & observed.flip(-1), mirrored, images)
    torch.manual_seed(1)
    other = complete_with_model(model, mirrored, holes, CompletionSettings())
    assert (other[hole] - completed[hole]).abs().max() > 1e-4


def test_the_descriptor_prior_under_a_flat_f_decays_the_holes_to_the_reference_mean():
    """f ≡ const: X ← X − (δ²/2)·X/s² without noise, so each missing pixel is m·(1 − δ²/(2s²))^T, m the observed
    pixels' mean colour of its image and channel."""
    model = build_model("descriptor", image_size=8, channels=3, ref_std=0.5, net={"widths": [4, 4, 4], "n_out": 1},
                        langevin={"n_steps": 7, "step_size": 0.2, "noise": False})
    for p in model.energy_net.parameters():
        torch.nn.init.zeros_(p)
    images = torch.rand(4, 3, 8, 8) * 2 - 1
    holes = parse_corruption("C4").apply(images, 0)[1]
    completed = complete_with_model(model, images, holes, CompletionSettings())
    observed = (~holes).to(images.dtype)
    mean = (images * observed).sum(dim=(2, 3), keepdim=True) / observed.sum(dim=(2, 3), keepdim=True)
    expected = torch.where(holes.expand_as(images), (mean * (1 - 0.2 ** 2 / (2 * 0.5 ** 2)) ** 7).expand_as(images),
                           images)
    assert torch.allclose(completed, expected, atol=1e-6)


def test_a_doodle_is_fixed_by_its_seed_and_made_of_strokes():
    first, again, other = (doodle_masks(5, (32, 32), 4, seed) for seed in (3, 3, 4))
    assert torch.equal(first, again) and not torch.equal(first, other)
    fraction = first.float().mean().item()
    assert 0.03 < fraction < 0.5
    corrupted, mask = parse_corruption("D4").apply(torch.ones(5, 3, 32, 32), 3)
    assert torch.equal(mask, first) and (corrupted[mask.expand_as(corrupted)] == 0).all()
    assert {"occlusion", "central", "salt-and-pepper", "doodle"} <= set(CORRUPTION_KINDS.names())
    with pytest.raises(GenbenchError, match="at least one stroke"):
        parse_corruption("D0")


def test_the_context_encoder_learns_to_fill_a_central_square():
    torch.manual_seed(0)
    rows = torch.linspace(-1, 1, 8).view(1, 1, 8, 1)
    images = (rows * torch.rand(64, 3, 1, 1)).expand(64, 3, 8, 8).contiguous()  # vertical ramps of random colour
    corruption = parse_corruption("C4")
    _, holes = corruption.apply(images, 0)
    hole = holes.expand_as(images)

    def error(net) -> float:
        with torch.no_grad():
            out = net(images.masked_fill(hole, 0.0))
        return (out - images)[hole].abs().mean().item()

    untrained = train_context_encoder(images, corruption, ContextEncoderSettings(width=8, bottleneck=16, iterations=1,
                                                                                 batch_size=32), lambda *_: None)
    trained = train_context_encoder(images, corruption, ContextEncoderSettings(width=8, bottleneck=16, iterations=300,
                                                                               batch_size=32, lr=2e-3), lambda *_: None)
    assert error(trained) < 0.5 * error(untrained)


def test_prior_table_end_to_end_and_rerun_recomputes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("GENBENCH_RUNS", str(tmp_path / "runs"))
    boards = tmp_path / "boards"
    run_table("prior", "smoke", leaderboards=boards, runs=tmp_path / "runs", log=lambda *_: None)
    jsonl = boards / "digits" / "tasks" / "prior-smoke.jsonl"
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert {(r["corruption"], r["method"]) for r in rows} == {
        (c, m) for c in ("C4", "D2", "P.5") for m in ("pcd", "single-grid-cd", "context-encoder", "harmonic", "masked-input")}
    ce = next(r for r in rows if r["method"] == "context-encoder")
    assert ce["method_kind"] == "trained baseline" and ce["kind"] == "central" and ce["trained_baseline"]["settings"]["iterations"] == 40
    markdown = (boards / "digits" / "tasks" / "prior-smoke.md").read_text()
    assert "C4 = mask, D2 = doodle, P.5 = pepper" in markdown and "| error mask | .056 |" in markdown
    logs: list[str] = []
    run_table("prior", "smoke", leaderboards=boards, runs=tmp_path / "runs", log=logs.append)
    assert len(jsonl.read_text().splitlines()) == len(rows)
    assert not any("error" in line or "training" in line for line in logs)
    assert any("context encoder (C4): reusing" in line for line in logs)
    logs = []  # other Context Encoder settings: its rows, and only its, are computed again
    run_table("prior", "smoke", overrides=["context_encoder={iterations: 41}"], leaderboards=boards,
              runs=tmp_path / "runs", log=logs.append)
    fresh = [json.loads(line) for line in jsonl.read_text().splitlines()][len(rows):]
    assert sorted(r["corruption"] for r in fresh) == ["C4", "D2", "P.5"]
    assert {r["method"] for r in fresh} == {"context-encoder"} and fresh[0]["trained_with"]["settings"]["iterations"] == 41
