"""The tiny grid on a real local Ray cluster gives the same store as in this process."""

import shutil
import tempfile

import pytest

from capgap.config import load_config
from capgap.store import Store, differences, snapshot
from capgap.study.executors import LocalExecutor, RayExecutor, Resources, make_executor
from capgap.study.runner import run_study
from tests.study.test_grid import capgap, write_config

ray = pytest.importorskip("ray", reason="the Ray executor needs the ray extra: pip install -e '.[ray]'")


@pytest.fixture
def local_ray(monkeypatch):
    """A 2-CPU Ray cluster of this machine, authentication off, its files in a short temporary folder (Ray's
    socket paths must stay under 108 characters) that is removed afterwards."""
    folder = tempfile.mkdtemp(prefix="cg-ray-")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _temp_dir=folder)
    yield
    ray.shutdown()
    shutil.rmtree(folder, ignore_errors=True)


def test_the_tiny_grid_gives_the_same_store_under_ray_and_locally(tiny_model, tiny_plain_model, tmp_path, local_ray):
    config = load_config(write_config(tmp_path, tiny_model, tiny_plain_model))
    with Store(tmp_path / "local.sqlite") as store:
        run_study(config, store, tmp_path / "local", LocalExecutor())
    executor = RayExecutor(None, Resources(cpus=2))  # joins the cluster above; 2 threads per job, as locally
    assert executor.options == {"num_cpus": 2, "num_gpus": 0.0, "max_retries": 0}  # no GPU here: none asked for
    with Store(tmp_path / "ray.sqlite") as store:
        run_study(config, store, tmp_path / "ray", executor)
        cells = store.study.cells("tiny")
    local, remote = snapshot(tmp_path / "local.sqlite"), snapshot(tmp_path / "ray.sqlite")
    assert differences(local, remote) == []
    assert sum(c["status"] == "done" for c in cells) >= 3 and len(remote["eval_items"]) > 20
    assert all((tmp_path / "ray" / "checkpoints" / c["train_key"]).is_dir() for c in cells if c["status"] == "done")


def test_executor_choices_are_one_error_line(tiny_model, tiny_plain_model, tmp_path):
    with pytest.raises(Exception, match=r"unknown executor 'rey' \(did you mean 'ray'\?\); valid names: local, ray"):
        make_executor("rey")
    with pytest.raises(Exception, match="--ray-address applies only with --executor ray"):
        make_executor("local", "auto")
    config = write_config(tmp_path, tiny_model, tiny_plain_model)
    done = capgap("run", str(config), "--store", str(tmp_path / "s.sqlite"), "--executor", "ray", "--ray-address",
                  "127.0.0.1:1")
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr[-2000:]
    assert "cannot join the Ray cluster at 127.0.0.1:1" in done.stderr and not (tmp_path / "s.sqlite").exists()
