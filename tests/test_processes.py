"""How the `capgap` command ends (`processes.exit_process`): everything Python runs at exit that has an effect
still runs, and the exit code is the command's."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ENDING = textwrap.dedent("""
    import atexit, ctypes, sys, tempfile, threading, time
    from pathlib import Path
    from capgap.processes import exit_process

    out = Path(sys.argv[1])
    folder = tempfile.TemporaryDirectory()           # removed by its finalizer at exit
    (out / "folder").write_text(folder.name)
    atexit.register(lambda: (out / "atexit").write_text("ran"))
    print("buffered python line")                    # stdout is a pipe: block-buffered
    ctypes.CDLL(None).printf(b"buffered C line\\n")  # C's own stdout buffer
    class Teardown:  # a module global: the interpreter's teardown would call this
        def __del__(self):
            (out / "teardown").write_text("ran")
    sentinel = Teardown()
    if sys.argv[2] == "thread":
        def late():
            time.sleep(0.3)
            (out / "thread").write_text("finished")
        threading.Thread(target=late).start()
    exit_process(int(sys.argv[3]))
    (out / "after").write_text("not reached")
""")


@pytest.mark.parametrize("thread", ["none", "thread"])
def test_exit_runs_what_matters_and_keeps_the_code(tmp_path, thread):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # buffered, as a command's output is
    run = subprocess.run([sys.executable, "-c", ENDING, str(tmp_path), thread, "3"], capture_output=True, text=True,
                         timeout=60, env=env)
    assert run.returncode == 3, run.stderr
    assert "buffered python line" in run.stdout and "buffered C line" in run.stdout
    assert (tmp_path / "atexit").read_text() == "ran"
    assert not (tmp_path / "after").exists()
    assert not Path((tmp_path / "folder").read_text()).exists()  # the temporary folder's finalizer ran
    if thread == "thread":  # a running non-daemon thread finishes first: Python's own exit, teardown and all
        assert (tmp_path / "thread").read_text() == "finished" and (tmp_path / "teardown").exists()
    else:  # the quick exit: no teardown
        assert not (tmp_path / "teardown").exists()


def test_command_exit_codes_go_through_the_quick_exit(tmp_path):
    ok = subprocess.run([sys.executable, "-m", "capgap", "tasks"], capture_output=True, text=True, timeout=120)
    bad = subprocess.run([sys.executable, "-m", "capgap", "validate", str(tmp_path / "missing.yaml")],
                         capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and "arith" in ok.stdout
    assert bad.returncode == 2 and bad.stderr.startswith("capgap: error:")
