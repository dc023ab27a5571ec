"""Measure nn.Linear forward throughput on a CUDA GPU and record it for chapter 5.

    python tools/gpu_bench.py                       # on a machine with an NVIDIA GPU
    python tools/gpu_bench.py --device cpu --quick  # the same logic, tiny sizes (tests do this)

For a sweep of batch sizes and square layer sizes it times `layer(x)` with
torch.utils.benchmark (which synchronises the device around each measurement) in float32,
TF32 and bfloat16, converts each time to TFLOP/s with 2 * N * in * out floating-point operations
per call, and relates it to the GPU's published dense peak for that number format. It also
records the device, the torch and CUDA versions, the date, and the real text of the
device-mismatch error, then writes one JSON file (by default book/data/gpu-linear.json).
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

import torch
from torch import nn
from torch.utils import benchmark

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "book" / "data" / "gpu-linear.json"

# Published dense (not sparse) peak throughput in TFLOP/s: float32 on the CUDA cores, TF32 and
# bfloat16 on the tensor cores. H100 SXM from NVIDIA's Hopper architecture whitepaper (the H200
# is the same chip at the same clocks, with more memory); A100 SXM from its data sheet, which
# gives each figure without and with sparsity. Keyed by a substring of
# torch.cuda.get_device_name(). A GPU not listed gets no peak line, rather than a guess.
PEAK_TFLOPS = {
    "H200": {"float32": 66.9, "tf32": 494.7, "bfloat16": 989.4},
    "H100 80GB HBM3": {"float32": 66.9, "tf32": 494.7, "bfloat16": 989.4},
    "A100": {"float32": 19.5, "tf32": 156.0, "bfloat16": 312.0},
}
FORMATS = ("float32", "tf32", "bfloat16")


def flops(batch: int, in_features: int, out_features: int) -> int:
    """Floating-point operations of one forward call: a multiply and an add per weight and row."""
    return 2 * batch * in_features * out_features


def peak_for(device_name: str) -> dict | None:
    for key, peaks in PEAK_TFLOPS.items():
        if key in device_name:
            return peaks
    return None


def mismatch_message(device: torch.device) -> str:
    """The real error text for a layer on `device` fed a CPU tensor (meta when on the CPU)."""
    target = device if device.type != "cpu" else torch.device("meta")
    layer = nn.Linear(4, 2, device=target)
    try:
        layer(torch.randn(10, 4))
    except RuntimeError as error:
        return str(error)
    raise AssertionError("a device mismatch did not raise")


def measure(device, fmt, batch, features, min_run_time):
    dtype = torch.bfloat16 if fmt == "bfloat16" else torch.float32
    if device.type == "cuda":
        # "high" lets float32 matrix products use TF32 tensor cores; "highest", the default,
        # does not. Chapter 5 shows this setting.
        torch.set_float32_matmul_precision("high" if fmt == "tf32" else "highest")
    layer = nn.Linear(features, features, device=device, dtype=dtype)
    x = torch.randn(batch, features, device=device, dtype=dtype)
    with torch.no_grad():
        timer = benchmark.Timer(stmt="layer(x)", globals={"layer": layer, "x": x})
        seconds = timer.blocked_autorange(min_run_time=min_run_time).median
    return seconds


def run(device: torch.device, batches, sizes, min_run_time) -> dict:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    peaks = peak_for(name)
    rows = []
    for fmt in FORMATS:
        if fmt == "tf32" and device.type != "cuda":
            continue  # TF32 is a feature of NVIDIA tensor cores
        for features in sizes:
            for batch in batches:
                seconds = measure(device, fmt, batch, features, min_run_time)
                tflops = flops(batch, features, features) / seconds / 1e12
                peak = peaks[fmt] if peaks else None
                rows.append({
                    "format": fmt, "batch": batch, "in_features": features,
                    "out_features": features, "seconds": seconds, "tflops": tflops,
                    "peak_tflops": peak, "fraction_of_peak": tflops / peak if peak else None,
                })
                print(f"{fmt:>9} N={batch:>6} features={features:>6}: {tflops:8.2f} TFLOP/s",
                      flush=True)
    return {
        "device": name,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "date": datetime.date.today().isoformat(),
        "device_mismatch_error": mismatch_message(device),
        "results": rows,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to test the logic")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("error: no CUDA GPU is visible to torch; use --device cpu --quick to test the logic",
              file=sys.stderr)
        return 1
    if args.quick:
        batches, sizes, min_run_time = (1, 16), (32,), 0.01
    else:
        batches, sizes, min_run_time = (1, 16, 256, 4096, 16384), (1024, 4096, 8192), 0.2
    record = run(device, batches, sizes, min_run_time)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
