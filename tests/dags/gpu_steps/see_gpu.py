"""Record the GPUs this step's process sees, as step metrics: what nvidia-smi reports, and CUDA through PyTorch
when it is installed."""

from __future__ import annotations

import subprocess

from airflow_mlpipe import Run

FIELDS = ("name", "memory.total", "driver_version")

run = Run.get_context()
query = ["nvidia-smi", f"--query-gpu={','.join(FIELDS)}", "--format=csv,noheader,nounits"]
rows = [line.split(", ") for line in subprocess.check_output(query, text=True).strip().splitlines()]
run.log("gpu_count", len(rows))
run.log("gpu_name", rows[0][0])
run.log("gpu_memory_mib", int(float(rows[0][1])))
run.log("gpu_driver", rows[0][2])
try:
    import torch
except ImportError:
    run.log("cuda_available", "torch not installed")
else:
    run.log("cuda_available", bool(torch.cuda.is_available()))
    if torch.cuda.is_available():
        run.log("cuda_device", torch.cuda.get_device_name(0))
print(f"GPU seen by the step: {rows[0][0]} ({len(rows)} in all)")
