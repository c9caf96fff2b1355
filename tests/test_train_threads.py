"""Thread policy: OMP_WAIT_POLICY=PASSIVE is in the environment before torch loads (a user's value
wins), train.num_threads defaults to the available cores, no loader workers on the CPU."""

from __future__ import annotations

import os
import subprocess
import sys

import torch

from tests.conftest import ROOT

# records OMP_WAIT_POLICY at the moment torch is first imported, then runs CODE
PROBE = """
import importlib.abc, os, sys
seen = {}
class Probe(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" and "policy" not in seen:
            seen["policy"] = os.environ.get("OMP_WAIT_POLICY")
        return None
sys.meta_path.insert(0, Probe())
%s
print("AT_TORCH_IMPORT", seen.get("policy", "torch not imported"))
print("AT_EXIT", os.environ.get("OMP_WAIT_POLICY"))
"""


def _probe(code: str, policy: str | None) -> tuple[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if policy is not None:
        env["OMP_WAIT_POLICY"] = policy
    done = subprocess.run([sys.executable, "-c", PROBE % code], cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines() if line.startswith("AT_"))
    return lines["AT_TORCH_IMPORT"], lines["AT_EXIT"]


def test_passive_wait_policy_is_set_before_torch_loads():
    # the CLI (`python -m geo_risk --help`): set, and torch not even loaded
    cli = "import runpy; sys.argv = ['geo-risk', '--help']\ntry:\n    runpy.run_module('geo_risk', run_name='__main__')\nexcept SystemExit:\n    pass"
    assert _probe(cli, None) == ("torch not imported", "PASSIVE")
    # a stage that loads torch: already set when torch is imported
    assert _probe("import geo_risk.train", None) == ("PASSIVE", "PASSIVE")
    # a user's explicit value wins
    assert _probe("import geo_risk.train", "ACTIVE") == ("ACTIVE", "ACTIVE")


def test_threads_default_to_the_available_cores_and_no_workers_on_cpu():
    from geo_risk.train import threads

    before = torch.get_num_threads()
    try:
        n, workers = threads.configure(None, None, torch.device("cpu"))
        assert n == threads.available_cores() == len(os.sched_getaffinity(0)) and torch.get_num_threads() == n
        assert workers == 0
        n, _ = threads.configure(None, None, torch.device("cpu"), world=2)
        assert n == max(1, threads.available_cores() // 2)
        assert threads.configure(1, 3, torch.device("cpu")) == (1, 3)  # explicit values win
        if threads.available_cores() > 2:
            assert threads.configure(None, None, torch.device("cuda"))[1] >= 1
        else:
            assert threads.configure(None, None, torch.device("cuda"))[1] == 0  # ≤ 2 cores: reads stay in process
    finally:
        torch.set_num_threads(before)


def test_torch_imported_first_is_warned_about():
    code = ("import logging, torch, geo_risk.train.threads as t\nlogging.basicConfig()\nt.check_wait_policy()\n"
            "import geo_risk\nprint('TOO_LATE', geo_risk.OMP_POLICY_TOO_LATE)")
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "TOO_LATE True" in done.stdout
    assert "OMP_WAIT_POLICY is unset when torch loaded" in done.stderr and "set OMP_WAIT_POLICY=PASSIVE" in done.stderr
