"""``genbench show <run>``: a run's settings, numbers and files at a glance."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from genbench.errors import GenbenchError


def describe_run(path: str | Path) -> str:
    run = Path(path)
    if run.is_file():
        run = run.parent
    config_file = run / "config.yaml"
    if not config_file.is_file():
        raise GenbenchError(f"{run} is not a genbench run folder (no config.yaml)")
    cfg = yaml.safe_load(config_file.read_text())
    info = cfg.get("run", {})
    lines = [f"run       {run}",
             f"model     {info.get('model')}   data {info.get('data')}   n {info.get('n')}   seed {info.get('seed')}   "
             f"preset {info.get('preset')}"]
    for section in ("model", "data", "trainer", "bench", "logger", "speed"):
        if cfg.get(section):
            lines.append(f"{section:<9} " + json.dumps(cfg[section], sort_keys=True, default=str))
    result = run / "result.json"
    if result.is_file():
        row = json.loads(result.read_text())
        for name, value in row.get("metrics", {}).items():
            std = f" ± {value['std']:.4f}" if value.get("std") is not None else ""
            lines.append(f"metric    {name:<20} {value['mean']:.4f}{std}")
        lines.append(f"timing    train {row.get('train_seconds')} s, {row.get('images_per_second')} images/s, "
                     f"{row.get('iterations')} iterations, device {row.get('device')}, world size {row.get('world_size')}")
        if row.get("classifier"):
            c = row["classifier"]
            lines.append(f"classifier top-1 {c['top1']:.3f}, top-5 {c['top5']:.3f} ({c['key']})")
        lines.append(f"commit    {row.get('git_commit')}   config hash {row.get('config_hash')}")
    else:
        lines.append("metric    (no result.json: training only, unfinished, or failed)")
    for label, rel in (("checkpoint", "checkpoints/last.ckpt"), ("samples", "samples.png"), ("grids", "grids"),
                       ("logs", "logs/metrics.csv"), ("wandb", "wandb")):
        target = run / rel
        if target.exists():
            lines.append(f"{label:<9} {target}")
    return "\n".join(lines)
