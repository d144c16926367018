"""One training job over several processes, one per GPU of a node, through Accelerate (data parallel).

    launch(base_dir, rows, cfg, seed, out_dir, precision, metadata)   # runs `accelerate launch` when
                                                                      # cfg.processes > 1
    python -m capgap.training.launch JOB.pkl                          # what every process runs

`accelerate launch --num_processes N` starts N processes (on a CPU: `--cpu`, gloo instead of NCCL); each
runs `training.sft.train` on the same job, and the Trainer wraps the model in DistributedDataParallel. Every
optimizer step still sees the config's effective batch: each process takes batch_size / N examples of it
(consecutive shares of the same seeded order), and gradients are averaged across processes. Only the main
process writes the checkpoint. The job file lies in a folder of its own, removed when the launch ends.
"""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from capgap.config import TrainingConfig
from capgap.errors import CapgapError
from capgap.models.precision import Precision


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def command(processes: int, precision: Precision, job: Path) -> list[str]:
    """The `accelerate launch` command line of a job (mixed precision is the Trainer's, from `precision`)."""
    where = ["--cpu"] if precision.device == "cpu" else ["--multi_gpu"]
    return [sys.executable, "-m", "accelerate.commands.launch", *where, "--num_processes", str(processes),
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
            "--main_process_port", str(_free_port()), "-m", "capgap.training.launch", str(job)]


def check_devices(processes: int, precision: Precision) -> None:
    """A GPU job of more processes than this machine has GPUs is one error line."""
    if precision.device != "cuda":
        return
    import torch

    if processes > torch.cuda.device_count():
        raise CapgapError(f"training.processes is {processes}, but this machine has {torch.cuda.device_count()} "
                          "GPU(s); lower processes (with Ray, --gpus-per-job gives each job its GPUs)")


def launch(base_dir: Path, rows: list[dict], cfg: TrainingConfig, seed: int, out_dir: Path,
           precision: Precision, metadata: dict) -> None:
    """Train on `cfg.processes` processes; returns once the checkpoint is in `out_dir`."""
    check_devices(cfg.processes, precision)
    folder = Path(tempfile.mkdtemp(prefix="capgap-launch-"))
    try:
        job = folder / "job.pkl"
        job.write_bytes(pickle.dumps({"base_dir": base_dir, "rows": rows, "cfg": cfg, "seed": seed,
                                      "out_dir": out_dir, "precision": precision, "metadata": metadata}))
        env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // cfg.processes))}
        done = subprocess.run(command(cfg.processes, precision, job), env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
        if done.returncode != 0 or not out_dir.is_dir():
            tail = " | ".join(line for line in done.stdout.strip().splitlines()[-3:])
            raise CapgapError(f"training over {cfg.processes} processes failed (accelerate launch exited with "
                              f"{done.returncode}: {tail[-400:]}); set training.processes: 1 to train in one")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main(job: str) -> None:
    from transformers import AutoTokenizer

    from capgap.training.sft import train

    spec = pickle.loads(Path(job).read_bytes())  # written by `launch` in this job's own folder
    tokenizer = AutoTokenizer.from_pretrained(spec["base_dir"])
    train(spec["base_dir"], tokenizer, spec["rows"], spec["cfg"], spec["seed"], spec["out_dir"],
          spec["precision"], metadata=spec["metadata"])


if __name__ == "__main__":
    main(sys.argv[1])
