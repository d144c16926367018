"""Claims on work in a real store, held by real processes: live owners keep them, dead ones lose them."""

import contextlib
import shutil
import sqlite3
import subprocess
import sys
import time

from capgap.processes import HOST
from capgap.store import Store, differences, snapshot
from capgap.store.leases import LEASE_SECONDS

HOLDER = """
import sys, time
from capgap.store import Store
store = Store(sys.argv[1])
assert store.leases.claim("cell-a") is None
print("claimed", flush=True)
time.sleep(600)
"""


@contextlib.contextmanager
def holder(path):
    """A live process of this host holding the claim on "cell-a" in the store at `path` (killed at the end)."""
    Store(path).close()
    owner = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout.readline().strip() == "claimed"
        yield owner
    finally:
        owner.kill()


def test_a_live_owner_keeps_its_claim_and_a_killed_one_loses_it(tmp_path):
    path = tmp_path / "s.sqlite"
    with holder(path) as owner, Store(path) as store:
        assert store.leases.claim("cell-a") == f"{HOST} pid {owner.pid}"
        assert store.leases.claim("cell-b") is None  # other work is free
        owner.kill()
        owner.wait(30)
        assert store.leases.claim("cell-a") is None  # its owner is dead: taken over at once
    with Store(path) as store, contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT COUNT(*) FROM leases").fetchone()[0] == 0  # released on close


def test_a_sweep_removes_the_claims_of_dead_owners_only(tmp_path):
    """A run killed after storing its work, before giving back its claim, leaves a claim nobody takes over."""
    path = tmp_path / "s.sqlite"
    with holder(path) as owner, Store(path) as store:
        with contextlib.closing(sqlite3.connect(path)) as db, db:
            stale = time.time() - LEASE_SECONDS - 1
            db.execute("INSERT INTO leases VALUES ('far', 'y', 'elsewhere', 1, ?)", (stale,))
            db.execute("INSERT INTO leases VALUES ('near', 'z', 'elsewhere', 1, ?)", (time.time(),))
        assert store.leases.claim("mine") is None
        assert sorted(store.leases.sweep()) == ["far"]  # live owners (here, elsewhere, this run) keep theirs
        owner.kill()
        owner.wait(30)
        assert store.leases.sweep() == ["cell-a"]
        with contextlib.closing(sqlite3.connect(path)) as db:
            assert sorted(r[0] for r in db.execute("SELECT key FROM leases")) == ["mine", "near"]


def test_a_claim_from_another_host_expires_with_its_heartbeat(tmp_path):
    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        with contextlib.closing(sqlite3.connect(path)) as db, db:
            db.execute("INSERT INTO leases VALUES ('fresh', 'x', 'elsewhere', 1, ?)", (time.time(),))
            stale = time.time() - LEASE_SECONDS - 1
            db.execute("INSERT INTO leases VALUES ('stale', 'y', 'elsewhere', 1, ?)", (stale,))
        assert store.leases.claim("fresh") == "elsewhere pid 1"
        assert store.leases.claim("stale") is None


def test_snapshot_differences_name_a_changed_row(tmp_path):
    with Store(tmp_path / "a.sqlite") as store:
        store.study.save_study("s", {"x": 1}, {"capgap": "1"})
    shutil.copy(tmp_path / "a.sqlite", tmp_path / "b.sqlite")
    assert differences(snapshot(tmp_path / "a.sqlite"), snapshot(tmp_path / "b.sqlite")) == []
    with Store(tmp_path / "b.sqlite") as store:
        store.study.save_study("s", {"x": 2}, {"capgap": "1"})
    found = differences(snapshot(tmp_path / "a.sqlite"), snapshot(tmp_path / "b.sqlite"))
    assert [line.split(":")[0] for line in found] == ["studies", "study_configs"]
