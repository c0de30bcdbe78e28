"""A randomized fault campaign (``make chaos``): short ``genbench fit`` / ``bench`` runs on the 8×8 digits, each hit
at a random point by one fault, and after each the invariants a cluster user relies on checked.

Faults (one per run, drawn by the seed):

- ``sigkill`` / ``sigterm``: the signal at a uniform time within the run's expected length, then a resume of the
  folder; a ``fit`` must end with exactly the weights of an uninterrupted run (``trainer.deterministic``);
- ``short-write``: the run under RLIMIT_FSIZE (a file-size limit between 4 KB and 4 MB), so a checkpoint, a sample
  sheet or a row is cut short;
- ``full-folder``: the runs, leaderboards or cache folder one that takes no new file: ``/dev/full`` (every write
  fails with "no space left"), ``/dev/null``, a regular file, or (when not run as root, whom permissions do not stop)
  a read-only folder;
- ``fuzzed-config``: ``--set key=value`` with a real key and a fuzzed value (wrong types, non-finite or negative
  numbers, broken YAML, alias bombs, unknown keys and sections);
- ``fuzzed-data``: a row file with fuzzed lines rendered (bad JSON, wrong types, binary bytes), or a checkpoint
  with flipped or cut bytes resumed.

Invariants after every run (each violation is reported once, by the run that caused it): no traceback (a user's
mistake and every fault give at most one ``genbench:`` line); every JSONL table genbench wrote parses whole and
renders; every model row records its run's command and commit, and no run has two rows; every checkpoint loads; no
temp file is left behind by a run that could clean up (all but SIGKILL, which leaves the hidden temp file of a write
it interrupted: never read, since files are renamed into place); a run refused before training leaves no run folder;
a killed and resumed ``fit`` ends with the uninterrupted run's weights.

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


TIMED_OUT = -1000  # the exit code recorded for a run the campaign had to kill


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
        if root.exists() and any(root.iterdir()):
            raise SystemExit(f"chaos: {root} is not empty; give a new or empty --root")
        self.runs, self.boards, self.cache = root / "runs", root / "boards", root / "cache"
        for folder in (self.runs, self.boards, self.cache):
            folder.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "GENBENCH_RUNS": str(self.runs), "GENBENCH_LEADERBOARDS": str(self.boards),
                    "GENBENCH_CACHE": str(self.cache), "PYTHONUNBUFFERED": "1"}
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
        try:
            out, err = proc.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            return TIMED_OUT, out + err + "\nchaos: the run took over 600 s and was killed"
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
        which = self.rng.choice(["GENBENCH_RUNS", "GENBENCH_LEADERBOARDS", "GENBENCH_CACHE"])
        kinds = ["/dev/full", "/dev/null", "a file"] + ([] if os.geteuid() == 0 else ["a read-only folder"])
        kind = self.rng.choice(kinds)
        target = Path(kind) if kind.startswith("/dev/") else self.root / f"full-{o.index}"
        if kind == "a file":
            target.write_text("not a folder\n")
        elif kind == "a read-only folder":
            target.mkdir()
            target.chmod(0o555)
        o.detail = f"bench with {which} = {kind}"
        name = f"chaos-{o.index}"
        try:
            code, text = self.genbench(["bench", *BENCH, "--run-name", name], env={**self.env, which: str(target)})
        finally:
            if kind == "a read-only folder":
                target.chmod(0o755)
        o.exit_codes.append(code)
        if code == 0:
            o.violations.append(f"{which} = {kind} was accepted")
        self.one_line_or_success(o, code, text)
        if kind == "a read-only folder" and any(target.iterdir()):
            o.violations.append(f"something was written into the read-only {which} folder")
        if kind == "a file" and target.read_text() != "not a folder\n":
            o.violations.append(f"the file given as {which} was changed")
        if "train: starting" in text:
            o.violations.append(f"training started although {which} = {kind} takes no file")
        if "train: starting" not in text and self.run_dir(name).exists():
            o.violations.append("the run refused before training left its run folder")

    def fuzzed_config(self, o: Outcome) -> None:
        sets = [f"{self.rng.choice(KEYS)}={self.rng.choice(VALUES)}" for _ in range(self.rng.choice([1, 1, 2]))]
        o.detail = "fit --set " + " --set ".join(sets)
        name = f"chaos-{o.index}"
        args = ["fit", *FIT, "--set", "trainer.max_iterations=5", *sum((["--set", s] for s in sets), []),
                "--run-name", name]
        code, text = self.genbench(args)
        o.exit_codes.append(code)
        self.one_line_or_success(o, code, text)
        if code != 0 and "train: starting" not in text and any(self.runs.glob(f"*/*/{name}")):
            o.violations.append("the run refused before training left its run folder")

    def fuzzed_data(self, o: Outcome) -> None:
        if self.rng.random() < 0.5 or not list(self.runs.glob("*/*/chaos-*/checkpoints/last.ckpt")):
            self.fuzzed_rows(o)
        else:
            self.fuzzed_checkpoint(o)

    def fuzzed_rows(self, o: Outcome) -> None:
        table = self.boards / "digits" / "fuzz.jsonl"
        table.parent.mkdir(parents=True, exist_ok=True)
        good = {"kind": "model", "model": "dcgan", "data": "digits", "n": 50, "seed": 0, "metrics": {},
                "command": "genbench bench (fuzz)", "git_commit": "fuzz"}
        lines = [json.dumps(good).encode(), self.rng.choice([
            b'{"model": "dcgan", "metrics": "x"}', b'{"model": "dcgan", "n": "fifty", "metrics": {}}', b"[1, 2, 3]",
            b'{"model": ', b"\x00\x01\xff\xfe garbage", b'{"model": "dcgan", "metrics": {"fid": {"mean": "high"}}}',
            b'"just a string"', b'{"model": null, "metrics": null}'])]
        o.detail = f"render a table with the line {lines[1][:40]!r}"
        table.write_bytes(b"\n".join(lines) + b"\n")
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
        if len(data) < 2:
            o.detail = f"{checkpoint} is empty: nothing to fuzz"
            o.violations.append(f"an empty checkpoint {checkpoint}")
            return
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

    def check_everything(self, o: Outcome, before: set[str]) -> None:
        """The invariants' violations this run added (those found before it were its predecessors')."""
        found = invariant_violations(self.runs, self.boards, temp_files=o.fault != "sigkill")
        o.violations += [v for v in found if v not in before]

    # -- the campaign ----------------------------------------------------------------------------------------------
    def run(self, count: int) -> list[Outcome]:
        self.fit_reference()
        self.log(f"chaos: reference fit {self.fit_seconds:.1f} s")
        outcomes = []
        faults = [FAULTS[i % len(FAULTS)] for i in range(count)]
        self.rng.shuffle(faults)
        for index, fault in enumerate(faults):
            o = Outcome(index, fault, "")
            before = set(invariant_violations(self.runs, self.boards))  # a SIGKILL's leftovers are its, reported once
            start = time.time()
            {"sigkill": lambda: self.signal_run(o, signal.SIGKILL), "sigterm": lambda: self.signal_run(o, signal.SIGTERM),
             "short-write": lambda: self.short_write(o), "full-folder": lambda: self.full_folder(o),
             "fuzzed-config": lambda: self.fuzzed_config(o), "fuzzed-data": lambda: self.fuzzed_data(o)}[fault]()
            self.check_everything(o, before)
            o.seconds = round(time.time() - start, 1)
            outcomes.append(o)
            self.log(f"chaos {index + 1}/{count} {fault}: {o.detail} → exit {o.exit_codes}"
                     + (f"; VIOLATIONS: {o.violations}" if o.violations else ""))
        return outcomes


def invariant_violations(runs: Path, boards: Path, temp_files: bool = True) -> list[str]:
    """What is wrong in a campaign's folders: a JSONL line that does not parse whole, a model row without its command
    or commit, two rows of one run, a table that does not render, a checkpoint that does not load, and (``temp_files``)
    a temp file left behind."""
    found = []
    for table in sorted(boards.rglob("*.jsonl")):
        rows, bad = read_rows(table)
        found += [f"{table.name}: {problem}" for problem in bad]
        models = [r for r in rows if r.get("kind", "model") == "model"]
        found += [f"{table.name}: a model row without its command or commit" for r in models
                  if not (r.get("command") and r.get("git_commit"))]
        runs_seen = Counter(r["run_dir"] for r in models if r.get("run_dir"))
        found += [f"{table.name}: {count} rows of the run {Path(run).name}" for run, count in runs_seen.items() if count > 1]
    try:
        render_leaderboards(boards)
    except Exception as exc:  # the campaign reports any failure to render as a violation, whatever its type
        found.append(f"rendering failed: {type(exc).__name__}: {exc}")
    for checkpoint in sorted(runs.rglob("last.ckpt")):
        try:
            torch.load(checkpoint, map_location="cpu", weights_only=True)
        except Exception as exc:  # any failure to load is the violation being looked for
            found.append(f"the checkpoint {checkpoint.relative_to(runs)} does not load ({type(exc).__name__})")
    for root in (runs, boards) if temp_files else ():
        for path in root.rglob("*"):
            temp = path.suffix == ".tmp" or (path.name.startswith(".") and not path.name.endswith(".lock"))
            if path.is_file() and temp:
                found.append(f"a temp file left behind: {path.relative_to(root)}")
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


BEGIN, END = "<!-- chaos:begin -->", "<!-- chaos:end -->"


def summary_lines(result: dict, args) -> list[str]:
    """The campaign's last result as Markdown (what ``make chaos`` writes into docs/reliability.md)."""
    faults = ", ".join(f"{kind} {count}" for kind, count in result["faults"].items())
    lines = [f"Last campaign: `python benchmarks/chaos.py --runs {args.runs} --seed {args.seed}` — {result['runs']} runs "
             f"({faults}) in {result['seconds'] / 60:.0f} min on {os.cpu_count()} CPU cores, torch {result['torch']}, "
             f"Python {result['python']}: **{result['violations']} violations**.", ""]
    for o in result["runs_with_violations"]:
        lines.append(f"- run {o['index']} ({o['fault']}: {o['detail']}): {'; '.join(o['violations'])}")
    return lines


def write_block(path: Path, lines: list[str]) -> None:
    text = path.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"chaos: {path} has no {BEGIN} … {END} block to write the result into")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(head + BEGIN + "\n" + "\n".join(lines) + "\n" + END + tail)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100, help="runs in the campaign (one fault each)")
    parser.add_argument("--seed", type=int, default=0, help="draws the faults, their timing and the fuzzed values")
    parser.add_argument("--root", type=Path, default=None, help="the campaign's folder (default: a temporary one)")
    parser.add_argument("--report", type=Path, default=None, help="write the summary as JSON here")
    parser.add_argument("--markdown", type=Path, default=None,
                        help=f"replace the block between {BEGIN} and {END} of this Markdown file with the summary")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    root = args.root or Path(tempfile.mkdtemp(prefix="genbench-chaos-"))
    start = time.time()
    outcomes = Campaign(root, args.seed).run(args.runs)
    result = summary(outcomes, args.seed, time.time() - start)
    if args.report:
        args.report.write_text(json.dumps(result, indent=1) + "\n")
    if args.markdown:
        write_block(args.markdown, summary_lines(result, args))
    print(f"chaos: {result['runs']} runs, faults {result['faults']}, violations: {result['violations']} "
          f"({result['seconds']:.0f} s; folder {root})")
    return 1 if result["violations"] else 0


if __name__ == "__main__":
    sys.exit(main())
