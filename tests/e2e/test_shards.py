"""The suite's own sharding (conftest.py): no file may fall out of every
shard, a file kept apart must exist, and shards run side by side must
never probe the same listening port."""

import subprocess
import sys
from pathlib import Path

import conftest

HERE = Path(__file__).resolve().parent
# More shards than tests/meson.build runs, and the most the port ranges
# allow (conftest.py).
MAX_SHARDS = 7


def test_every_file_is_in_exactly_one_shard():
    files = {p.name for p in HERE.glob("test_*.py")}
    # A renamed file of ALONE would silently join a parallel shard.
    assert conftest.ALONE <= files, conftest.ALONE - files
    shared = files - conftest.ALONE
    for n in range(1, MAX_SHARDS + 1):
        shards = conftest.shard_files(shared, n)
        assert len(shards) == n
        assert set().union(*shards) == shared, n
        assert sum(map(len, shards)) == len(shared), "a file twice: %d" % n
        if n <= len(shared):
            assert all(shards), "an empty shard of %d" % n


# Run in a fresh process: conftest picks its range when imported, from
# SERAI_E2E_SHARD, so each shard's import is redone with its value.
PROBE = """
import importlib, os, sys
import conftest
for shard in sys.argv[1:]:
    os.environ["SERAI_E2E_SHARD"] = shard
    importlib.reload(conftest)
    print(shard, conftest._port_base, *conftest.free_ports(%d))
"""
PROBED = 20


def test_shards_probe_ports_of_their_own_below_the_ephemeral_range():
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        ephemeral_low = int(f.read().split()[0])
    shards = ["alone"] + ["%d/%d" % (k, MAX_SHARDS)
                          for k in range(1, MAX_SHARDS + 1)]
    proc = subprocess.run(
        [sys.executable, "-c", PROBE % PROBED, *shards],
        cwd=HERE, capture_output=True, text=True,
        timeout=conftest.RUN_TIMEOUT, check=True)
    lines = proc.stdout.splitlines()
    assert [ln.split()[0] for ln in lines] == shards, proc.stdout
    ranges = set()
    for ln in lines:
        shard, base, *ports = ln.split()
        base, ports = int(base), set(map(int, ports))
        # Each shard's whole range, not just these ports, is its own.
        own = set(range(base, base + conftest.PORT_SPAN))
        assert not own & ranges, (shard, base)
        assert ports <= own, (shard, base, sorted(ports - own))
        assert len(ports) == PROBED, (shard, ports)
        assert max(own) < ephemeral_low, (shard, base)
        ranges |= own
