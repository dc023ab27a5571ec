"""tools/gpu_bench.py, the script that records chapter 5's GPU measurements, works.

CI has no GPU, so this runs the same code path on the CPU with tiny sizes and checks the file it
writes: the fields chapter 5 reads, the FLOP arithmetic, and a real device-mismatch message.
"""
import json
import subprocess
import sys

import gpu_bench

from book import ROOT


def test_flop_count_of_a_linear_layer():
    # 10 inputs x 4 features -> 2 outputs: 80 multiplications and 80 additions.
    assert gpu_bench.flops(10, 4, 2) == 160


def test_peak_lookup_by_device_name():
    assert gpu_bench.peak_for("NVIDIA H200")["bfloat16"] == 989.4
    assert gpu_bench.peak_for("NVIDIA A100-SXM4-80GB")["tf32"] == 156.0
    assert gpu_bench.peak_for("Some Unknown GPU") is None


def test_quick_run_on_cpu_writes_what_the_chapter_reads(tmp_path):
    out = tmp_path / "gpu-linear.json"
    result = subprocess.run(
        [sys.executable, ROOT / "tools" / "gpu_bench.py", "--device", "cpu", "--quick",
         "--out", out],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    record = json.loads(out.read_text())
    assert {"device", "torch", "cuda", "date", "device_mismatch_error", "results"} <= set(record)
    assert "not on the expected device" in record["device_mismatch_error"]
    assert {row["format"] for row in record["results"]} == {"float32", "bfloat16"}
    for row in record["results"]:
        work = gpu_bench.flops(row["batch"], row["in_features"], row["out_features"])
        assert abs(row["tflops"] * row["seconds"] * 1e12 - work) <= 1e-6 * work
        assert row["peak_tflops"] is None and row["fraction_of_peak"] is None


def test_refuses_cuda_without_a_gpu(tmp_path):
    if gpu_bench.torch.cuda.is_available():
        return  # on a GPU machine there is nothing to refuse
    result = subprocess.run(
        [sys.executable, ROOT / "tools" / "gpu_bench.py", "--out", tmp_path / "x.json"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 1 and "no CUDA GPU" in result.stderr
