"""Two training workers on 127.0.0.1 (MultiWorkerMirroredStrategy): they agree, only the
chief writes the run folder, and a killed cluster resumes."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import ROOT, TRACED_ARGS


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def start_workers(args, ports, tmp_path, attempt):
    """Both workers' processes, their output going to tmp_path/worker-I-ATTEMPT.log."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    workers = []
    for index in range(len(ports)):
        env = {**os.environ, "TF_CONFIG": json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}}),
               "TF_CPP_MIN_LOG_LEVEL": "2"}
        log = open(tmp_path / f"worker-{index}-{attempt}.log", "w")
        workers.append((subprocess.Popen([sys.executable, os.path.join(ROOT, "train.py")] + args,
                                         cwd=ROOT, env=env, stdout=log,
                                         stderr=subprocess.STDOUT), log))
    return workers


def finish(workers, timeout):
    outputs = []
    for process, log in workers:
        process.wait(timeout=timeout)
        log.close()
        outputs.append((process.returncode, open(log.name).read()))
    return outputs


def saved_epoch(run):
    try:
        with np.load(os.path.join(run, "checkpoints", "state.npz")) as state:
            return int(state["epoch"])
    except (OSError, ValueError, KeyError):
        return 0


@pytest.mark.slow
def test_two_workers_agree_write_once_and_resume_after_a_kill(tmp_path, tiny_manifest):
    run = str(tmp_path / "run")
    args = TRACED_ARGS + ["--manifest", tiny_manifest, "--out-dir", run, "--strategy",
                          "multiworker", "--epochs", "6", "--steps-per-epoch", "2",
                          "--sample-every", "5"]  # a kill after epoch 2 leaves several to resume

    # 1. Train (the traced step) until the chief has checkpointed, then kill worker 1; the
    #    chief must stop (an error naming the lost worker) rather than hang, or be killed too.
    workers = start_workers(args, free_ports(2), tmp_path, 1)
    deadline = time.time() + 240
    while saved_epoch(run) < 2 and time.time() < deadline:
        assert all(p.poll() is None for p, _ in workers), finish(workers, 5)
        time.sleep(0.5)
    assert saved_epoch(run) >= 2, "the chief wrote no checkpoint"
    workers[1][0].send_signal(signal.SIGKILL)
    try:
        workers[0][0].wait(timeout=60)
    except subprocess.TimeoutExpired:
        workers[0][0].send_signal(signal.SIGKILL)
    outputs = finish(workers, 30)
    assert outputs[0][0] != 0
    assert "Traceback" not in outputs[0][1], outputs[0][1][-3000:]
    done = saved_epoch(run)

    # 2. Start both again (stepping eagerly this time, a change a resume allows, which saves
    #    tracing the step again): they resume and finish together.
    workers = start_workers(args + ["--run-eagerly"], free_ports(2), tmp_path, 2)
    (chief_status, chief), (worker_status, worker) = finish(workers, 300)
    assert chief_status == 0 and worker_status == 0, (chief[-3000:], worker[-3000:])
    assert f"resuming {run} after epoch {done}" in chief
    assert f"resuming {run} after epoch {done}" in worker  # both read the chief's checkpoint
    assert "Epoch 6/6" in chief and "Epoch 1/6" not in chief
    fingerprints = [re.search(r"weights fingerprint (\w+)", out)[1] for out in (chief, worker)]
    assert fingerprints[0] == fingerprints[1]

    # Only the chief wrote the run folder: the other worker named its scratch folder, which
    # is gone, and the run folder holds the run's files and no temporary ones.
    scratch = re.search(r"its scratch folder (\S+) is removed", worker)[1]
    assert not os.path.exists(scratch)
    assert "writes nothing to" not in chief
    leftovers = [name for _, _, names in os.walk(run) for name in names if ".tmp" in name]
    assert not leftovers
    assert saved_epoch(run) == 6
    assert os.path.exists(os.path.join(run, "final", "model.keras"))
