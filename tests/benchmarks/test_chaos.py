"""``make chaos``: the fault campaign's invariant check finds each kind of damage it claims to (so a campaign with 0
violations means something), and a small campaign, one run per fault, ends with none."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("chaos", ROOT / "benchmarks" / "chaos.py")
chaos = importlib.util.module_from_spec(spec)
sys.modules["chaos"] = chaos
spec.loader.exec_module(chaos)

ROW = {"kind": "model", "model": "dcgan", "data": "digits", "n": 50, "seed": 0, "metrics": {},
       "command": "genbench bench …", "git_commit": "abc"}


def test_the_invariant_check_finds_half_rows_unrecorded_rows_duplicate_rows_broken_checkpoints_and_temp_files(tmp_path):
    runs, boards = tmp_path / "runs", tmp_path / "boards"
    table = boards / "digits" / "smoke.jsonl"
    table.parent.mkdir(parents=True)
    (runs / "digits" / "dcgan" / "a" / "checkpoints").mkdir(parents=True)
    (runs / "digits" / "dcgan" / "a" / ".lock").touch()
    table.write_text(json.dumps(ROW) + "\n")
    assert chaos.invariant_violations(runs, boards) == []
    table.write_text(json.dumps(ROW) + "\n" + json.dumps(ROW)[:30] + "\n")
    assert chaos.invariant_violations(runs, boards) == ["smoke.jsonl: line 2 is not valid JSON"]
    table.write_text(json.dumps({**ROW, "command": None}) + "\n")
    assert chaos.invariant_violations(runs, boards) == ["smoke.jsonl: a model row without its command or commit"]
    table.write_text(json.dumps({**ROW, "run_dir": "runs/x/r1"}) + "\n" + json.dumps({**ROW, "run_dir": "runs/x/r1"}) + "\n")
    assert chaos.invariant_violations(runs, boards) == ["smoke.jsonl: 2 rows of the run r1"]
    table.write_text(json.dumps(ROW) + "\n")
    temp = runs / "digits" / "dcgan" / "a" / "checkpoints" / ".last.x1y2.ckpt"
    temp.write_bytes(b"half")
    assert chaos.invariant_violations(runs, boards) == ["a temp file left behind: digits/dcgan/a/checkpoints/.last.x1y2.ckpt"]
    assert chaos.invariant_violations(runs, boards, temp_files=False) == []  # what a SIGKILL may leave
    temp.rename(temp.with_name("last.ckpt"))
    assert chaos.invariant_violations(runs, boards) == [
        "the checkpoint digits/dcgan/a/checkpoints/last.ckpt does not load (KeyError)"]


@pytest.mark.fault
def test_a_small_campaign_with_every_fault_ends_without_violations(tmp_path):
    report = tmp_path / "chaos.json"
    code = chaos.main(["--runs", "6", "--seed", "3", "--root", str(tmp_path / "campaign"), "--report", str(report)])
    result = json.loads(report.read_text())
    assert result["faults"] == {fault: 1 for fault in chaos.FAULTS}
    assert code == 0 and result["violations"] == 0, result["runs_with_violations"]
