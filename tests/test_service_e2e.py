"""The official openai client drives a whole job over a real socket: upload, create, poll,
events, checkpoints, list models, download the adapter and load it with plain peft."""

import io
import json
import zipfile

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("openai")

from service_kit import TASK_ROWS, client, http, jsonl, make_service, running_api, wait_status, worker_thread  # noqa: E402
from unforgotten.service.auth import create_key  # noqa: E402
from unforgotten.service.settings import load_service_config  # noqa: E402


@pytest.fixture
def service(tmp_path):
    settings = load_service_config(make_service(tmp_path))
    with running_api(settings) as (url, app):
        store = app.state.store
        keys = {t: create_key(store, t)[1] for t in ("acme", "globex")}
        yield settings, url, keys, tmp_path


def test_openai_client_runs_a_job_end_to_end(service):
    settings, url, keys, tmp = service
    c = client(url, keys["acme"])
    path = jsonl(tmp / "train.jsonl", TASK_ROWS)
    f = c.files.create(file=path.open("rb"), purpose="fine-tune")
    assert f.object == "file" and f.bytes == path.stat().st_size and f.filename == "train.jsonl" and f.status == "processed"
    assert c.files.retrieve(f.id).id == f.id
    assert c.files.content(f.id).read() == path.read_bytes()
    job = c.fine_tuning.jobs.create(training_file=f.id, model="tiny-aligned", suffix="demo", seed=7,
                                    metadata={"team": "a"}, method={"type": "supervised", "supervised": {
                                        "hyperparameters": {"n_epochs": 2, "batch_size": 4}}})
    assert job.status == "validating_files" and job.object == "fine_tuning.job" and job.seed == 7
    assert job.hyperparameters.n_epochs == 2 and job.metadata == {"team": "a"}
    with worker_thread(settings):
        done = wait_status(c, job.id)
    assert done.status == "succeeded", done.error
    assert done.fine_tuned_model.startswith("ft:tiny-aligned:acme:demo:")
    assert done.trained_tokens > 0 and done.finished_at >= done.created_at and len(done.result_files) == 1
    events = list(c.fine_tuning.jobs.list_events(job.id, limit=5))  # auto-paginates with `after`
    metrics = [e for e in events if e.type == "metrics"]
    assert len(metrics) == 4  # 8 rows, batch 4, 2 epochs
    assert {"step", "train_loss", "learning_rate", "tokens"} <= set(metrics[0].data)
    assert events[0].created_at >= events[-1].created_at  # newest first
    assert any("Screening" in e.message for e in events) and any("Safety gate" in e.message for e in events)
    ckpts = c.fine_tuning.jobs.checkpoints.list(job.id).data
    assert sorted(k.step_number for k in ckpts) == [1, 2, 3]
    assert ckpts[0].object == "fine_tuning.job.checkpoint" and ckpts[0].metrics.train_loss is not None
    report = json.loads(c.files.content(done.result_files[0]).read())
    assert report["gate"]["passed"] and report["screening"]["rows"] == 8 and report["method"]["method"] == "sft"
    ids = [m.id for m in c.models.list()]
    assert "tiny-aligned" in ids and done.fine_tuned_model in ids
    assert c.models.retrieve(done.fine_tuned_model).owned_by == "acme"
    # the adapter, in peft's layout, loads with plain peft onto the base model
    status, headers, content = http("GET", f"{url}/v1/models/{done.fine_tuned_model}/adapter", keys["acme"])
    assert status == 200 and headers["content-type"] == "application/zip"
    out = tmp / "adapter"
    zipfile.ZipFile(io.BytesIO(content)).extractall(out)
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tmp / "tiny-model")
    peft_model = PeftModel.from_pretrained(base, str(out))
    assert any("lora" in n for n, _ in peft_model.named_parameters())
    assert [j.id for j in c.fine_tuning.jobs.list()] == [job.id]


def test_cancel_stops_a_queued_job_at_once_and_a_running_one_at_its_next_step(service):
    settings, url, keys, tmp = service
    c = client(url, keys["acme"])
    f = c.files.create(file=jsonl(tmp / "t.jsonl", TASK_ROWS * 20).open("rb"), purpose="fine-tune")
    queued = c.fine_tuning.jobs.create(training_file=f.id, model="tiny-aligned")
    assert c.fine_tuning.jobs.cancel(queued.id).status == "cancelled"
    job = c.fine_tuning.jobs.create(training_file=f.id, model="tiny-aligned",
                                    hyperparameters={"n_epochs": 50, "batch_size": 1})
    with worker_thread(settings):
        wait_status(c, job.id, ("running",))
        from service_kit import wait_for

        wait_for(lambda: any(e.type == "metrics" for e in c.fine_tuning.jobs.list_events(job.id, limit=3)))
        running = wait_for(lambda: (j := c.fine_tuning.jobs.retrieve(job.id)).estimated_finish and j)
        assert running.estimated_finish >= running.created_at
        c.fine_tuning.jobs.cancel(job.id)
        done = wait_status(c, job.id, timeout=60)
    assert done.status == "cancelled" and done.fine_tuned_model is None
    messages = [e.message for e in c.fine_tuning.jobs.list_events(job.id, limit=100)]
    assert any("cancelled at step" in m for m in messages)
    assert c.fine_tuning.jobs.retrieve(queued.id).status == "cancelled"


def test_pause_and_resume_continue_from_the_checkpoint(service):
    settings, url, keys, tmp = service
    c = client(url, keys["acme"])
    f = c.files.create(file=jsonl(tmp / "t.jsonl", TASK_ROWS * 10).open("rb"), purpose="fine-tune")
    job = c.fine_tuning.jobs.create(training_file=f.id, model="tiny-aligned",
                                    hyperparameters={"n_epochs": 3, "batch_size": 1}, extra_body={"safety": {"method": "sft"}})
    with worker_thread(settings):
        wait_status(c, job.id, ("running",))
        from service_kit import wait_for

        wait_for(lambda: any(e.type == "metrics" for e in c.fine_tuning.jobs.list_events(job.id, limit=3)))
        c.fine_tuning.jobs.pause(job.id)
        paused = wait_status(c, job.id, ("paused", "succeeded"), timeout=60)
        assert paused.status == "paused"
        assert c.fine_tuning.jobs.resume(job.id).status == "queued"
        done = wait_status(c, job.id)
    assert done.status == "succeeded", done.error
    messages = [e.message for e in c.fine_tuning.jobs.list_events(job.id, limit=100)]
    assert any(m.startswith("Resuming fine-tuning from checkpoint at step") for m in messages)
    steps = {e.data["step"] for e in c.fine_tuning.jobs.list_events(job.id, limit=100) if e.type == "metrics"}
    assert steps == set(range(1, 241))  # 80 rows x 3 epochs at batch 1: every step once, none lost


def test_a_job_paused_before_screening_is_screened_after_resume(service):
    settings, url, keys, tmp = service
    c = client(url, keys["acme"])
    f = c.files.create(file=jsonl(tmp / "t.jsonl", TASK_ROWS).open("rb"), purpose="fine-tune")
    job = c.fine_tuning.jobs.create(training_file=f.id, model="tiny-aligned")
    assert c.fine_tuning.jobs.pause(job.id).status == "paused"
    assert c.fine_tuning.jobs.resume(job.id).status == "validating_files"
    with worker_thread(settings):
        done = wait_status(c, job.id)
    assert done.status == "succeeded", done.error
    assert c.fine_tuning.jobs.resume(job.id).status == "succeeded"  # resuming a finished job changes nothing
