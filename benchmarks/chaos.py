"""A randomized fault campaign (``make chaos``): short ``genbench fit`` / ``bench`` runs on the 8×8 digits, each hit
at a random point by one fault, and after each the invariants a cluster user relies on checked.

Faults (one per run, drawn by the seed):

- ``sigkill`` / ``sigterm``: the signal at a uniform time within the run's expected length, then a resume of the
  folder; a ``fit`` must end with exactly the weights of an uninterrupted run (``trainer.deterministic``);
- ``short-write``: the run under RLIMIT_FSIZE (a file-size limit between 4 KB and 4 MB), so a checkpoint, a sample
  sheet or a row is cut short;
- ``full-folder``: the runs or leaderboards folder read-only (a folder that takes no new file);
- ``fuzzed-config``: ``--set key=value`` with a real key and a fuzzed value (wrong types, non-finite or negative
  numbers, broken YAML, alias bombs, unknown keys and sections);
- ``fuzzed-data``: a row file with fuzzed lines rendered (bad JSON, wrong types, binary bytes), or a checkpoint
  with flipped or cut bytes resumed.

Invariants after every run: no traceback (a user's mistake and every fault give at most one ``genbench:`` line);
every JSONL table genbench wrote parses whole and renders; every model row records its run's command and commit;
no partial file (temp files of checkpoints, rows or renders) is left; a refused run leaves no run folder; a killed
and resumed ``fit`` ends with the uninterrupted run's weights.

    python benchmarks/chaos.py --runs 100 --seed 0 [--root DIR] [--report docs/chaos.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from genbench.bench.leaderboard import render_leaderboards
from genbench.results.store import read_rows

FAULTS = ["sigkill", "sigterm", "short-write", "full-folder", "fuzzed-config", "fuzzed-data"]
#: a small, deterministic DCGAN on the digits
SMALL = ["--model", "dcgan", "--data", "digits", "--preset", "smoke", "--set", "trainer.deterministic=true",
         "--set", "model.g_width=8", "--set", "model.d_width=8", "--set", "data.batch_size=32"]
#: fit: 120 iterations, a checkpoint every 10
FIT = [*SMALL, "--set", "trainer.max_iterations=120", "--set", "trainer.checkpoint_every=10"]
#: bench: 40 iterations, a few samples scored by SSIM only (no classifier), so a run takes seconds
BENCH = [*SMALL, "--set", "trainer.max_iterations=40", "--set", "trainer.checkpoint_every=10", "--n", "50",
         "--set", "bench.metrics=[pairwise_ssim]", "--set", "bench.num_samples=40",
         "--set", "bench.metric_options.ssim_samples=10"]
KEYS = ["model.lr", "model.g_width", "model.latent_dim", "trainer.max_iterations", "trainer.max_time",
        "trainer.checkpoint_every", "data.batch_size", "data.image_size", "bench.num_samples", "bench.metrics",
        "bench.table", "model", "bench", "trainer", "model.nope", "nope.key", "seed", "model.beta1"]
VALUES = ["banana", ".nan", "-.inf", "1e308", "-1", "0", "0.5", "[]", "{}", "null", "[", "{a: [", "'", "x" * 300,
          "&a [*a, *a]", "{minutes: -5}", "[pairwise_ssim, nope]", "true", "1e-320", "☃", "5", "- - -", "2**31",
          "../../etc", "!!python/object:os.system ls"]


@dataclass
class Outcome:
    """One run of the campaign: its fault, what ran, exit codes, seconds, and the invariants it broke."""

    index: int
    fault: str
    detail: str
    exit_codes: list[int] = field(default_factory=list)
    seconds: float = 0.0
    violations: list[str] = field(default_factory=list)


class Campaign:
    def __init__(self, root: Path, seed: int, log=print) -> None:
        self.root, self.rng, self.log = root, random.Random(seed), log
        self.runs, self.boards = root / "runs", root / "boards"
        self.runs.mkdir(parents=True, exist_ok=True)
        self.boards.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "GENBENCH_RUNS": str(self.runs), "GENBENCH_LEADERBOARDS": str(self.boards),
                    "PYTHONUNBUFFERED": "1"}
        self.env.pop("GENBENCH_RUN_DIR", None)
        self.reference: dict[str, torch.Tensor] | None = None
        self.fit_seconds = 10.0

    # -- running genbench ----------------------------------------------------------------------------------------
    def genbench(self, args: list[str], env: dict | None = None, preexec=None, kill_after: float | None = None,
                 sig: int = signal.SIGTERM) -> tuple[int, str]:
        """``python -m genbench.cli args``; with ``kill_after``, ``sig`` is sent after that many seconds."""
        proc = subprocess.Popen([sys.executable, "-m", "genbench.cli", *args], env=env or self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=preexec,
                                cwd=self.root)
        if kill_after is not None:
            try:
                proc.wait(timeout=kill_after)
            except subprocess.TimeoutExpired:
                proc.send_signal(sig)
        out, err = proc.communicate(timeout=600)
        return proc.returncode, out + err

    def fit_reference(self) -> None:
        """The uninterrupted run every killed-and-resumed ``fit`` must end at."""
        start = time.time()
        code, text = self.genbench(["fit", *FIT, "--run-name", "reference"])
        if code != 0:
            raise SystemExit(f"chaos: the reference fit failed (exit {code}): {text[-800:]}")
        self.fit_seconds = time.time() - start
        self.reference = final_weights(self.run_dir("reference"))

    def run_dir(self, name: str) -> Path:
        return self.runs / "digits" / "dcgan" / name

    # -- the faults --------------------------------------------------------------------------------------------------
    def signal_run(self, o: Outcome, sig: int) -> None:
        command = self.rng.choice(["fit", "fit", "bench"])
        name = f"chaos-{o.index}"
        delay = self.rng.uniform(0.2, 1.2) * self.fit_seconds
        o.detail = f"{command}, {signal.Signals(sig).name} after {delay:.1f} s"
        args = [command, *(FIT if command == "fit" else BENCH), "--run-name", name]
        code, text = self.genbench(args, kill_after=delay, sig=sig)
        o.exit_codes.append(code)
        expected = {0, 143, -15} if sig == signal.SIGTERM else {0, -9}
        if code not in expected:
            o.violations.append(f"exit {code} after {signal.Signals(sig).name} (expected one of {sorted(expected)})")
        self.no_traceback(o, text)
        if code == 0:
            return
        folder = self.run_dir(name)
        resume = ["fit", "--resume", str(folder)] if command == "fit" else ["bench", "--resume", str(folder)]
        if not (folder / "checkpoints" / "last.ckpt").is_file():
            resume = args  # stopped before its first checkpoint: the same command again
        code, text = self.genbench(resume)
        o.exit_codes.append(code)
        if code != 0:
            o.violations.append(f"the resume exited {code}: {last_line(text)}")
        self.no_traceback(o, text)
        if command == "fit" and code == 0:
            weights = final_weights(folder)
            if self.reference is not None and not same_weights(weights, self.reference):
                o.violations.append("the killed and resumed fit ended with other weights than the uninterrupted one")

    def short_write(self, o: Outcome) -> None:
        limit = int(4096 * 2 ** self.rng.uniform(0, 10))
        command = self.rng.choice(["fit", "bench"])
        o.detail = f"{command} under RLIMIT_FSIZE {limit} bytes"

        def limited() -> None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

        code, text = self.genbench([command, *(FIT if command == "fit" else BENCH), "--run-name", f"chaos-{o.index}"],
                                   preexec=limited)
        o.exit_codes.append(code)
        self.one_line_or_success(o, code, text)

    def full_folder(self, o: Outcome) -> None:
        which = self.rng.choice(["runs", "leaderboards"])
        folder = self.root / f"read-only-{o.index}"
        folder.mkdir()
        folder.chmod(0o555)
        env = {**self.env, "GENBENCH_RUNS" if which == "runs" else "GENBENCH_LEADERBOARDS": str(folder)}
        o.detail = f"bench with a read-only {which} folder"
        try:
            code, text = self.genbench(["bench", *BENCH, "--run-name", f"chaos-{o.index}"], env=env)
        finally:
            folder.chmod(0o755)
        o.exit_codes.append(code)
        if code == 0:
            o.violations.append(f"a read-only {which} folder was accepted")
        self.one_line_or_success(o, code, text)
        if any(folder.iterdir()):
            o.violations.append(f"something was written into the read-only {which} folder")
        if self.run_dir(f"chaos-{o.index}").exists() and which == "leaderboards":
            o.violations.append("the refused run left its run folder")

    def fuzzed_config(self, o: Outcome) -> None:
        sets = [f"{self.rng.choice(KEYS)}={self.rng.choice(VALUES)}" for _ in range(self.rng.choice([1, 1, 2]))]
        o.detail = "fit --set " + " --set ".join(sets)
        name = f"chaos-{o.index}"
        args = ["fit", *FIT, "--set", "trainer.max_iterations=5", *sum((["--set", s] for s in sets), []),
                "--run-name", name]
        code, text = self.genbench(args)
        o.exit_codes.append(code)
        self.one_line_or_success(o, code, text)
        if code != 0 and any(self.runs.glob(f"*/*/{name}")):
            o.violations.append("the refused run left its run folder")

    def fuzzed_data(self, o: Outcome) -> None:
        if self.rng.random() < 0.5 or not list(self.runs.glob("*/*/chaos-*/checkpoints/last.ckpt")):
            self.fuzzed_rows(o)
        else:
            self.fuzzed_checkpoint(o)

    def fuzzed_rows(self, o: Outcome) -> None:
        table = self.boards / "digits" / "fuzz.jsonl"
        table.parent.mkdir(parents=True, exist_ok=True)
        good = {"kind": "model", "model": "dcgan", "data": "digits", "n": 50, "seed": 0, "metrics": {}}
        lines = [json.dumps(good), self.rng.choice([
            '{"model": "dcgan", "metrics": "x"}', '{"model": "dcgan", "n": "fifty", "metrics": {}}', "[1, 2, 3]",
            '{"model": ', "\x00\x01\xff garbage", '{"model": "dcgan", "metrics": {"fid": {"mean": "high"}}}',
            '"just a string"', '{"model": null, "metrics": null}'])]
        o.detail = f"render a table with the line {lines[1][:40]!r}"
        table.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogateescape")
        try:
            code, text = self.genbench(["leaderboard", "--data", "digits"])
            o.exit_codes.append(code)
            if code != 0:
                o.violations.append(f"a table with a bad line did not render (exit {code}): {last_line(text)}")
            if "line 2" not in text:
                o.violations.append("the bad line was not named by its number")
            self.no_traceback(o, text)
        finally:
            for path in table.parent.glob("fuzz*"):
                path.unlink()

    def fuzzed_checkpoint(self, o: Outcome) -> None:
        checkpoint = self.rng.choice(sorted(self.runs.glob("*/*/chaos-*/checkpoints/last.ckpt")))
        data = bytearray(checkpoint.read_bytes())
        if self.rng.random() < 0.5:
            cut = self.rng.randrange(len(data))
            data = data[:cut]
            o.detail = f"resume {checkpoint.parent.parent.name} from a checkpoint cut to {cut} bytes"
        else:
            for _ in range(16):
                data[self.rng.randrange(len(data))] ^= 0xFF
            o.detail = f"resume {checkpoint.parent.parent.name} from a checkpoint with 16 flipped bytes"
        checkpoint.write_bytes(bytes(data))
        code, text = self.genbench(["fit", "--resume", str(checkpoint.parent.parent), "--set",
                                    "trainer.max_iterations=130"])
        o.exit_codes.append(code)
        self.one_line_or_success(o, code, text)
        shutil.rmtree(checkpoint.parent.parent)  # a damaged run is no one's to resume

    # -- invariants --------------------------------------------------------------------------------------------------
    def no_traceback(self, o: Outcome, text: str) -> None:
        if "Traceback (most recent call last)" in text:
            o.violations.append(f"a traceback: {last_line(text)}")

    def one_line_or_success(self, o: Outcome, code: int, text: str) -> None:
        self.no_traceback(o, text)
        if code != 0:
            lines = [line for line in text.splitlines() if line.startswith("genbench:")]
            if len(lines) != 1:
                o.violations.append(f"exit {code} with {len(lines)} 'genbench:' lines: {last_line(text)}")

    def check_everything(self, o: Outcome) -> None:
        o.violations += invariant_violations(self.runs, self.boards)

    # -- the campaign ----------------------------------------------------------------------------------------------
    def run(self, count: int) -> list[Outcome]:
        self.fit_reference()
        self.log(f"chaos: reference fit {self.fit_seconds:.1f} s")
        outcomes = []
        faults = [FAULTS[i % len(FAULTS)] for i in range(count)]
        self.rng.shuffle(faults)
        for index, fault in enumerate(faults):
            o = Outcome(index, fault, "")
            start = time.time()
            {"sigkill": lambda: self.signal_run(o, signal.SIGKILL), "sigterm": lambda: self.signal_run(o, signal.SIGTERM),
             "short-write": lambda: self.short_write(o), "full-folder": lambda: self.full_folder(o),
             "fuzzed-config": lambda: self.fuzzed_config(o), "fuzzed-data": lambda: self.fuzzed_data(o)}[fault]()
            self.check_everything(o)
            o.seconds = round(time.time() - start, 1)
            outcomes.append(o)
            self.log(f"chaos {index + 1}/{count} {fault}: {o.detail} → exit {o.exit_codes}"
                     + (f"; VIOLATIONS: {o.violations}" if o.violations else ""))
        return outcomes


def invariant_violations(runs: Path, boards: Path) -> list[str]:
    """What is wrong in a campaign's folders: a JSONL line that does not parse whole, a model row without its command
    or commit, a table that does not render, a partial file left behind."""
    found = []
    for table in sorted(boards.rglob("*.jsonl")):
        rows, bad = read_rows(table)
        found += [f"{table.name}: {problem}" for problem in bad]
        found += [f"{table.name}: a model row without its command or commit" for r in rows
                  if r.get("kind", "model") == "model" and not (r.get("command") and r.get("git_commit"))]
    try:
        render_leaderboards(boards)
    except Exception as exc:  # the campaign reports any failure to render as a violation, whatever its type
        found.append(f"rendering failed: {type(exc).__name__}: {exc}")
    for root in (runs, boards):
        for path in root.rglob("*"):
            partial = path.suffix == ".tmp" or (path.name.startswith(".") and path.name != ".lock"
                                                  and not path.name.endswith(".lock"))
            if path.is_file() and partial:
                found.append(f"a partial file {path.relative_to(root)}")
    return found


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def summary(outcomes: list[Outcome], seed: int, seconds: float) -> dict:
    return {"runs": len(outcomes), "seed": seed, "seconds": round(seconds, 1),
            "faults": dict(sorted(Counter(o.fault for o in outcomes).items())),
            "violations": sum(len(o.violations) for o in outcomes),
            "runs_with_violations": [asdict(o) for o in outcomes if o.violations],
            "torch": torch.__version__, "python": sys.version.split()[0]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100, help="runs in the campaign (one fault each)")
    parser.add_argument("--seed", type=int, default=0, help="draws the faults, their timing and the fuzzed values")
    parser.add_argument("--root", type=Path, default=None, help="the campaign's folder (default: a temporary one)")
    parser.add_argument("--report", type=Path, default=None, help="write the summary as JSON here")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    root = args.root or Path(tempfile.mkdtemp(prefix="genbench-chaos-"))
    start = time.time()
    outcomes = Campaign(root, args.seed).run(args.runs)
    result = summary(outcomes, args.seed, time.time() - start)
    if args.report:
        args.report.write_text(json.dumps(result, indent=1) + "\n")
    print(f"chaos: {result['runs']} runs, faults {result['faults']}, violations: {result['violations']} "
          f"({result['seconds']:.0f} s; folder {root})")
    return 1 if result["violations"] else 0


if __name__ == "__main__":
    sys.exit(main())
