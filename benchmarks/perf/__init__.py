"""Speed benchmarks (``make perf``): genbench measured against plain PyTorch (training, Langevin and lever
measurements each in a fresh process).

For each shape (``cpu``: the cpu preset at 32×32; ``paper``: the paper preset at 64×64, CoopNets with 144 chains),
models built from the same effective config as the CLI:

- training: seconds per iteration through the Lightning Trainer exactly as ``bench`` runs it (its callbacks, CSV
  logging, data loader) vs a hand-written plain-PyTorch loop of the same nets, optimisers and data loader
  (``benchmarks/plain_loops.py``); ratio = plain / genbench (1.0: no cost; target ≥ 0.95);
- one Langevin step of the descriptor (CoopNets' energy net, its chains) vs the bare forward + input gradient of
  the energy net; ratio = bare / genbench (target ≥ 0.9);
- both with the default C allocator and with freed host memory reused (``speed.reuse_host_memory``'s settings in
  both loops: no page faults per allocation);
- evaluation: images/s of genbench's scoring (IS + FID + KID in the offline classifier's features, real features
  cached) vs torch-fidelity's ``calculate_metrics`` on the same extractor and images (target ≥ 1.0); and
  evaluation sampling images/s with small vs large chunks on the device;
- the ``speed`` levers (``genbench/models/speed.py``) on and off, one at a time and all together, on the CoopNets
  iteration, with the energy statistics of chains revised from the same start and noise (levers must not change
  the samples' distribution);
- peak memory (CUDA: allocator peak per measurement; CPU: the peak RSS of the measurement's process).

Writes ``leaderboards/perf/<device>.json`` and re-renders ``leaderboards/perf.md`` from every JSON there.

    python benchmarks/perf [--shapes cpu paper] [--iterations 20] [--host-memory default reused] [--skip …] [--merge]
    python benchmarks/perf --preset cpu [--budget 150]   # the cpu preset's per-model iteration counts
"""
