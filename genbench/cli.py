"""``genbench fit | bench | reference | config | leaderboard | sweep | table | classifier | migrate | show | list`` — one CLI over the YAML configs in ``configs/``.

Settings compose as configs/presets/<preset>.yaml → models/<model>.yaml → data/<data>.yaml → the model
file's preset block → experiments/<model>-<data>.yaml → ``--set section.key=value`` overrides (repeatable).
"""

from __future__ import annotations

import ast
import os
import sys
from pathlib import Path

import yaml
from jsonargparse import ArgumentParser

from genbench.errors import GenbenchError, Interrupted, Terminated
from genbench.paths import configs_dir, leaderboard_dir
from genbench.runs.launchers import LAUNCHERS, ClusterOptions
from genbench.runs.signals import install_sigterm_handler


#: the cluster options a sweep takes as flags (``ClusterOptions`` holds their defaults)
CLUSTER_FLAGS = {"timeout_min": (int, "each job's time limit in minutes"), "partition": (str, "the partition"),
                 "gpus_per_node": (int, "GPUs per job"), "cpus_per_task": (int, "CPU cores per job"),
                 "parallel": (int, "array tasks running at once (0: no limit)")}


def preset_names() -> list[str]:
    """The presets that exist (``configs/presets/*.yaml``)."""
    return sorted(p.stem for p in (configs_dir() / "presets").glob("*.yaml"))


def config_names(kind: str) -> list[str]:
    """The names of ``configs/<kind>/*.yaml``: a model (``models``), dataset (``data``) or table (``tables``) is one
    registered file plus its YAML, so these are the registered names, read without importing torch (a test holds
    them to the registries)."""
    return sorted(p.stem for p in (configs_dir() / kind).glob("*.yaml"))


def table_names() -> list[str]:
    """The papers' other tables (``configs/tables/*.yaml``, one per registered table)."""
    return config_names("tables")


#: the keys of ``register_feature_metrics``'s names that are metrics (``precision``/``recall`` are scores of ``pr``)
FEATURE_METRIC_KEYS = ("score", "fid", "kid", "pr")


def metric_names() -> list[str]:
    """The metrics the files of ``genbench/metrics/`` register, read from their source without importing torch: the
    literal name of each ``Metric("…", …)`` and the metric names given to each ``register_feature_metrics`` call
    (a test holds them to the registry)."""
    names = []
    for path in sorted((Path(__file__).parent / "metrics").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name) or not node.args:
                continue
            first = node.args[0]
            if node.func.id == "Metric" and isinstance(first, ast.Constant) and isinstance(first.value, str):
                names.append(first.value)
            elif node.func.id == "register_feature_metrics" and isinstance(node.args[1], ast.Dict):
                pairs = zip(node.args[1].keys, node.args[1].values)
                names += [v.value for k, v in pairs if isinstance(k, ast.Constant) and k.value in FEATURE_METRIC_KEYS]
    return sorted(names)


def _run_parser(description: str) -> ArgumentParser:
    parser = ArgumentParser(description=description)
    parser.add_argument("--model", type=str | None, default=None,
                        help="registered model name (see `genbench list`; default dcgan, or the resumed run's)")
    parser.add_argument("--data", type=str | None, default=None,
                        help="registered dataset name (default imagenet-scenes-tiny, or the resumed run's)")
    parser.add_argument("--preset", type=str | None, default=None,
                        help=f"one of {', '.join(preset_names())} (configs/presets; default smoke, or the resumed run's)")
    parser.add_argument("--n", type=int | None, default=None, help="training images per category (default: all)")
    parser.add_argument("--seed", type=int | None, default=None, help="training seed (default 0, or the resumed run's)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a config value, e.g. model.lr=0.001 or trainer.max_iterations=20 (repeatable)")
    parser.add_argument("--devices", type=int | None, default=None, help="devices per node (more than 1: DDP)")
    parser.add_argument("--nodes", type=int | None, default=None, help="number of nodes (torchrun/SLURM launch)")
    parser.add_argument("--wandb", action="store_true", help="log to W&B (offline unless credentials are configured)")
    parser.add_argument("--resume", type=str | None, default=None, help="run folder or .ckpt to resume from")
    parser.add_argument("--run-name", type=str | None, default=None,
                        help="stable run folder name (an existing one is resumed from its last.ckpt)")
    return parser


def _spec_flag(parser: ArgumentParser) -> None:
    parser.add_argument("--spec", type=str | None, default=None, metavar="CONFIG.yaml",
                        help="run a resolved config file as it is (`genbench config` output, a run folder's config.yaml, "
                             "a sweep job's spec); no --model/--data/--preset/--n/--seed/--set/--resume with it")


def _overrides(args) -> list[str]:
    extra = list(args.set)
    if args.devices is not None:
        extra.append(f"trainer.devices={args.devices}")
    if args.nodes is not None:
        extra.append(f"trainer.num_nodes={args.nodes}")
    if args.wandb:
        extra.append("logger.wandb=true")
    return extra


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="genbench", description="Train, sample and score generative models and write their "
                            "leaderboard rows, over the YAML configs in configs/ (genbench <command> --help).")
    sub = parser.add_subcommands(dest="command")

    def add(name: str, command: ArgumentParser) -> None:  # its description is its line in the top-level help
        sub.add_subcommand(name, command, help=command.description)

    fit = _run_parser("Train a model and keep its checkpoint (no scoring).")
    _spec_flag(fit)
    add("fit", fit)
    bench = _run_parser("Train, sample, score and append one row to leaderboards/<data>/<table>.jsonl.")
    bench.add_argument("--leaderboards", type=str | None, default=None, help="leaderboard folder (default: leaderboards/)")
    _spec_flag(bench)
    add("bench", bench)
    board = ArgumentParser(description="Render leaderboards/<data>/<table>.md from the JSONL rows; refresh the task "
                           "tables' notes sections.")
    board.add_argument("--data", type=str | None, default=None, help="only this dataset (default: all)")
    board.add_argument("--leaderboards", type=str | None, default=None, help="leaderboard folder")
    add("leaderboard", board)
    config = _run_parser("Print the effective config (and its hash) of a run without running it.")
    add("config", config)
    listing = ArgumentParser(description="List registered models, datasets, metrics and tables.")
    add("list", listing)
    show = ArgumentParser(description="Print a run's config, metrics and files.")
    show.add_argument("run", help="run folder (runs/<data>/<model>/<id>) or a file in it")
    add("show", show)
    reference = ArgumentParser(description="Score the reference rows (held-out real images, up-sampled 1×1 image "
                                           "averages, clipped Gaussian noise) into a preset's table.")
    reference.add_argument("--data", default="imagenet-scenes-tiny", help="registered dataset name")
    reference.add_argument("--preset", default="smoke", help="the preset whose table (and sample count) to use")
    reference.add_argument("--n", type=list[int] | None, default=None,
                           help="n values, e.g. [100,50] (default: those of the table's model rows, else the preset's)")
    reference.add_argument("--seed", type=int, default=0, help="seed of the real-image subset and of the noise")
    reference.add_argument("--kind", action="append", default=[], metavar="KIND",
                           help="only this reference (repeatable): 'real images', 'image averages' or 'noise'")
    reference.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="config override")
    reference.add_argument("--leaderboards", type=str | None, default=None, help="leaderboard folder")
    add("reference", reference)
    sweep = ArgumentParser(description="Run a grid from configs/sweeps/*.yaml locally (skips finished rows).")
    sweep.add_argument("--config", dest="sweep_config", default="configs/sweeps/is-vs-n.yaml", help="sweep definition")
    sweep.add_argument("--devices", type=int, default=1, help="jobs in parallel, one per device")
    sweep.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override for every job")
    sweep.add_argument("--leaderboards", type=str | None, default=None, help="leaderboard folder")
    sweep.add_argument("--launcher", default="local", choices=list(LAUNCHERS),
                       help="where the jobs run: this machine (default), a SLURM job array through submitit (each job "
                            "requeued on preemption or time-out and resumed from its checkpoint), or submitit's local "
                            "executor")
    for option, (kind, text) in CLUSTER_FLAGS.items():
        sweep.add_argument(f"--{option.replace('_', '-')}", type=kind | None, default=None,
                           help=f"with slurm: {text} (default {getattr(ClusterOptions, option)})")
    add("sweep", sweep)
    table = ArgumentParser(description="Produce one of the papers' other tables: train what is missing, evaluate, "
                                       "append rows, render Markdown + PNG.")
    table.add_argument("--table", required=True, help=" | ".join(table_names()))
    table.add_argument("--data", type=str | None, default=None, help="dataset (default: the table preset's)")
    table.add_argument("--preset", default="cpu", help="the table's preset: cpu (under 30 min on 2 cores), paper, smoke")
    table.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a table setting, e.g. images=50 or corruptions=[M20] (repeatable)")
    table.add_argument("--leaderboards", type=str | None, default=None, help="leaderboard folder")
    add("table", table)
    classifier = ArgumentParser(description="Train the offline classifier of a dataset under a preset's preprocessing "
                                            "and ship it in assets/classifiers (a new feature space: existing rows keep theirs).")
    classifier.add_argument("--data", default="imagenet-scenes-tiny", help="registered dataset name")
    classifier.add_argument("--preset", default="smoke", help="the preset whose preprocessing (image size, …) it is for")
    classifier.add_argument("--name", required=True, help="the shipped name, e.g. imagenet-scenes-tiny-32px")
    classifier.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="config override")
    add("classifier", classifier)
    migration = ArgumentParser(description="Re-score the reference rows of the tables' legacy feature spaces (rows written "
                                           "before feature spaces were recorded) and record each one that reproduces.")
    migration.add_argument("--data", default="imagenet-scenes-tiny", help="the dataset whose tables to migrate")
    migration.add_argument("--leaderboards", type=str | None, default=None, help="leaderboard folder")
    add("migrate", migration)
    return parser


def _format_metrics(metrics: dict) -> str:
    return ", ".join(f"{k} {v['mean']:.4f}" + (f" ± {v['std']:.4f}" if v.get("std") is not None else "")
                     for k, v in metrics.items())


def dispatch(command: str, args) -> None:
    if command == "list":  # from the config files and the metric sources: no torch
        print("models:  ", " ".join(config_names("models")))
        print("datasets:", " ".join(config_names("data")))
        print("metrics: ", " ".join(metric_names()))
        print("tables:  ", " ".join(table_names()))
        return
    # deferred: torch and Lightning load only when a command runs, so --help and a parse error answer at once
    from genbench.bench import render_leaderboards, run_bench, run_fit
    from genbench.bench.migrate import migrate
    from genbench.bench.reference import run_reference, ship_classifier
    from genbench.bench.show import describe_run
    from genbench.bench.sweep import run_sweep
    from genbench.config import config_hash
    from genbench.results import refresh_task_notes
    from genbench.runs.config import run_config
    from genbench.runs.folder import read_config
    from genbench.tasks.tables import run_table

    if command == "config":
        cfg = run_config(args.model or "dcgan", args.data or "imagenet-scenes-tiny", args.preset or "smoke", args.n,
                         0 if args.seed is None else args.seed, _overrides(args)).cfg
        print(yaml.safe_dump(cfg, sort_keys=False).rstrip())
        print(f"# config hash: {config_hash(cfg)}")
    elif command == "leaderboard":
        boards = Path(args.leaderboards) if args.leaderboards else leaderboard_dir()
        for path in [*render_leaderboards(boards, args.data), *refresh_task_notes(boards, args.data)]:
            print(path)
    elif command == "fit":
        run_dir = run_fit(args.model, args.data, args.preset, args.n, args.seed, _overrides(args), resume=args.resume,
                          run_name=args.run_name, config=read_config(Path(args.spec)) if args.spec else None)
        print(f"checkpoint: {run_dir / 'checkpoints' / 'last.ckpt'}")
    elif command == "bench":
        result = run_bench(args.model, args.data, args.preset, args.n, args.seed, _overrides(args),
                           Path(args.leaderboards) if args.leaderboards else None, resume=args.resume,
                           run_name=args.run_name, config=read_config(Path(args.spec)) if args.spec else None)
        if result is None:  # a DDP rank other than 0
            return
        row = result.row
        print(f"{row['model']} on {row['data']} (n={row['n'] or 'all'}, seed {row['seed']}): {_format_metrics(row['metrics'])}")
        print(f"samples: {result.run_dir / 'samples.png'}\nrow:     {result.table}")
    elif command == "reference":
        run_reference(args.data, args.preset, args.n, args.seed, args.set,
                      Path(args.leaderboards) if args.leaderboards else None, kinds=args.kind or None)
    elif command == "table":
        for path in run_table(args.table, args.preset, args.data, args.set,
                              Path(args.leaderboards) if args.leaderboards else None):
            print(path)
    elif command == "migrate":
        boards = Path(args.leaderboards) if args.leaderboards else leaderboard_dir()
        if migrate(boards, args.data):
            render_leaderboards(boards, args.data)
    elif command == "classifier":
        entry = ship_classifier(args.data, args.preset, args.name, args.set)
        print(f"{entry['name']}: sha256 {entry['sha256']}, held-out top-1 {entry['top1']:.1%}, top-5 {entry['top5']:.1%}")
    elif command == "show":
        print(describe_run(args.run))
    elif command == "sweep":
        cluster = ClusterOptions(**{k: getattr(args, k) for k in CLUSTER_FLAGS if getattr(args, k) is not None})
        outcome = run_sweep(Path(args.sweep_config), args.set, args.devices,
                            Path(args.leaderboards) if args.leaderboards else None, launcher=args.launcher,
                            cluster=cluster)
        if outcome["failed"]:
            raise GenbenchError(f"{len(outcome['failed'])} sweep job(s) failed; see the .failures.jsonl beside the table")


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("WANDB_SILENT", "true")
    parser = build_parser()
    args = parser.parse_args(argv)
    install_sigterm_handler()
    try:
        dispatch(args.command, args.get(args.command))
    except Interrupted as exc:
        print(f"genbench: {exc}", file=sys.stderr)
        return exc.exit_code
    except Terminated:
        print("genbench: stopped by SIGTERM before or after training; nothing half-written was kept — rerun the "
              "command (a run folder continues with --resume)", file=sys.stderr)
        return 143
    except GenbenchError as exc:
        print(f"genbench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("genbench: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
