import json
import multiprocessing as mp

import pytest

from genbench.bench.leaderboard import render_leaderboards, render_table
from genbench.errors import GenbenchError
from genbench.results import append_row, read_rows
from genbench.results.store import append_line


def _row(model, n, seed, value, std=0.1):
    return {"model": model, "n": n, "seed": seed, "preset": "smoke", "device": "cpu",
            "metrics": {"classifier_score": {"mean": value, "std": std}, "pairwise_ssim": {"mean": 0.2, "std": 0.01}}}


def test_render_round_trip(tmp_path):
    table = tmp_path / "digits" / "smoke.jsonl"
    append_row(table, _row("coopnets", 50, 0, 2.66, 0.13))
    append_row(table, _row("coopnets", 100, 0, 3.04, 0.13))
    append_row(table, _row("dcgan", 50, 0, 2.26, 0.16))
    rows, bad = read_rows(table)
    assert bad == [] and [r["model"] for r in rows] == ["coopnets", "coopnets", "dcgan"]
    out, *plots = render_leaderboards(tmp_path)
    text = out.read_text()
    assert sorted(p.name for p in plots) == ["smoke-classifier_score.png", "smoke-pairwise_ssim.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in plots)
    assert "| model | n=50 | n=100 |" in text
    assert "| coopnets | 2.660 ± 0.130 | 3.040 ± 0.130 |" in text
    assert "| dcgan | 2.260 ± 0.160 | — |" in text


def test_labels_and_directions_come_from_the_metric_registry(monkeypatch):
    """Relabelling a score where it is registered relabels the tables: no second table of names."""
    from dataclasses import replace

    from genbench.metrics.contract import METRICS, ScoreSpec

    text = render_table([_row("abp", 50, 0, 2.0)], "t")
    assert "## Offline classifier score (inception-style) (higher is better)" in text and "Average pairwise SSIM" in text
    entries = dict(METRICS._entries)
    entries["pairwise_ssim"] = replace(entries["pairwise_ssim"], scores=(ScoreSpec("pairwise_ssim", "Diversity X", "higher"),))
    monkeypatch.setattr(METRICS, "_entries", entries)
    assert "## Diversity X (higher is better)" in render_table([_row("abp", 50, 0, 2.0)], "t")


def test_reference_rows_come_first_and_are_marked():
    rows = [_row("abp", 50, 0, 2.0), {**_row("noise", 50, 0, 1.0), "kind": "reference"},
            {**_row("real images", 50, 0, 4.0), "kind": "reference"}, _row("coopnets", 50, 0, 2.5)]
    text = render_table(rows, "t")
    section = text[text.index("## Offline classifier score"):].splitlines()
    labels = [line.split("|")[1].strip() for line in section if line.startswith("| ")][1:]
    assert labels[:4] == ["*real images* (reference)", "*noise* (reference)", "abp", "coopnets"]
    assert "the ceiling" in text and "the floor" in text


def test_several_seeds_report_spread_over_seeds():
    text = render_table([_row("abp", 50, 0, 2.0), _row("abp", 50, 1, 3.0)], "t")
    assert "2.500 ± 0.707 (2 seeds)" in text


def test_latest_row_per_seed_wins():
    text = render_table([_row("abp", 50, 0, 2.0), _row("abp", 50, 0, 2.5)], "t")
    assert "2.500 ± 0.100" in text and "2.000" not in text


def test_unreadable_line_is_skipped_not_lost(tmp_path):
    table = tmp_path / "d" / "smoke.jsonl"
    append_row(table, _row("dcgan", 50, 0, 2.0))
    with open(table, "a") as fh:
        fh.write('{"model": "half')  # a crashed writer without the lock
        fh.write("\n")
    append_row(table, _row("dcgan", 100, 0, 2.5))
    rows, bad = read_rows(table)
    assert len(rows) == 2 and bad == ["line 2 is not valid JSON"]
    out = render_leaderboards(tmp_path)[0]
    assert "1 line(s) of smoke.jsonl were skipped: line 2 is not valid JSON." in out.read_text()


def test_a_row_whose_fields_have_the_wrong_types_is_skipped_with_its_line_and_the_rest_rendered(tmp_path):
    table = tmp_path / "d" / "smoke.jsonl"
    append_row(table, _row("dcgan", 50, 0, 2.0))
    for bad_row in ({**_row("vae", 50, 0, 1.0), "metrics": "x"}, {**_row("vae", 50, 0, 1.0), "n": "fifty"},
                    {**_row("vae", 50, 0, 1.0), "metrics": {"classifier_score": {"mean": "high"}}}):
        with pytest.raises(GenbenchError, match="refusing to write a row .* that its tables could not read"):
            append_row(table, bad_row)  # genbench's writers cannot write it: a hand edit or another program can
        append_line(table, bad_row)
    append_row(table, _row("wgan", 50, 0, 1.5))
    rows, bad = read_rows(table)
    assert [r["model"] for r in rows] == ["dcgan", "wgan"]
    assert bad == ["line 2: its metrics are str, not a mapping of scores", "line 3: its n is 'fifty', not an integer or null",
                   "line 4: its score 'classifier_score' is {'mean': 'high'}, not a mapping with a numeric mean"]
    text = render_leaderboards(tmp_path)[0].read_text()
    assert "| wgan | 1.500 ± 0.100 |" in text and "3 line(s) of smoke.jsonl were skipped: line 2: its metrics" in text


def _writer(args):
    path, worker = args
    for i in range(40):
        append_row(path, {**_row(f"m{worker}", i, 0, float(i)), "padding": "x" * 24_000})  # > PIPE_BUF, > a page


def test_concurrent_writers_never_lose_or_interleave_rows(tmp_path):
    table = tmp_path / "d" / "smoke.jsonl"
    with mp.get_context("spawn").Pool(4) as pool:
        pool.map(_writer, [(table, w) for w in range(4)])
    lines = table.read_text().splitlines()
    assert len(lines) == 160
    rows = [json.loads(line) for line in lines]
    assert sorted((r["model"], r["n"]) for r in rows) == sorted((f"m{w}", i) for w in range(4) for i in range(40))


def test_published_numbers_are_shown_beside_ours_for_imagenet_scenes():
    row = {"model": "coopnets", "n": 50, "seed": 0, "preset": "paper", "device": "gpu",
           "metrics": {"inception_score": {"mean": 2.5, "std": 0.1}}}
    text = render_table([row], "t", "imagenet-scenes")
    assert "| coopnets | 2.500 ± 0.100 |" in text
    assert "Published (Xie et al." in text and "| coopnets | 2.66±.13 | 3.04±.13 |" in text
    assert "Published" not in render_table([row], "t", "imagenet-scenes-tiny")


def test_gallery_has_one_labelled_block_per_model_at_the_largest_n(tmp_path):
    import numpy as np
    import torch
    from PIL import Image

    from genbench.results import render_gallery, write_sample_sheet

    table = tmp_path / "scenes" / "cpu.jsonl"
    rows = []
    colours = {"dcgan": -0.5, "coopnets": 0.5, "real images": 1.0, "noise": -1.0}
    for model, level in colours.items():
        for n in (50, 500):
            samples = torch.full((40, 3, 8, 8), level if n == 500 else 0.0)  # the n=500 sheets have the model's colour
            kind = "reference" if model in ("real images", "noise") else "model"
            row = {"model": model, "kind": kind, "n": n, "seed": 0, "metrics": {}}
            rows.append({**row, "samples_png": write_sample_sheet(table, row, samples)})
    rows.append({"model": "vae", "kind": "model", "n": 500, "seed": 0, "metrics": {}})  # no sheet: no block
    for row in rows:
        append_row(table, row)
    out, labels = render_gallery(table, rows)
    assert out == tmp_path / "scenes" / "cpu-gallery.png"
    assert labels == ["*real images* (reference)", "coopnets", "dcgan"]  # references first; noise is left out
    image = np.asarray(Image.open(out).convert("L")).astype(float)
    # each block pastes its model's n=500 sheet: the grey level of the sheet's interior appears in the mosaic
    for level in (1.0, 0.5, -0.5):
        grey = round((level + 1) / 2 * 255)
        assert (np.abs(image - grey) < 1).sum() > 36 * 8 * 8, level
    assert (image == 128).sum() < 36 * 8 * 8 / 4  # the n=50 sheets (grey 128) are not used (a few text pixels may be)
    (tmp_path / "scenes" / "cpu.notes.md").write_text("PCD samples look like noise: see the evaluation chains.\n")
    markdown = render_leaderboards(tmp_path, "scenes")
    text = (tmp_path / "scenes" / "cpu.md").read_text()
    assert text.rstrip().endswith("## Notes\n\nPCD samples look like noise: see the evaluation chains.")
    assert "[cpu-gallery.png](cpu-gallery.png)" in text and "![samples](cpu-gallery.png)" in text
    assert out in markdown


def test_levers_a_table_sets_for_every_row_do_not_label_its_rows():
    from genbench.results import latest_rows, row_label

    protocol = {"model": "dcgan", "n": 50, "seed": 0, "config": {"speed": {"channels_last": True, "bf16": False}},
                "table_levers": ["channels_last"]}
    extra = {**protocol, "config": {"speed": {"channels_last": True, "bf16": True}}}
    plain = {"model": "dcgan", "n": 50, "seed": 0, "config": {"speed": {"channels_last": True}}}
    assert row_label(protocol) == "dcgan" and row_label(extra) == "dcgan [speed: bf16]"
    assert row_label(plain) == "dcgan [speed: channels_last]"  # a row of a table without that protocol
    assert len(latest_rows([protocol, extra])) == 2


def test_the_learning_diagnostics_of_energy_based_rows_stand_in_the_table():
    def point(iteration, fid, gap, grad):
        return {"iteration": iteration, "train_seconds": iteration, "scores": {"classifier_fid": fid},
                "diagnostics": {"energy_gap": gap, "langevin_grad_norm": grad}}

    ebm = {**_row("multigrid", 500, 0, 2.0), "curve": {"points": [point(150, 53.1, 51234.5, 215.4),
                                                                   point(300, 40.0, 10.0, 1.0),
                                                                   point(1780, 20.25, -3.5, 0.0042)]}}
    gan = {**_row("dcgan", 500, 0, 2.5), "curve": {"points": [{"iteration": 10, "scores": {"classifier_fid": 9.0}}]}}
    text = render_table([ebm, gan], "t")
    section = text[text.index("## Learning diagnostics of the energy-based rows"):]
    assert "| multigrid | 500 | 150 → 1780 | 53.1 → 20.2 | 5.12e+04 → -3.5 | 215 → 0.0042 |" in section
    assert "| dcgan |" not in section.split("## Training budget")[0]


def test_every_committed_row_fits_the_row_schema_and_older_shapes_are_mapped_on_reading(tmp_path):
    """Each committed JSONL reads whole (no line skipped); a bench row from before rows named their kind reads as a
    model row; a task row's name is its method."""
    from genbench.paths import PROJECT_ROOT
    from genbench.results import Row

    tables = [p for p in (PROJECT_ROOT / "leaderboards").rglob("*.jsonl") if not p.name.endswith(".failures.jsonl")]
    assert tables
    for jsonl in tables:
        rows, bad = read_rows(jsonl)
        assert rows and not bad, (jsonl, bad)
    old = {k: v for k, v in _row("dcgan", 50, 0, 2.0).items() if k != "kind"}
    assert Row.parse(old).kind == "model" and not Row.parse(old).is_reference
    assert Row.parse({"method": "raw pixels", "kind": "reference", "test_error": 70.0}).name == "raw pixels"
    with pytest.raises(GenbenchError, match="naming neither a model nor a method"):
        Row.parse({"test_error": 70.0})


def test_make_leaderboard_brings_a_task_tables_notes_up_to_date_and_leaves_the_rest_of_its_markdown(tmp_path):
    """A task table is rendered by `genbench table` (its figure needs the trained models); edited notes must reach
    its Markdown without them. Everything above the notes stays byte for byte; deleted notes drop the section."""
    from dataclasses import dataclass

    from genbench.cli import main
    from genbench.results import refresh_task_notes
    from genbench.tasks.report import write_markdown

    @dataclass
    class Settings:
        data: str = "faces"

    rows = [{"git_commit": "abc", "device": "cpu", "versions": {"torch": "2.x"}}]
    body = ["# Recovery", "", "| method | error |", "|---|---|", "| descriptor | 0.1 |", ""]
    path = tmp_path / "faces" / "tasks" / "recovery-cpu.jsonl"
    path.parent.mkdir(parents=True)
    in_progress = path.parent / ".recovery-cpu.tmp123.md"  # a write under way elsewhere: not a table
    in_progress.write_text("half a table")
    notes = path.with_suffix(".notes.md")
    notes.write_text("First reading of the rows.\n")
    markdown = write_markdown(path, body, Settings(), rows)
    head, section = markdown.read_text().split("\n## Notes\n")
    assert section == "\nFirst reading of the rows.\n"
    assert head.endswith(".\n") and not head.endswith("\n\n")  # the provenance line, then the notes' blank line

    assert refresh_task_notes(tmp_path, "faces") == []  # in step with its notes: nothing rewritten

    second = "A second reading,\n\n## Notes\n\nwith a heading of the same name inside.\n"
    notes.write_text(second)
    assert refresh_task_notes(tmp_path, "faces") == [markdown]
    refreshed = markdown.read_text()
    assert refreshed == head + "\n## Notes\n\n" + second
    assert refresh_task_notes(tmp_path, "faces") == []  # the heading inside the notes is not taken for the section's
    assert write_markdown(path, body, Settings(), rows).read_text() == refreshed  # what `genbench table` would write

    notes.unlink()
    assert main(["leaderboard", "--data", "faces", "--leaderboards", str(tmp_path)]) == 0  # what `make leaderboard` runs
    assert markdown.read_text() == head
    assert in_progress.read_text() == "half a table"
