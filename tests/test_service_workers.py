"""Workers against a real store: a worker killed with -9 leaves its job to another worker, which
re-claims it after the lease expires and RESUMES from the last checkpoint -- ending with the same
adapter an uninterrupted run makes. Real processes, on SQLite and on a real PostgreSQL server."""

import os
import signal
import time

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("openai")

from pg_kit import postgres_server, why_unavailable  # noqa: E402
from service_kit import (TASK_ROWS, client, jsonl, make_service, running_api, wait_for, wait_status,  # noqa: E402
                         worker_process)
from unforgotten.service.auth import create_key  # noqa: E402
from unforgotten.service.settings import load_service_config  # noqa: E402
from unforgotten.service.store import Store  # noqa: E402


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        yield None  # the default: <data_dir>/service.db
        return
    reason = why_unavailable()
    if reason:
        pytest.skip(reason)
    with postgres_server() as url:
        yield url


def _adapter(tmp, job_id):
    from safetensors.torch import load_file

    return load_file(str(tmp / "svc" / "jobs" / job_id / "finetune" / "adapter" / "adapter_model.safetensors"))


def test_killed_worker_job_is_reclaimed_and_resumed_exactly(tmp_path, database_url):
    cfg_path = make_service(tmp_path, database_url=database_url, gate={"enabled": False},
                            screening={"enabled": False})
    settings = load_service_config(cfg_path)
    with running_api(settings) as (url, app):
        c = client(url, create_key(app.state.store, "acme")[1])
        f = c.files.create(file=jsonl(tmp_path / "t.jsonl", TASK_ROWS * 2).open("rb"), purpose="fine-tune")
        spec = dict(training_file=f.id, model="tiny-aligned", seed=3, hyperparameters={"n_epochs": 2, "batch_size": 1})
        job = c.fine_tuning.jobs.create(**spec)
        first = worker_process(cfg_path, tmp_path / "worker1.log")
        try:
            wait_for(lambda: len(c.fine_tuning.jobs.checkpoints.list(job.id, limit=100).data) >= 3, timeout=300,
                     every=0.05, what="three checkpoints")
            os.kill(first.pid, signal.SIGKILL)
            first.wait(timeout=30)
            killed_at = c.fine_tuning.jobs.retrieve(job.id)
            assert killed_at.status == "running"
            second = worker_process(cfg_path, tmp_path / "worker2.log")
            try:
                done = wait_status(c, job.id, timeout=300)
                assert done.status == "succeeded", (done.error, (tmp_path / "worker2.log").read_text()[-2000:])
                messages = [e.message for e in c.fine_tuning.jobs.list_events(job.id, limit=100)]
                resumed = [m for m in messages if m.startswith("Resuming fine-tuning from checkpoint at step")]
                assert len(resumed) == 1 and int(resumed[0].rsplit(" ", 1)[1]) >= 3, messages[:5]
                steps = {e.data["step"] for e in c.fine_tuning.jobs.list_events(job.id, limit=100) if e.type == "metrics"}
                assert steps == set(range(1, 33))  # 16 rows x 2 epochs: no step lost
                # the same job run without a crash ends with the very same adapter
                again = c.fine_tuning.jobs.create(**spec)
                again = wait_status(c, again.id, timeout=300)
                assert again.status == "succeeded"
            finally:
                second.terminate()
                second.wait(timeout=30)
        finally:
            if first.poll() is None:
                first.kill()
        a, b = _adapter(tmp_path, job.id), _adapter(tmp_path, again.id)
        assert a.keys() == b.keys()
        for k in a:
            assert (a[k] - b[k]).abs().max() <= 1e-6, k
        assert done.trained_tokens == again.trained_tokens


def test_two_workers_never_claim_the_same_job(tmp_path, database_url):
    cfg_path = make_service(tmp_path, database_url=database_url)
    settings = load_service_config(cfg_path)
    store = Store(settings.db_url)
    from unforgotten.service.store import VALIDATING, JobRow, new_id, now

    ids = []
    for i in range(30):
        job = JobRow(id=new_id("ftjob"), tenant="t", status=VALIDATING, model="tiny-aligned", training_file="file-x",
                     seed=i, hyperparameters={}, method={}, safety={}, created_at=now(), result_files=[], attempts=0,
                     cancel_requested=False, pause_requested=False, step=0)
        store.add_job(job, "created")
        ids.append(job.id)
    import threading

    claimed: dict[str, list[str]] = {}
    lock = threading.Lock()

    def claimer(name):
        s = Store(settings.db_url, run_migrations=False)
        while (job := s.claim(name, lease_s=60)) is not None:
            with lock:
                claimed.setdefault(job.id, []).append(name)

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(claimed) == sorted(ids)
    assert all(len(v) == 1 for v in claimed.values()), {k: v for k, v in claimed.items() if len(v) > 1}
    # while the leases are live nothing is claimable; once one expires, exactly that job is
    assert store.claim("late", lease_s=60) is None
    store.update_job(ids[3], None, lease_expires=time.time() - 1)
    again = store.claim("late", lease_s=60)
    assert again is not None and again.id == ids[3] and again.attempts == 2
    assert store.claim("later", lease_s=60) is None


def test_serve_runs_api_and_workers_and_sigterm_requeues_the_running_job(tmp_path):
    """`unforgotten serve --workers 1` as a real process; SIGTERM stops it cleanly: its worker
    checkpoints the running job at the next step and queues it again for another worker."""
    import subprocess
    import sys

    from service_kit import REPO, free_port, http, worker_thread

    cfg_path = make_service(tmp_path, gate={"enabled": False}, screening={"enabled": False})
    settings = load_service_config(cfg_path)
    key = create_key(Store(settings.db_url), "acme")[1]
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    log_path = tmp_path / "serve.log"
    proc = subprocess.Popen([sys.executable, "-m", "unforgotten.cli", "serve", "-c", str(cfg_path), "--workers", "1",
                             "--port", str(port)], stdout=open(log_path, "w"), stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: proc.poll() is not None or (_up(port) and http("GET", url + "/healthz")[0] == 200),
                 timeout=300, what="serve to answer /healthz")
        assert proc.poll() is None, log_path.read_text()[-3000:]
        c = client(url, key)
        f = c.files.create(file=jsonl(tmp_path / "t.jsonl", TASK_ROWS * 4).open("rb"), purpose="fine-tune")
        quick = wait_status(c, c.fine_tuning.jobs.create(training_file=f.id, model="tiny-aligned",
                                                         hyperparameters={"batch_size": 8}).id, timeout=300)
        assert quick.status == "succeeded", (quick.error, log_path.read_text()[-3000:])
        job = c.fine_tuning.jobs.create(training_file=f.id, model="tiny-aligned",
                                        hyperparameters={"n_epochs": 3, "batch_size": 1})
        wait_for(lambda: len(c.fine_tuning.jobs.checkpoints.list(job.id, limit=100).data) >= 2, timeout=300,
                 every=0.05, what="two checkpoints")
        proc.terminate()
        assert proc.wait(timeout=90) == 0, log_path.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    with running_api(settings) as (url, _app):
        c = client(url, key)
        stopped = c.fine_tuning.jobs.retrieve(job.id)
        assert stopped.status == "queued", log_path.read_text()[-3000:]
        assert any(e.message.startswith("Worker stopped at step") for e in c.fine_tuning.jobs.list_events(job.id, limit=10))
        with worker_thread(settings):
            done = wait_status(c, job.id)
        assert done.status == "succeeded"
        steps = [e.data["step"] for e in c.fine_tuning.jobs.list_events(job.id, limit=100) if e.type == "metrics"]
        assert sorted(steps) == list(range(1, 97))  # 32 rows x 3 epochs, each step reported once


def _up(port):
    import socket

    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False
