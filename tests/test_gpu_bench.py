"""tools/gpu_bench.py, the script that records chapter 5's GPU measurements, works.

CI has no GPU, so this runs the same code path on the CPU with tiny sizes and checks the file it
writes: the fields chapter 5 reads, the FLOP arithmetic, and a real device-mismatch message. The
parts that only a machine with an NVIDIA GPU reaches (the peak table, skipping formats on older
GPUs, the TF32 check, reading nvidia-smi, which emulation of TF32's inputs a product is nearest
to) are tested on their own with made-up inputs, and run() as a whole on a stand-in CUDA device.
"""
import json
import os
import subprocess
import sys
from types import SimpleNamespace

import nbformat
import pytest

from book import BOOK, ROOT


@pytest.fixture(scope="module")
def gpu_bench():
    """tools/gpu_bench.py, imported when a test first needs it: it imports torch, seconds of CPU
    that every test worker would otherwise spend collecting this file."""
    import gpu_bench
    return gpu_bench


def test_flop_count_of_a_linear_layer(gpu_bench):
    # 10 inputs x 4 features -> 2 outputs: 80 multiplications and 80 additions.
    assert gpu_bench.flops(10, 4, 2) == 160


# Exact names as torch.cuda.get_device_name() and nvidia-smi report them.
LISTED = ["NVIDIA H100 80GB HBM3", "NVIDIA H100 PCIe", "NVIDIA H100 NVL", "NVIDIA H200",
          "NVIDIA H200 NVL", "NVIDIA A100-SXM4-80GB", "NVIDIA A100-SXM4-40GB",
          "NVIDIA A100-PCIE-40GB", "NVIDIA A100 80GB PCIe"]


def test_the_list_is_the_table(gpu_bench):
    assert set(LISTED) == set(gpu_bench.PEAK_TFLOPS)


@pytest.mark.parametrize("name", LISTED)
def test_each_listed_gpu_has_dense_peaks_and_a_source(gpu_bench, name):
    peaks = gpu_bench.peak_for(name)
    assert set(peaks) == {"float32", "tf32", "bfloat16", "source"}
    # Tensor cores: TF32 well above float32, bfloat16 twice TF32 (dense, on these chips).
    assert peaks["float32"] < peaks["tf32"] < peaks["bfloat16"]
    assert abs(peaks["bfloat16"] / peaks["tf32"] - 2) < 0.01
    assert "data sheet" in peaks["source"] or "whitepaper" in peaks["source"]


def test_peak_figures_by_exact_device_name(gpu_bench):
    assert gpu_bench.peak_for("NVIDIA H100 80GB HBM3")["bfloat16"] == 989.4  # the whitepaper's
    assert gpu_bench.peak_for("NVIDIA H200")["bfloat16"] == 989.5  # half of 1,979 with sparsity
    assert gpu_bench.peak_for("NVIDIA A100-SXM4-80GB")["tf32"] == 156.0
    # The NVL versions run at a lower power limit than the SXM ones: lower peaks of their own.
    assert gpu_bench.peak_for("NVIDIA H200 NVL")["bfloat16"] == 835.5


@pytest.mark.parametrize("name", [
    "NVIDIA RTX A1000",      # contains "A100"
    "NVIDIA GH200 480GB",    # contains "H200"; not in the table
    "NVIDIA H200 141GB",     # not a name the driver reports
    "nvidia h200",           # case matters
    "NVIDIA H200 ",
    "Some Unknown GPU",
    "CPU",
])
def test_no_peak_unless_the_name_matches_exactly(gpu_bench, name):
    assert gpu_bench.peak_for(name) is None


def test_tensor_core_formats_are_skipped_below_compute_capability_8(gpu_bench):
    cuda = gpu_bench.torch.device("cuda")
    older = gpu_bench.formats_for(cuda, (7, 5))
    assert older["float32"] is None and older["tf32"] and older["bfloat16"]
    assert set(gpu_bench.formats_for(cuda, (9, 0)).values()) == {None}
    cpu = gpu_bench.formats_for(gpu_bench.torch.device("cpu"), None)
    assert cpu["tf32"] and cpu["float32"] is None and cpu["bfloat16"] is None


def rows(rates):
    return [{"format": fmt, "in_features": features, "batch": batch, "tflops": tflops}
            for (fmt, features, batch), tflops in rates.items()]


def test_tf32_inputs_are_judged_by_the_nearest_emulation(gpu_bench):
    errors = {"float32": 1e-7, "first_bits": 6.5e-4, "rounded": 1.1e-5}
    assert gpu_bench.tf32_nearest({**errors, "tf32": 6.0e-4}) == "first_bits"
    assert gpu_bench.tf32_nearest({**errors, "tf32": 1.3e-5}) == "rounded"
    assert gpu_bench.tf32_nearest({**errors, "tf32": 3e-7}) == "float32"  # TF32 did not apply
    assert gpu_bench.tf32_inputs(gpu_bench.torch.device("cpu")) is None


def test_tf32_emulations_and_data_are_chapter_5s(gpu_bench):
    """The GPU's TF32 product is compared with chapter 5's two emulations, on its data."""
    torch = gpu_bench.torch
    cells = [c for c in nbformat.read(BOOK / "05-gpu.ipynb", as_version=4).cells
             if c.cell_type == "code"]
    chapter = {"torch": torch}
    exec(next(c.source for c in cells if "def tf32_first_bits" in c.source), chapter)
    values = torch.randn(10_000) * 1e3
    for name in ("tf32_first_bits", "tf32_rounded"):
        assert torch.equal(chapter[name](values), getattr(gpu_bench, name)(values))
    # the chapter's data of one sign: its own lines, run, give one_sign_data's tensors
    source = next(c.source for c in cells if "x_pos = " in c.source)
    lines = [line for line in source.splitlines()
             if line.startswith(("one_sign = ", "x_pos = ", "W_pos = "))]
    assert len(lines) == 3
    exec("\n".join(lines), chapter)
    x, W = gpu_bench.one_sign_data()
    assert torch.equal(chapter["x_pos"], x) and torch.equal(chapter["W_pos"], W)
    # and the chapter prints the errors of both emulations on it
    errors = gpu_bench.tf32_emulated(*gpu_bench.one_sign_data())
    shown = next("".join(o.get("text", "") for o in c.outputs) for c in cells
                 if "x and W >= 0" in c.source)
    assert (f"1024 inputs: first bits {errors['first_bits']:.1e}, "
            f"rounded {errors['rounded']:.1e}") in shown


def test_each_way_of_cutting_to_10_bits_is_told_apart(gpu_bench):
    torch = gpu_bench.torch
    # 1 + 2**-11 lies halfway between 1 and 1 + 2**-10 (kept bit even): away from zero, up;
    # to even, down. 1 + 2**-10 + 2**-11 lies halfway with the kept bit odd: both round up.
    # 1 + 2**-10 + 2**-11 + 2**-12 lies above halfway: rounded up, but its first bits kept.
    values = torch.tensor([1 + 2**-11, 1 + 2**-10 + 2**-11, 1 + 2**-10 + 2**-11 + 2**-12,
                           1 + 2**-12])
    expected = {"first_bits": [1, 1 + 2**-10, 1 + 2**-10, 1],
                "rounded": [1 + 2**-10, 1 + 2**-9, 1 + 2**-9, 1],
                "rounded_ties_to_even": [1, 1 + 2**-9, 1 + 2**-9, 1]}
    for name, cut in gpu_bench.TF32_CUTS.items():
        assert cut(values).tolist() == expected[name]
        assert gpu_bench.cuts_matching(cut(values), values) == [name]
    assert gpu_bench.cuts_matching(values, values) == ["unchanged"]    # float32 as it is
    assert gpu_bench.cuts_matching(values * 0, values) == []            # none of them


def test_operand_probes_return_each_operand_exactly(gpu_bench):
    """Multiplying by a matrix of one 1.0 per output returns the operand exactly: in float32 on
    the CPU every probe reads its operand unchanged."""
    torch = gpu_bench.torch
    x, W = (t.float() for t in gpu_bench.one_sign_data())
    probes = gpu_bench.operand_probes(x, W)
    assert set(probes) == {"x, @", "x, F.linear", "W, @", "W, F.linear"}
    assert all(probe["read_as"] == ["unchanged"] for probe in probes.values())
    assert all(probe["kernels"].startswith("unavailable") for probe in probes.values())
    assert torch.equal(x @ torch.eye(512, 1024).t(), x[:, :512])


def test_the_matmul_settings_are_put_back(gpu_bench):
    torch = gpu_bench.torch
    before = gpu_bench.matmul_settings()
    torch.set_float32_matmul_precision("high")
    assert gpu_bench.matmul_settings() != before
    gpu_bench.restore_matmul_settings(before)
    assert gpu_bench.matmul_settings() == before


def test_tf32_check_compares_the_largest_size(gpu_bench):
    check = gpu_bench.tf32_check(rows({
        ("float32", 1024, 16): 10.0, ("tf32", 1024, 16): 10.0,       # small: no verdict here
        ("float32", 8192, 16384): 50.0, ("tf32", 8192, 16384): 400.0,
    }))
    assert (check["in_features"], check["batch"]) == (8192, 16384)
    assert check["speedup"] == 8.0 and check["applied"] is True


def test_tf32_check_says_when_the_setting_did_not_apply(gpu_bench):
    check = gpu_bench.tf32_check(rows({("float32", 4096, 4096): 50.0,
                                       ("tf32", 4096, 4096): 52.0}))
    assert check["applied"] is False
    assert gpu_bench.tf32_check(rows({("float32", 32, 16): 1.0})) is None


def fake_nvidia_smi(tmp_path, monkeypatch, refuse: str, value: str) -> None:
    """Put on PATH a stand-in nvidia-smi that answers each --query-gpu field with `value`
    (bash, with $f the field), after running `refuse`: bash lines that may exit first."""
    fake = tmp_path / "nvidia-smi"
    fake.write_text(f"""#!/usr/bin/env bash
query=""
for arg; do case $arg in --query-gpu=*) query=${{arg#--query-gpu=}};; esac; done
{refuse}
IFS=, read -r -a fields <<<"$query"
values=(); for f in "${{fields[@]}}"; do values+=("{value}"); done
(IFS=,; echo "${{values[*]}}" | sed 's/,/, /g')
""")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")


def test_nvidia_smi_fields_survive_a_driver_that_rejects_one(gpu_bench, tmp_path, monkeypatch):
    # A stand-in nvidia-smi that knows every field but power.default_limit.
    fake_nvidia_smi(tmp_path, monkeypatch, value="value of $f", refuse=(
        """case $query in *power.default_limit*) """
        """echo 'Field "power.default_limit" is not valid'; exit 2;; esac"""))
    state = gpu_bench.nvidia_smi_state("00000000:18:00.0")
    assert state["clocks.sm"] == "value of clocks.sm"
    assert state["power.limit"] == "value of power.limit"
    assert state["power.default_limit"] is None
    assert set(state) == set(gpu_bench.SMI_FIELDS)


@pytest.mark.gpu_tools  # runs the script: make test-tools
def test_sampled_clocks_and_power_are_summarised(gpu_bench):
    """nvidia-smi's samples during the sweep: ranges of the readable lines, the rest counted."""
    text = "1980, 612.25\n[N/A], [N/A]\n1485, 700.5\n1170, 80.9\n"
    summary = gpu_bench.summarise_samples(text)
    assert summary == {"every_ms": gpu_bench.SAMPLE_MS, "samples": 3, "unreadable": 1,
                       "sm_clock_mhz_min": 1170.0, "sm_clock_mhz_max": 1980.0,
                       "power_w_min": 80.9, "power_w_max": 700.5}
    assert gpu_bench.summarise_samples("") == {"every_ms": gpu_bench.SAMPLE_MS, "samples": 0,
                                               "unreadable": 0}


def test_without_nvidia_smi_nothing_is_sampled(gpu_bench, tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_bench.shutil, "which", lambda name: None)
    assert gpu_bench.start_sampling("0", tmp_path / "samples.csv") is None
    assert gpu_bench.stop_sampling(None, tmp_path / "samples.csv") is None


def test_quick_run_on_cpu_writes_what_the_chapter_reads(gpu_bench, tmp_path):
    out = tmp_path / "gpu-linear.json"
    result = subprocess.run(
        [sys.executable, ROOT / "tools" / "gpu_bench.py", "--device", "cpu", "--quick",
         "--out", out],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    record = json.loads(out.read_text())
    assert {"device", "torch", "cuda", "date", "device_mismatch_error", "results"} <= set(record)
    # What decides the numbers, recorded beside them (empty where a CPU has none of it).
    assert {"compute_capability", "peak_source", "tf32_check", "nvidia_smi", "skipped_formats",
            "default_matmul_settings", "python", "l2_cache_bytes", "nvidia_packages",
            "tf32_inputs", "nvidia_smi_id"} <= set(record)
    assert record["tf32_inputs"] is None and isinstance(record["nvidia_packages"], dict)
    assert set(record["environment"]) == set(gpu_bench.ENVIRONMENT)
    assert record["torch"] == gpu_bench.torch.__version__ and record["device"] == "CPU"
    assert record["nvidia_smi"] is None and record["peak_source"] is None
    assert record["nvidia_smi_id"] is None
    assert record["l2_cache_bytes"] is None
    assert "not on the expected device" in record["device_mismatch_error"]
    assert {row["format"] for row in record["results"]} == {"float32", "bfloat16"}
    assert set(record["skipped_formats"]) == {"tf32"}
    for row in record["results"]:
        work = 2 * row["batch"] * row["in_features"] * row["out_features"]  # with the bias
        assert abs(row["tflops"] * row["seconds"] * 1e12 - work) <= 1e-6 * work
        assert row["peak_tflops"] is None and row["fraction_of_peak"] is None
        assert row["matmul_settings"]["float32_matmul_precision"] == "highest"
        settings = row["matmul_settings"]
        assert isinstance(settings["cuda_matmul_allow_bf16_reduced_precision_reduction"], bool)
        # the Timer's own account of its blocks, beside the median they gave
        assert row["blocks"] >= 1 and row["calls_per_block"] >= 1
        if row["blocks"] < 4:                  # no spread worth the name
            assert row["iqr_seconds"] is None
        else:
            assert 0 <= row["iqr_seconds"] < 100 * row["seconds"]


@pytest.mark.gpu_tools  # runs the script: make test-tools
def test_refuses_cuda_without_a_gpu(gpu_bench, tmp_path):
    if gpu_bench.torch.cuda.is_available():
        pytest.skip("this machine has a GPU: there is nothing to refuse")
    result = subprocess.run(
        [sys.executable, ROOT / "tools" / "gpu_bench.py", "--out", tmp_path / "x.json"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 1 and "no CUDA GPU" in result.stderr


def test_nvidia_smi_is_asked_about_the_gpu_torch_uses(gpu_bench, tmp_path, monkeypatch):
    # By PCI bus ID, from torch's own properties of the device it measures: nvidia-smi's
    # indices ignore CUDA_VISIBLE_DEVICES, and a MIG slice has a UUID of its own.
    props = {"cuda:0": SimpleNamespace(pci_domain_id=0, pci_bus_id=0x18, pci_device_id=0),
             "cuda:1": SimpleNamespace(pci_domain_id=1, pci_bus_id=0xAB, pci_device_id=3)}
    monkeypatch.setattr(gpu_bench.torch.cuda, "get_device_properties",
                        lambda device: props[str(device)])
    assert gpu_bench.smi_id(gpu_bench.torch.device("cuda:0")) == "00000000:18:00.0"
    assert gpu_bench.smi_id(gpu_bench.torch.device("cuda:1")) == "00000001:AB:03.0"
    fake_nvidia_smi(tmp_path, monkeypatch, value="$f of the right GPU", refuse=(
        "for arg; do case $arg in --id=00000000:18:00.0) ;; --id=*) exit 6;; esac; done"))
    right = gpu_bench.nvidia_smi_state(gpu_bench.smi_id(gpu_bench.torch.device("cuda:0")))
    assert right["pci.bus_id"] == "pci.bus_id of the right GPU"
    assert set(gpu_bench.nvidia_smi_state("0").values()) == {None}     # another id: nothing
    # run() asks about the device it measures, before the sweep and after it, not about an
    # index: run it to the end on a stand-in CUDA device, timings and all made up.
    props["cuda:1"].L2_cache_size = 60 * 2**20
    asked = []

    def state(gpu_id):
        asked.append(gpu_id)
        return {"clocks.sm": f"clock {len(asked)}"}

    def measure(device, fmt, batch, features, min_run_time):
        seconds = {"float32": 4.0, "tf32": 1.0, "bfloat16": 0.5}[fmt]
        return ({"seconds": seconds, "blocks": 4, "calls_per_block": 1, "iqr_seconds": 0.0},
                {"read back": fmt})

    monkeypatch.setattr(gpu_bench.torch.cuda, "get_device_name", lambda device: "NVIDIA H200")
    monkeypatch.setattr(gpu_bench.torch.cuda, "get_device_capability", lambda device: (9, 0))
    monkeypatch.setattr(gpu_bench, "nvidia_smi_state", state)
    monkeypatch.setattr(gpu_bench, "measure", measure)
    monkeypatch.setattr(gpu_bench, "tf32_inputs", lambda device: None)
    monkeypatch.setattr(gpu_bench, "mismatch_message", lambda device: "a stand-in message")
    record = gpu_bench.run(gpu_bench.torch.device("cuda:1"), [1000], [1000], 0.01)
    assert asked == ["00000001:AB:03.0"] * 2
    assert record["nvidia_smi"]["before"] == {"clocks.sm": "clock 1"}
    assert record["nvidia_smi"]["after"] == {"clocks.sm": "clock 2"}
    assert record["nvidia_smi_id"] == "00000001:AB:03.0"
    assert record["compute_capability"] == "9.0" and record["l2_cache_bytes"] == 60 * 2**20
    assert record["skipped_formats"] == {}
    # 2 * 1000**3 FLOPs a call: 0.5 s is 4e-3 TFLOP/s; fractions of the H200's dense peaks.
    rows = {row["format"]: row for row in record["results"]}
    assert rows["bfloat16"]["tflops"] == pytest.approx(4e-3)
    assert rows["bfloat16"]["fraction_of_peak"] == pytest.approx(4e-3 / 989.5)
    assert rows["tf32"]["matmul_settings"] == {"read back": "tf32"}
    assert record["tf32_check"]["speedup"] == pytest.approx(4.0) and record["tf32_check"]["applied"]

