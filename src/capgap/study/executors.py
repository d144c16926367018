"""Where jobs run: in this process (`local`, the default) or as Ray tasks over a cluster's GPUs and machines
(`ray`). Either way a job is plain data in and plain data out, and only the driver writes the store.

    capgap run study.yaml --executor ray --ray-address auto --gpus-per-job 1

Ray places each job where its resource request fits (Ray does the scheduling; capgap only says what a job
needs) and returns its result to the driver, which records it. Checkpoints are written to the run folder, so
on several machines that folder must be on storage every worker sees (NFS, a mounted bucket). The device and
precision of every job are decided once, by `models.precision`, on a worker of the kind the jobs run on (a
CPU-only driver in front of GPU workers gets the GPUs' precision).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from capgap.errors import CapgapError, did_you_mean
from capgap.models.engines import engine_name
from capgap.models.precision import Precision, decide

# Forwarded to Ray workers: where capgap's cache and the Hub cache are, offline mode, precision override, and
# the quiet settings of the driver (no library progress bars from the workers).
FORWARDED_ENV = ("CAPGAP_CACHE_DIR", "CAPGAP_DTYPE", "CAPGAP_ENGINE", "HF_HOME", "HF_HUB_OFFLINE", "HF_HUB_CACHE",
                 "XDG_CACHE_HOME", "TOKENIZERS_PARALLELISM", "TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS",
                 "TRANSFORMERS_VERBOSITY")
CONNECT_SECONDS = 5.0  # how long a cluster address may take to accept a connection before it is called wrong


@dataclass(frozen=True)
class Resources:
    cpus: float = 1.0  # per job; Ray also sets the job's thread count (OMP_NUM_THREADS) to it
    gpus: float | None = None  # per job (a training job of N processes asks N times this); None: 1 with GPUs


Outcome = tuple[object, object, BaseException | None]  # (job, result, error): the driver decides what errors mean


class LocalExecutor:
    """Runs each job in this process when its results are asked for; a job's callbacks (`on_rows`, ...) run
    here too, so the driver records rows while the job runs."""

    streams = True

    def submit(self, fn: Callable, job, gpus: float = 1.0, **callbacks) -> tuple[Callable, object]:
        return (lambda: fn(job, **callbacks)), job

    def results(self, submitted: list) -> Iterator[Outcome]:
        """(job, result, error) for each submitted job, as each finishes."""
        for run, job in submitted:
            try:
                yield job, run(), None
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as e:  # the driver decides what a failure means
                yield job, None, e

    def call(self, fn: Callable, job, gpus: float = 1.0, **callbacks):
        return fn(job, **callbacks)

    def decide(self, dtype: str) -> Precision:
        return decide(dtype)

    def engine(self, backend: str) -> str:
        return engine_name(backend)

    def close(self) -> None:
        pass


def _check_reachable(address: str) -> None:
    """A HOST:PORT (or ray://HOST:PORT) address that accepts no connection is one error line at once (Ray
    itself retries for minutes)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # "auto", or a form Ray reads itself
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_SECONDS).close()
    except OSError as e:
        raise CapgapError(f"cannot join the Ray cluster at {address} ({e.strerror or type(e).__name__}); start it "
                          "with `ray start --head` and pass the address it prints with --ray-address") from None


class RayExecutor:
    """Runs jobs as Ray tasks with a resource request each; results come back to the driver to be recorded.
    Callbacks are not sent to workers: a job's rows arrive whole when it returns."""

    streams = False

    def __init__(self, address: str | None, resources: Resources):
        try:
            import ray
        except ImportError:
            raise CapgapError("--executor ray needs Ray: pip install -e '.[ray]' (or pip install ray)") from None
        self.ray = ray
        if address:
            _check_reachable(address)
        env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
        try:
            ray.init(address=address, runtime_env={"env_vars": env}, log_to_driver=False, include_dashboard=False,
                     ignore_reinit_error=True, logging_level=logging.WARNING)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise CapgapError(f"cannot join the Ray cluster at {address or 'a new local one'} "
                              f"({str(e).splitlines()[0][:200]}); start it with `ray start --head` and pass its "
                              "address with --ray-address") from None
        gpus = resources.gpus if resources.gpus is not None else min(1.0, ray.cluster_resources().get("GPU", 0.0))
        self.cpus, self.gpus = resources.cpus, gpus
        self._remotes: dict[Callable, object] = {}

    @property
    def options(self) -> dict:
        """The resource request of a one-device job."""
        return {"num_cpus": self.cpus, "num_gpus": self.gpus, "max_retries": 0}

    def submit(self, fn: Callable, job, gpus: float = 1.0, **callbacks):
        """Submit `fn(job)` asking for `gpus` times the per-job GPUs (a training job of several processes)."""
        if fn not in self._remotes:
            self._remotes[fn] = self.ray.remote(fn)
        return self._remotes[fn].options(**{**self.options, "num_gpus": self.gpus * gpus}).remote(job), job

    def results(self, submitted: list) -> Iterator[Outcome]:
        jobs = {ref: job for ref, job in submitted}
        pending = list(jobs)
        while pending:
            (ready,), pending = self.ray.wait(pending, num_returns=1)
            try:
                yield jobs[ready], self.ray.get(ready), None
            except self.ray.exceptions.RayTaskError as e:  # re-raised as the job's own exception type
                yield jobs[ready], None, e.as_instanceof_cause()
            except self.ray.exceptions.RayError as e:  # a worker died (out of memory, a lost node)
                yield jobs[ready], None, CapgapError(f"a Ray worker was lost ({type(e).__name__}); run again: "
                                                     "finished cells are kept in the store")

    def call(self, fn: Callable, job, gpus: float = 1.0, **callbacks):
        ((_, result, error),) = list(self.results([self.submit(fn, job, gpus)]))
        if error is not None:
            raise error
        return result

    def decide(self, dtype: str) -> Precision:
        """The precision jobs run in, decided on a worker with a job's resources."""
        return self.call(decide, dtype)

    def engine(self, backend: str) -> str:
        """The engine a backend (`auto`) runs on, decided on a worker with a job's resources."""
        return self.call(engine_name, backend)

    def close(self) -> None:
        self.ray.shutdown()


Executor = LocalExecutor | RayExecutor
EXECUTORS: dict[str, Callable[[str | None, Resources], Executor]] = {
    "local": lambda address, resources: LocalExecutor(),
    "ray": RayExecutor,
}


def make_executor(name: str, address: str | None = None, resources: Resources | None = None) -> Executor:
    if name not in EXECUTORS:
        raise CapgapError(f"unknown executor '{name}'{did_you_mean(name, list(EXECUTORS))}")
    if address and name != "ray":
        raise CapgapError("--ray-address applies only with --executor ray")
    return EXECUTORS[name](address, resources or Resources())
