"""``leaderboards/perf.md``, rendered from every device's JSON report, and merging a report into an earlier one."""

from __future__ import annotations

import json
import re
from pathlib import Path

from perf.common import TARGETS


def device_slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def verdict(value: float, target: float) -> str:
    return "meets" if value >= target else f"misses by {100 * (1 - value / target):.1f} %"


def render_report(folder: Path) -> Path:
    """``leaderboards/perf.md`` from every ``leaderboards/perf/*.json`` (one section per device)."""
    lines = ["# Performance: genbench vs plain PyTorch", "",
             "Rendered by `make perf` from the JSON reports in `perf/` (one per device). Training, Langevin and lever "
             "entries marked `\"process\": \"fresh\"` in the JSON each ran in a fresh process (older ones, and evaluation "
             "and sampling, in the one process of `make perf`): **training** = plain-loop seconds / genbench seconds per iteration (through the "
             "Trainer as `bench` runs it; 1.0 = no cost, target ≥ 0.95); **Langevin** = bare forward + input-gradient "
             "seconds / genbench seconds per step (target ≥ 0.9); **evaluation** = genbench images/s / torch-fidelity "
             "images/s on the same extractor (target ≥ 1.0). Levers: `speed.*` switches on the CoopNets iteration, "
             "speed-up over all off, and the shift of the mean energy of chains revised from the same start and noise, "
             "in standard errors (|shift| ≲ 2: same distribution within noise).", ""]
    for path in sorted(folder.glob("*.json")):
        report = json.loads(path.read_text())
        lines += [f"## {report['device']}", "",
                  f"`{path.name}`: torch {report['versions'].get('torch')}, lightning {report['versions'].get('lightning')}, "
                  f"{report['threads']} threads, commit {report.get('git_commit')}, {report['date']}.", ""]
        remeasured = sorted({f"{r['measured']['date']} (commit {r['measured']['git_commit'][:12]})"
                             for section in SECTION_KEYS for r in report.get(section, []) if r.get("measured")})
        if len(remeasured) > 1:
            lines += [f"Measured in {len(remeasured)} sessions (`--merge`): {'; '.join(remeasured)}; each entry of the JSON "
                      "records its own.", ""]
        if report.get("training"):
            lines += ["### Training iteration", "", "| model | shape | host memory | batch | genbench s/it | plain s/it | ratio | target 0.95 | peak memory MiB (genbench / plain) |",
                      "|---|---|---|---|---|---|---|---|---|"]
            for r in report["training"]:
                lines.append(f"| {r['model']} | {r['shape']} | {r.get('host_memory', 'default')} | {r['batch']} | "
                             f"{r['genbench_seconds']:.4f} | {r['plain_seconds']:.4f} | "
                             f"{r['ratio']:.3f} | {verdict(r['ratio'], TARGETS['training'])} | {r['genbench_peak_memory_mib']:.0f} / "
                             f"{r['plain_peak_memory_mib']:.0f} ({r['peak_memory_kind']}) |")
            lines.append("")
        if report.get("langevin"):
            lines += ["### Langevin step (descriptor, CoopNets chains)", "",
                      "| shape | host memory | chains × steps | genbench ms/step | sync-free ms/step | bare ms/step | ratio | ratio sync-free | target 0.9 | plain step ms (same update inline) |",
                      "|---|---|---|---|---|---|---|---|---|---|"]
            for r in report["langevin"]:
                lines.append(f"| {r['shape']} ({r['image_size']}×{r['image_size']}) | {r.get('host_memory', 'default')} | "
                             f"{r['chains']} × {r['steps']} | "
                             f"{r['genbench_seconds_per_step'] * 1e3:.2f} | {r['genbench_sync_free_seconds_per_step'] * 1e3:.2f} | "
                             f"{r['bare_seconds_per_step'] * 1e3:.2f} | {r['ratio']:.3f} | {r['ratio_sync_free']:.3f} | "
                             f"{verdict(max(r['ratio'], r['ratio_sync_free']), TARGETS['langevin'])} | "
                             f"{format(r['plain_seconds_per_step'] * 1e3, '.2f') if 'plain_seconds_per_step' in r else '—'} |")
            lines.append("")
        if report.get("evaluation"):
            lines += ["### Evaluation", "", "| shape | images | genbench img/s | torch-fidelity img/s | ratio | target 1.0 |",
                      "|---|---|---|---|---|---|"]
            for r in report["evaluation"]:
                lines.append(f"| {r['shape']} | {r['images']} | {r['genbench_images_per_second']:.0f} | "
                             f"{r['fidelity_images_per_second']:.0f} | {r['ratio']:.3f} | {verdict(r['ratio'], TARGETS['evaluation'])} |")
            lines.append("")
        if report.get("sampling"):
            lines += ["Evaluation sampling of CoopNets on the device (`bench.sample_batch_size`), images/s by chunk:", ""]
            for r in report["sampling"]:
                lines.append(f"- {r['shape']}: " + ", ".join(f"chunk {c}: {v:.0f}" for c, v in r["images_per_second_by_chunk"].items()))
            lines.append("")
        if report.get("levers"):
            lines += ["### Levers (`speed.*`) on the CoopNets iteration", "",
                      "| shape | levers on | s/it | speed-up | mean E(X̃) ± std | shift (s.e.) | peak memory MiB |", "|---|---|---|---|---|---|---|"]
            for r in report["levers"]:
                lines.append(f"| {r['shape']} | {r['levers']} | {r['seconds_per_iteration']:.4f} | ×{r['speedup']:.2f} | "
                             f"{r['energy']['mean']:.1f} ± {r['energy']['std']:.1f} | {r['energy_shift_in_standard_errors']:+.2f} | "
                             f"{r['peak_memory_mib']:.0f} |")
            lines.append("")
            if not any(r["levers"] == "cuda_graphs" for r in report["levers"]):
                lines += ["`cuda_graphs` needs a CUDA device: not measured here.", ""]
        notes = path.with_suffix(".notes.md")  # written by people: why a target is missed (the JSON carries the numbers)
        if notes.is_file():
            lines += ["### Notes", "", notes.read_text().strip(), ""]
    out = folder.parent / "perf.md"
    out.write_text("\n".join(lines))
    return out


SECTION_KEYS = {"training": ("model", "shape", "host_memory"), "langevin": ("shape", "host_memory"), "evaluation": ("shape",),
                "sampling": ("shape",), "levers": ("shape", "levers")}


def entry_key(row: dict, keys: tuple[str, ...]) -> tuple:
    """What a report entry measures (entries written before host memory was a variant measured the default)."""
    return tuple(row.get(k, "default") if k == "host_memory" else row[k] for k in keys)


def merged(earlier: dict | None, report: dict) -> dict:
    """``earlier`` (same device) with the measurements of ``report`` put in place of the ones they repeat (new ones
    appended); each entry records the commit and date it was measured at."""
    if earlier is None:
        return report
    out = dict(report)
    for section, keys in SECTION_KEYS.items():
        stamp = {"git_commit": report["git_commit"], "date": report["date"]}
        fresh = {entry_key(r, keys): {**r, "measured": stamp} for r in report[section]}
        rows = []
        for r in earlier.get(section, []):
            key = entry_key(r, keys)
            rows.append(fresh.pop(key) if key in fresh else
                        {**r, "measured": r.get("measured") or {"git_commit": earlier["git_commit"], "date": earlier["date"]}})
        out[section] = rows + list(fresh.values())
    return out
