"""Measure nn.Linear forward throughput on a CUDA GPU and record it for chapter 5.

    python tools/gpu_bench.py                       # on a machine with an NVIDIA GPU
    python tools/gpu_bench.py --device cpu --quick --out /tmp/gpu-linear.json
                                                    # the same logic, tiny sizes (tests do this)

For a sweep of batch sizes and square layer sizes it times `layer(x)` with
torch.utils.benchmark (which synchronises the device around each measurement) in float32,
TF32 and bfloat16, converts each time to TFLOP/s with 2 * N * in * out floating-point operations
per call, and relates it to the GPU's published dense peak for that number format. It also
records what decides those numbers (the device, its compute capability and L2 cache size, its
clocks and power limit as nvidia-smi reports them, the TF32 setting as read back, the torch and
CUDA versions), the date, and the real text of the device-mismatch error; on a GPU also, for
each row, the GPU's own time per call (calls replayed from a CUDA graph) and the kernels it runs,
and nvidia-smi's clock and power sampled while the sweep runs. It then writes one JSON
file (by default book/data/gpu-linear.json). It needs nothing but PyTorch (nvidia-smi is used
when present).
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils import benchmark

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "book" / "data" / "gpu-linear.json"

# Published dense (not sparse) peak throughput in TFLOP/s: float32 on the CUDA cores, TF32 and
# bfloat16 on the tensor cores. Keyed by the exact name that torch.cuda.get_device_name() and
# nvidia-smi report: the same chip sells in versions with other clocks and power limits (an H100
# PCIe is not an H100 SXM), and a name merely containing "A100" or "H200" may be another GPU.
# A GPU not listed gets no peak (None), rather than a wrong one.
#
# NVIDIA's data sheets print the tensor-core figures with structured sparsity and say that
# without it they are half as high; the dense figures below are those halves. The Hopper
# whitepaper prints dense figures directly, to one decimal.
_HOPPER_WHITEPAPER = ("NVIDIA H100 Tensor Core GPU Architecture whitepaper, H100 SXM5: "
                      "FP32 66.9, TF32 Tensor 494.7, BF16 Tensor 989.4 TFLOPS (dense)")
_H100_PCIE = ("NVIDIA H100 Tensor Core GPU data sheet, H100 PCIe: FP32 51, TF32 Tensor Core 756*, "
              "BFLOAT16 Tensor Core 1,513* TFLOPS (*with sparsity; dense is half)")
_H100_NVL = ("NVIDIA H100 Tensor Core GPU data sheet, H100 NVL: FP32 60, TF32 Tensor Core 835*, "
             "BFLOAT16 Tensor Core 1,671* TFLOPS (*with sparsity; dense is half)")
_H200_SXM = ("NVIDIA H200 Tensor Core GPU data sheet, H200 SXM: FP32 67, TF32 Tensor Core 989*, "
             "BFLOAT16 Tensor Core 1,979* TFLOPS (*with sparsity; dense is half)")
_H200_NVL = ("NVIDIA H200 Tensor Core GPU data sheet, H200 NVL: FP32 60, TF32 Tensor Core 835*, "
             "BFLOAT16 Tensor Core 1,671* TFLOPS (*with sparsity; dense is half)")
_A100 = ("NVIDIA A100 Tensor Core GPU data sheet (the same figures for the 40GB and 80GB, PCIe "
         "and SXM versions): FP32 19.5, TF32 Tensor Core 156 (312*), BFLOAT16 Tensor Core 312 "
         "(624*) TFLOPS (*with sparsity)")
PEAK_TFLOPS = {
    "NVIDIA H100 80GB HBM3": {"float32": 66.9, "tf32": 494.7, "bfloat16": 989.4,
                              "source": _HOPPER_WHITEPAPER},
    "NVIDIA H100 PCIe": {"float32": 51.0, "tf32": 378.0, "bfloat16": 756.5, "source": _H100_PCIE},
    "NVIDIA H100 NVL": {"float32": 60.0, "tf32": 417.5, "bfloat16": 835.5, "source": _H100_NVL},
    "NVIDIA H200": {"float32": 67.0, "tf32": 494.5, "bfloat16": 989.5, "source": _H200_SXM},
    "NVIDIA H200 NVL": {"float32": 60.0, "tf32": 417.5, "bfloat16": 835.5, "source": _H200_NVL},
    "NVIDIA A100-SXM4-80GB": {"float32": 19.5, "tf32": 156.0, "bfloat16": 312.0, "source": _A100},
    "NVIDIA A100-SXM4-40GB": {"float32": 19.5, "tf32": 156.0, "bfloat16": 312.0, "source": _A100},
    "NVIDIA A100 80GB PCIe": {"float32": 19.5, "tf32": 156.0, "bfloat16": 312.0, "source": _A100},
    "NVIDIA A100-PCIE-40GB": {"float32": 19.5, "tf32": 156.0, "bfloat16": 312.0, "source": _A100},
}
FORMATS = ("float32", "tf32", "bfloat16")
# TF32 and bfloat16 tensor-core matrix products arrived with compute capability 8.0 (Ampere).
TENSOR_CORE_FORMATS_FROM = (8, 0)
# TF32 must beat float32 by at least this factor at the largest size, or the setting did not
# apply: the published TF32 peaks above are about 7 to 8 times the float32 ones.
TF32_MIN_SPEEDUP = 1.5
# What nvidia-smi reports about the driver, and the clocks and power that bound the measured rates.
SMI_FIELDS = ("name", "pci.bus_id", "uuid", "driver_version", "pstate", "clocks.sm",
              "clocks.max.sm", "clocks.mem", "clocks.max.mem", "power.draw", "power.limit",
              "power.default_limit", "power.max_limit", "temperature.gpu",
              "clocks_event_reasons.active")
# Sampled every SAMPLE_MS milliseconds while the sweep runs: the clocks and power the layers ran at.
SAMPLED_FIELDS = ("clocks.sm", "power.draw")
SAMPLE_MS = 200
# A CUDA graph holds this many calls, so that one replay takes at least about this long.
GRAPH_CALLS_MAX, GRAPH_REPLAY_SECONDS = 20, 0.02


def flops(batch: int, in_features: int, out_features: int) -> int:
    """Floating-point operations of one forward call: a multiply and an add per weight and row."""
    return 2 * batch * in_features * out_features


def peak_for(device_name: str) -> dict | None:
    """The dense peaks (and their source) of exactly this device, or None if it is not listed."""
    return PEAK_TFLOPS.get(device_name)


def smi_id(device: torch.device) -> str:
    """nvidia-smi's --id for the CUDA device torch measures: its PCI bus ID, domain:bus:device.0.

    Not an index: nvidia-smi numbers all GPUs in PCI bus order and ignores CUDA_VISIBLE_DEVICES,
    while CUDA numbers only the GPUs that variable leaves visible, fastest first by default, so
    index 0 in one can be another GPU in the other. Not the UUID either: on a MIG slice CUDA
    reports the slice's own. The bus ID names the physical GPU, whose clocks and power these are.
    """
    props = torch.cuda.get_device_properties(device)
    return f"{props.pci_domain_id:08X}:{props.pci_bus_id:02X}:{props.pci_device_id:02X}.0"


def nvidia_smi_state(gpu_id: str) -> dict | None:
    """SMI_FIELDS for the GPU nvidia-smi knows as `gpu_id` (see smi_id), as it prints them (with
    units), or None without nvidia-smi. A field it cannot give is None."""
    if shutil.which("nvidia-smi") is None:
        return None

    def query(fields):
        try:
            result = subprocess.run(
                ["nvidia-smi", f"--id={gpu_id}", "--query-gpu=" + ",".join(fields),
                 "--format=csv,noheader"], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.SubprocessError):
            return None
        values = [value.strip() for value in result.stdout.strip().split(",")]
        if result.returncode != 0 or len(values) != len(fields):
            return None
        return dict(zip(fields, values, strict=True))

    # All at once; if this driver rejects a field, one at a time, so the others still come.
    state = query(SMI_FIELDS)
    if state is None:
        state = {field: (query([field]) or {}).get(field) for field in SMI_FIELDS}
    return state


def start_sampling(gpu_id: str, path: Path) -> subprocess.Popen | None:
    """nvidia-smi printing SAMPLED_FIELDS every SAMPLE_MS ms into `path`, or None without it."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        with path.open("w", encoding="utf-8") as sink:
            return subprocess.Popen(
                ["nvidia-smi", f"--id={gpu_id}", "--query-gpu=" + ",".join(SAMPLED_FIELDS),
                 "--format=csv,noheader,nounits", f"--loop-ms={SAMPLE_MS}"],
                stdout=sink, stderr=subprocess.DEVNULL)
    except OSError:
        return None


def stop_sampling(process: subprocess.Popen | None, path: Path) -> dict | None:
    """Stop the sampler; summarise what it printed (see summarise_samples)."""
    if process is None:
        return None
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
    return summarise_samples(path.read_text(encoding="utf-8", errors="replace"))


def summarise_samples(text: str) -> dict:
    """Lines of "SM clock MHz, power W" -> how many, and the range of each (lines that are not
    two numbers, such as "[N/A]", are counted as unreadable)."""
    clocks, powers, unreadable = [], [], 0
    for line in text.splitlines():
        parts = [part.strip() for part in line.split(",")]
        try:
            clock, power = (float(part) for part in parts)
        except ValueError:
            unreadable += 1
            continue
        clocks.append(clock)
        powers.append(power)
    summary = {"every_ms": SAMPLE_MS, "samples": len(clocks), "unreadable": unreadable}
    if clocks:
        summary.update({"sm_clock_mhz_min": min(clocks), "sm_clock_mhz_max": max(clocks),
                        "power_w_min": min(powers), "power_w_max": max(powers)})
    return summary


def graph_seconds(layer: nn.Module, x: torch.Tensor, call_seconds: float) -> dict:
    """The GPU's own time per `layer(x)`, without Python's and the launches' cost: calls captured
    in a CUDA graph, the graph replayed between two CUDA events. Where the timed call is bound by
    the host (small layers, small batches), this is far below it. Never raises: a failure is
    recorded instead."""
    device = x.device
    calls = max(1, min(GRAPH_CALLS_MAX, int(GRAPH_REPLAY_SECONDS / max(call_seconds, 1e-9))))
    try:
        with torch.no_grad(), torch.cuda.device(device):
            side = torch.cuda.Stream(device)          # warm-up off the default stream, as
            side.wait_stream(torch.cuda.current_stream(device))   # capture requires
            with torch.cuda.stream(side):
                for _ in range(3):
                    layer(x)
            torch.cuda.current_stream(device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                for _ in range(calls):
                    layer(x)
            graph.replay()
            torch.cuda.synchronize(device)
            start, end = (torch.cuda.Event(enable_timing=True) for _ in range(2))
            replays = 5
            start.record()
            for _ in range(replays):
                graph.replay()
            end.record()
            end.synchronize()
            seconds = start.elapsed_time(end) / 1e3 / (replays * calls)
            del graph
        return {"device_seconds": seconds, "graph_calls": calls}
    except Exception as error:  # recorded, not fatal: the timed call is the main figure
        return {"device_seconds": None, "graph_error": f"{type(error).__name__}: {error}"}


def row_kernels(device: torch.device, row: dict) -> list[str] | str:
    """The CUDA kernels one row's `layer(x)` runs, under the matmul setting it was timed with."""
    dtype = torch.bfloat16 if row["format"] == "bfloat16" else torch.float32
    torch.set_float32_matmul_precision("high" if row["format"] == "tf32" else "highest")
    try:
        layer = nn.Linear(row["in_features"], row["out_features"], device=device, dtype=dtype)
        x = torch.randn(row["batch"], row["in_features"], device=device, dtype=dtype)
        with torch.no_grad(), torch.cuda.device(device):
            return cuda_kernels(lambda: layer(x))
    except Exception as error:  # recorded, not fatal
        return f"unavailable: {type(error).__name__}: {error}"


def mismatch_message(device: torch.device) -> str:
    """The real error text for a layer on `device` fed a CPU tensor (meta when on the CPU)."""
    target = device if device.type != "cpu" else torch.device("meta")
    layer = nn.Linear(4, 2, device=target)
    try:
        layer(torch.randn(10, 4))
    except RuntimeError as error:
        return str(error)
    raise AssertionError("a device mismatch did not raise")


# Environment variables that change what the timed products do: TF32 (NVIDIA's own switch, read
# by cuBLAS and cuDNN, and PyTorch's start-up override), which BLAS library and path PyTorch
# takes, cuBLAS's workspaces and float32 emulation, synchronous launches, PyTorch's memory cache,
# whether the profiler detaches after use, and which GPU CUDA numbers 0 (CUDA_VISIBLE_DEVICES,
# CUDA_DEVICE_ORDER).
ENVIRONMENT = ("NVIDIA_TF32_OVERRIDE", "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE",
               "TORCH_BLAS_PREFER_CUBLASLT", "DISABLE_ADDMM_CUDA_LT", "CUBLAS_WORKSPACE_CONFIG",
               "CUBLASLT_WORKSPACE_SIZE", "CUBLAS_EMULATE_SINGLE_PRECISION",
               "CUBLAS_EMULATION_STRATEGY", "CUDA_LAUNCH_BLOCKING",
               "PYTORCH_NO_CUDA_MEMORY_CACHING", "TEARDOWN_CUPTI", "CUDA_VISIBLE_DEVICES",
               "CUDA_DEVICE_ORDER")


def nvidia_packages() -> dict:
    """`{distribution: version}` of the installed Python distributions named nvidia-*."""
    from importlib.metadata import distributions

    found = {}
    for distribution in distributions():
        name = distribution.metadata["Name"] or ""
        if name.lower().startswith("nvidia-"):
            found[name] = distribution.version
    return dict(sorted(found.items()))


def matmul_settings() -> dict:
    """The float32 matrix-product settings as PyTorch reports them now.

    Read back rather than assumed: a PyTorch version may ignore or refuse a setting. A getter
    that fails (or that this PyTorch lacks) is recorded as its error, and never stops a run.
    """
    getters = {
        "float32_matmul_precision": torch.get_float32_matmul_precision,
        "cuda_matmul_allow_tf32": lambda: torch.backends.cuda.matmul.allow_tf32,
        # The newer per-backend setting, "tf32" or "ieee", in recent PyTorch versions.
        "cuda_matmul_fp32_precision": lambda: torch.backends.cuda.matmul.fp32_precision,
        "mkldnn_matmul_fp32_precision": lambda: torch.backends.mkldnn.matmul.fp32_precision,
        # Whether cuBLAS may reduce bfloat16 products in reduced precision, and whether cuBLASLt
        # may split K when that is disallowed (always True when it is allowed).
        "cuda_matmul_allow_bf16_reduced_precision_reduction":
            lambda: torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction,
        "cuda_matmul_allow_bf16_reduced_precision_reduction_split_k":
            lambda: torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction_split_k,
    }
    settings = {}
    for key, get in getters.items():
        try:
            settings[key] = get()
        except Exception as error:  # AttributeError, RuntimeError: recorded, not fatal
            settings[key] = f"unavailable: {type(error).__name__}: {error}"
    return settings


def restore_matmul_settings(settings: dict) -> None:
    """Put back what matmul_settings() read: the older level first (it also writes the new
    settings), then the new CUDA and oneDNN ones, where this PyTorch has them."""
    torch.set_float32_matmul_precision(settings["float32_matmul_precision"])
    for key, setting in (("cuda_matmul_fp32_precision", torch.backends.cuda.matmul),
                         ("mkldnn_matmul_fp32_precision", torch.backends.mkldnn.matmul)):
        value = settings.get(key)
        if isinstance(value, str) and not value.startswith("unavailable"):
            setting.fp32_precision = value


def measure(device, fmt, batch, features, min_run_time):
    """Seconds per `layer(x)` call (the median over the Timer's blocks, with how many blocks and
    calls per block it ran, and their interquartile range), and the matmul settings read back
    while timing. On a GPU each block costs two synchronisations, so the Timer makes blocks long
    and may run only a few: the record keeps how many."""
    dtype = torch.bfloat16 if fmt == "bfloat16" else torch.float32
    if device.type == "cuda":
        # "high" lets float32 matrix products use TF32 tensor cores; "highest", the default,
        # does not. Chapter 5 shows this setting.
        torch.set_float32_matmul_precision("high" if fmt == "tf32" else "highest")
    settings = matmul_settings()  # read back: what the timed products actually ran with
    layer = nn.Linear(features, features, device=device, dtype=dtype)
    x = torch.randn(batch, features, device=device, dtype=dtype)
    # The Timer's clock synchronises the *current* device only: make the measured one current.
    current = torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()
    with torch.no_grad(), current:
        # Warm up first (memory, kernel choice): a slow first call would make the Timer settle
        # on blocks of one call, each paying for a synchronisation.
        for _ in range(3):
            layer(x)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        timer = benchmark.Timer(stmt="layer(x)", globals={"layer": layer, "x": x})
        measurement = timer.blocked_autorange(min_run_time=min_run_time)
    blocks = len(measurement.raw_times)
    # With fewer than 4 blocks there is no spread worth the name (one block's IQR is 0).
    timing = {"seconds": measurement.median, "blocks": blocks,
              "calls_per_block": measurement.number_per_run,
              "iqr_seconds": measurement.iqr if blocks >= 4 else None}
    if device.type == "cuda":
        # The GPU's own time per call, which the timed call exceeds when Python and the
        # launches take longer than the kernel.
        timing.update(graph_seconds(layer, x, measurement.median))
    return timing, settings


def tf32_first_bits(t: torch.Tensor) -> torch.Tensor:
    """Keep the first 10 of float32's 23 stored mantissa bits (chapter 5's emulation)."""
    bits = t.float().contiguous().view(torch.int32)
    return (bits & ~0x1FFF).view(torch.float32)


def tf32_rounded(t: torch.Tensor) -> torch.Tensor:
    """Round float32 to the nearest value with a 10-bit mantissa (ties away from zero)."""
    bits = t.float().contiguous().view(torch.int32)
    return ((bits + 0x1000) & ~0x1FFF).view(torch.float32)


def tf32_rounded_even(t: torch.Tensor) -> torch.Tensor:
    """Round float32 to the nearest value with a 10-bit mantissa, ties to even."""
    bits = t.float().contiguous().view(torch.int32)
    odd = (bits >> 13) & 1                        # the lowest kept bit
    return ((bits + 0xFFF + odd) & ~0x1FFF).view(torch.float32)


# The ways a float32 input could become TF32, as chapter 5 emulates them (and ties to even).
TF32_CUTS = {"first_bits": tf32_first_bits, "rounded": tf32_rounded,
             "rounded_ties_to_even": tf32_rounded_even}


def tf32_nearest(errors: dict) -> str:
    """Which emulation of TF32's inputs ("first_bits" or "rounded") has the relative error
    nearest, by ratio, to that of the GPU's TF32 product; "float32" when the product was hardly
    less exact than full float32 (TF32 did not apply)."""
    if errors["tf32"] < 10 * errors["float32"]:
        return "float32"
    return min(("first_bits", "rounded"),
               key=lambda name: abs(math.log(errors["tf32"] / errors[name])))


def relative_error(product: torch.Tensor, exact: torch.Tensor) -> float:
    return ((product.double().cpu() - exact).norm() / exact.norm()).item()


def tf32_emulated(x: torch.Tensor, W: torch.Tensor) -> dict:
    """The relative errors of `x @ W.t()` with both operands cut to 10 mantissa bits either way."""
    exact = x @ W.t()
    return {name: relative_error(cut(x).double() @ cut(W).double().t(), exact)
            for name, cut in (("first_bits", tf32_first_bits), ("rounded", tf32_rounded))}


def one_sign_data() -> tuple[torch.Tensor, torch.Tensor]:
    """Chapter 5's inputs of one sign, in float64: x (256, 1024) and W (512, 1024)."""
    one_sign = torch.Generator().manual_seed(0)
    x = torch.rand(256, 1024, dtype=torch.float64, generator=one_sign)
    W = torch.rand(512, 1024, dtype=torch.float64, generator=one_sign) / 32
    return x, W


def cuts_matching(seen: torch.Tensor, values: torch.Tensor) -> list[str]:
    """The names of TF32_CUTS that turn `values` into exactly `seen`, or ["unchanged"] when
    `seen` is `values` as they are (float32, no cut)."""
    if torch.equal(seen, values):
        return ["unchanged"]
    return [name for name, cut in TF32_CUTS.items() if torch.equal(seen, cut(values))]


def operand_probes(x32: torch.Tensor, W32: torch.Tensor) -> dict:
    """Each operand as a product of the same shape and layout reads it: multiplied by a matrix
    that picks one of its entries per output (one 1.0 among 0.0s), a product returns that entry
    as the kernel read it, since 1.0 and sums of zeros are exact. The shapes are those of
    `x @ W.t()`; cuBLAS chooses kernels by shapes, types and layouts, not values, and the
    kernels each probe ran are recorded to show it. Through `@` and through `F.linear` with a
    bias (what nn.Linear runs), for x in the first place and W in the second."""
    n, k = x32.shape
    out = W32.shape[0]
    picks_x = torch.eye(out, k, device=x32.device)     # (out, in): x[:, :out]
    picks_W = torch.eye(n, k, device=x32.device)       # (N, in): W[:, :N], transposed
    zeros = torch.zeros(out, device=x32.device)        # a bias: both products give out columns
    routes = {"x, @": (lambda: x32 @ picks_x.t(), x32[:, :out]),
              "x, F.linear": (lambda: F.linear(x32, picks_x, zeros), x32[:, :out]),
              "W, @": (lambda: (picks_W @ W32.t()).t(), W32[:, :n]),
              "W, F.linear": (lambda: F.linear(picks_W, W32, zeros).t(), W32[:, :n])}
    found = {}
    for route, (product, values) in routes.items():
        try:
            found[route] = {"read_as": cuts_matching(product().cpu(), values.cpu()),
                            "kernels": cuda_kernels(product)}
        except Exception as error:  # recorded, not fatal: the sweep has run already
            found[route] = f"failed: {type(error).__name__}: {error}"
    return found


def cuda_kernels(product) -> list[str] | str:
    """The names of the CUDA kernels `product()` runs (three times), from the profiler, or why
    they are unavailable."""
    try:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CUDA]) as profiler:
            for _ in range(3):
                product()
        names = sorted({event.name for event in profiler.events()
                        if event.device_type == torch.autograd.DeviceType.CUDA})
    except Exception as error:  # a profiler without CUPTI: recorded, not fatal
        return f"unavailable: {type(error).__name__}: {error}"
    return names or "unavailable: no CUDA events recorded"


def tf32_inputs(device: torch.device) -> dict | None:
    """How the GPU's TF32 products treat their float32 inputs: do they keep the first 10 mantissa
    bits (PyTorch's numerical accuracy notes) or round them to 10 (its CUDA notes)? Chapter 5
    emulates both. Recorded: each operand as the product reads it, compared exactly with the
    cuts (operand_probes); the relative errors of both emulations and of the GPU's own float32
    and TF32 products (through `@` and `F.linear`) on chapter 5's data of one sign, where the
    two emulations differ about 58 times, and the one nearest to TF32's `@`; and the kernels
    each ran. None without TF32 tensor cores. Run after the timed sweep: the profiler it uses
    can stay attached to the process."""
    if (device.type != "cuda"
            or torch.cuda.get_device_capability(device) < TENSOR_CORE_FORMATS_FROM):
        return None
    x, W = one_sign_data()
    exact = x @ W.t()
    errors = tf32_emulated(x, W)
    x32, W32 = x.float().to(device), W.float().to(device)
    bias = torch.zeros(W32.shape[0], device=device)
    probes, kernels = {}, {}
    before = matmul_settings()
    try:
        for precision, name in (("highest", "float32"), ("high", "tf32")):
            torch.set_float32_matmul_precision(precision)
            errors[name] = relative_error(x32 @ W32.t(), exact)
            errors[f"{name}, F.linear"] = relative_error(F.linear(x32, W32, bias), exact)
            probes[name] = operand_probes(x32, W32)
            kernels[name] = cuda_kernels(lambda: x32 @ W32.t())
    finally:
        restore_matmul_settings(before)
    return {"relative_errors": errors, "nearest": tf32_nearest(errors),
            "operands_read_as": probes, "kernels": kernels}


def formats_for(device: torch.device, capability: tuple[int, int] | None) -> dict:
    """Each format to measure, mapped to None, or to the reason it is skipped."""
    skipped = {}
    for fmt in FORMATS:
        if fmt == "tf32" and device.type != "cuda":
            skipped[fmt] = "TF32 is a mode of NVIDIA tensor cores"
        elif (fmt in ("tf32", "bfloat16") and device.type == "cuda"
              and capability < TENSOR_CORE_FORMATS_FROM):
            skipped[fmt] = (f"compute capability {capability[0]}.{capability[1]} is below 8.0: "
                            "no TF32 or bfloat16 tensor cores")
        else:
            skipped[fmt] = None
    return skipped


def tf32_check(rows: list[dict]) -> dict | None:
    """Did TF32 apply? Compare it with float32 at the largest layer and batch measured in both."""
    rates = {(row["format"], row["in_features"], row["batch"]): row["tflops"] for row in rows}
    both = [(features, batch) for fmt, features, batch in rates
            if fmt == "tf32" and ("float32", features, batch) in rates]
    if not both:
        return None
    features, batch = max(both)
    float32, tf32 = rates["float32", features, batch], rates["tf32", features, batch]
    return {"in_features": features, "batch": batch, "float32_tflops": float32,
            "tf32_tflops": tf32, "speedup": tf32 / float32, "min_speedup": TF32_MIN_SPEEDUP,
            "applied": tf32 / float32 >= TF32_MIN_SPEEDUP}


def run(device: torch.device, batches, sizes, min_run_time) -> dict:
    cuda = device.type == "cuda"
    gpu_id = smi_id(device) if cuda else None
    name = torch.cuda.get_device_name(device) if cuda else "CPU"
    capability = torch.cuda.get_device_capability(device) if cuda else None
    peaks = peak_for(name)
    state_before = nvidia_smi_state(gpu_id) if cuda else None
    samples_file = Path(tempfile.gettempdir()) / f"gpu-bench-smi-{os.getpid()}.csv"
    sampler = start_sampling(gpu_id, samples_file) if cuda else None
    default_settings = matmul_settings()
    skipped = formats_for(device, capability)
    rows = []
    for fmt in FORMATS:
        if skipped[fmt]:
            print(f"{fmt:>9} skipped: {skipped[fmt]}", flush=True)
            continue
        for features in sizes:
            for batch in batches:
                timing, settings = measure(device, fmt, batch, features, min_run_time)
                seconds = timing["seconds"]
                tflops = flops(batch, features, features) / seconds / 1e12
                peak = peaks[fmt] if peaks else None
                rows.append({
                    "format": fmt, "batch": batch, "in_features": features,
                    "out_features": features, **timing, "tflops": tflops,
                    "peak_tflops": peak, "fraction_of_peak": tflops / peak if peak else None,
                    "matmul_settings": settings,
                })
                print(f"{fmt:>9} N={batch:>6} features={features:>6}: {tflops:8.2f} TFLOP/s",
                      flush=True)
    # Right after the last timed product, while the clocks are still those of the sweep.
    state_after = nvidia_smi_state(gpu_id) if cuda else None
    during = stop_sampling(sampler, samples_file)
    samples_file.unlink(missing_ok=True)
    if cuda:
        restore_matmul_settings(default_settings)
    inputs = tf32_inputs(device)  # after the timings: it uses the profiler
    if cuda:  # which kernels each row ran (a small batch may not run a tensor-core kernel)
        for row in rows:
            row["kernels"] = row_kernels(device, row)
        restore_matmul_settings(default_settings)
    if inputs is not None:
        print(f"TF32 inputs: nearest to {inputs['nearest']} "
              f"({inputs['relative_errors']})", flush=True)
    check = tf32_check(rows)
    if check is not None:
        verdict = ("applied" if check["applied"] else
                   f"DID NOT APPLY (less than {TF32_MIN_SPEEDUP}x float32)")
        print(f"TF32 at {check['in_features']} features, N={check['batch']}: "
              f"{check['speedup']:.1f}x float32: the setting {verdict}", flush=True)
    print(f"peak figures: {peaks['source'] if peaks else 'none published for ' + repr(name)}",
          flush=True)
    return {
        "device": name,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        # NVIDIA's libraries as pip installs them beside a PyPI torch (cuBLAS, cuDNN, ...): the
        # cuBLAS that ran is this one, not the CUDA version torch was built with. Empty where the
        # machine's own libraries are used.
        "nvidia_packages": nvidia_packages(),
        "environment": {name: os.environ.get(name) for name in ENVIRONMENT},
        "date": datetime.date.today().isoformat(),
        "device_mismatch_error": mismatch_message(device),
        "results": rows,
        "compute_capability": f"{capability[0]}.{capability[1]}" if capability else None,
        # Chapter 5 compares the layers' weights with it (a weight that fits can stay cached).
        "l2_cache_bytes": (torch.cuda.get_device_properties(device).L2_cache_size
                           if cuda else None),
        "python": platform.python_version(),
        "peak_source": peaks["source"] if peaks else None,
        "skipped_formats": {fmt: why for fmt, why in skipped.items() if why},
        "default_matmul_settings": default_settings,
        "tf32_check": check,
        # Does TF32 keep its inputs' first 10 mantissa bits, or round them? (Chapter 5 asks.)
        "tf32_inputs": inputs,
        # Clocks and power before the sweep and right after its last timed product, and the
        # range of the SM clock and the power sampled while it ran.
        # Which GPU nvidia-smi was asked about (its PCI bus ID; see smi_id).
        "nvidia_smi_id": gpu_id,
        "nvidia_smi": ({"before": state_before, "after": state_after, "during": during}
                       if cuda else None),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to test the logic")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("error: no CUDA GPU is visible to torch; to test the logic, use "
              "--device cpu --quick --out /tmp/gpu-linear.json",
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
