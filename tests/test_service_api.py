"""Tenant isolation per endpoint (another tenant's object is a 404, exactly like a missing one)
and bad requests (each a 4xx with OpenAI's error body, never a 500)."""

import json
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("openai")

from service_kit import TASK_ROWS, client, http, jsonl, make_service, running_api, wait_status, worker_thread  # noqa: E402
from unforgotten.service.auth import create_key  # noqa: E402
from unforgotten.service.settings import load_service_config  # noqa: E402


@pytest.fixture(scope="module")
def svc(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("svc")
    settings = load_service_config(make_service(tmp, max_upload_bytes=20_000))
    with running_api(settings) as (url, app):
        store = app.state.store
        keys = {t: create_key(store, t)[1] for t in ("acme", "globex")}
        c = client(url, keys["acme"])
        f = c.files.create(file=jsonl(tmp / "train.jsonl", TASK_ROWS).open("rb"), purpose="fine-tune")
        job = c.fine_tuning.jobs.create(training_file=f.id, model="tiny-aligned")
        with worker_thread(settings):
            job = wait_status(c, job.id)
        assert job.status == "succeeded", job.error
        yield {"url": url, "keys": keys, "file": f.id, "job": job.id, "model": job.fine_tuned_model, "tmp": tmp,
               "store": store, "result": job.result_files[0]}


def is_openai_error(status, body, expected_status):
    assert status == expected_status, (status, body)
    err = json.loads(body)["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["message"], err
    return err


# Every tenant-scoped endpoint, asked by another tenant about acme's object: a 404 indistinguishable
# from an id that never existed.
ENDPOINTS = [
    ("GET", "/v1/files/{file}"), ("GET", "/v1/files/{file}/content"), ("DELETE", "/v1/files/{file}"),
    ("GET", "/v1/files/{result}/content"),
    ("GET", "/v1/fine_tuning/jobs/{job}"), ("GET", "/v1/fine_tuning/jobs/{job}/events"),
    ("GET", "/v1/fine_tuning/jobs/{job}/checkpoints"), ("POST", "/v1/fine_tuning/jobs/{job}/cancel"),
    ("POST", "/v1/fine_tuning/jobs/{job}/pause"), ("POST", "/v1/fine_tuning/jobs/{job}/resume"),
    ("GET", "/v1/models/{model}"), ("GET", "/v1/models/{model}/adapter"), ("DELETE", "/v1/models/{model}"),
]


@pytest.mark.parametrize("method,path", ENDPOINTS)
def test_another_tenants_object_is_a_404_like_a_missing_one(svc, method, path):
    ids = {"file": svc["file"], "job": svc["job"], "model": svc["model"], "result": svc["result"]}
    theirs = http(method, svc["url"] + path.format(**ids), svc["keys"]["globex"])
    missing = http(method, svc["url"] + path.format(file="file-0", job="ftjob-0", model="ft:x:y::0", result="file-1"),
                   svc["keys"]["globex"])
    err = is_openai_error(theirs[0], theirs[2], 404)
    err_missing = is_openai_error(missing[0], missing[2], 404)
    assert err["code"] == err_missing["code"] and err["type"] == err_missing["type"]
    # and the owner still sees it (nothing was changed by the other tenant's request)
    status, _, _ = http("GET", svc["url"] + path.format(**ids).replace("/cancel", "").replace("/pause", "")
                        .replace("/resume", ""), svc["keys"]["acme"]) if method != "DELETE" else (200, None, None)
    assert status == 200


def test_lists_show_only_the_tenants_own_objects(svc):
    other = client(svc["url"], svc["keys"]["globex"])
    assert other.files.list().data == [] and other.fine_tuning.jobs.list().data == []
    assert svc["model"] not in [m.id for m in other.models.list()]
    mine = client(svc["url"], svc["keys"]["acme"])
    assert {svc["file"], svc["result"]} <= {f.id for f in mine.files.list()}
    # a cursor naming another tenant's object is refused like an unknown one
    status, _, body = http("GET", f"{svc['url']}/v1/fine_tuning/jobs?after={svc['job']}", svc["keys"]["globex"])
    is_openai_error(status, body, 400)


def test_a_job_cannot_use_another_tenants_file(svc):
    status, _, body = http("POST", f"{svc['url']}/v1/fine_tuning/jobs", svc["keys"]["globex"],
                           json_body={"model": "tiny-aligned", "training_file": svc["file"]})
    err = is_openai_error(status, body, 400)
    assert err["param"] == "training_file"
    _, _, body_missing = http("POST", f"{svc['url']}/v1/fine_tuning/jobs", svc["keys"]["globex"],
                              json_body={"model": "tiny-aligned", "training_file": "file-nope"})
    assert json.loads(body_missing)["error"]["code"] == err["code"]


def test_keys_authenticate_and_revoked_keys_stop_working(svc):
    url = svc["url"]
    is_openai_error(*http("GET", f"{url}/v1/files")[::2], 401)
    is_openai_error(*http("GET", f"{url}/v1/files", "sk-uf-wrong")[::2], 401)
    is_openai_error(*http("GET", f"{url}/v1/files", headers={"Authorization": "Basic abc"})[::2], 401)
    key_id, key = create_key(svc["store"], "initech")
    assert http("GET", f"{url}/v1/files", key)[0] == 200
    assert svc["store"].revoke_key(key_id)
    assert http("GET", f"{url}/v1/files", key)[0] == 401


def _upload(svc, content: bytes, filename="data.jsonl", purpose="fine-tune", key=None):
    boundary = "----unforgottenboundary"
    parts = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\n{purpose}\r\n"
             f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
             "Content-Type: application/octet-stream\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
    return http("POST", f"{svc['url']}/v1/files", key or svc["keys"]["acme"], data=parts,
                headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})


def test_a_bad_file_is_rejected_at_upload_with_line_and_field(svc):
    good = json.dumps(TASK_ROWS[0])
    bad = json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": 5}]})
    status, _, body = _upload(svc, f"{good}\n{bad}\n".encode(), filename="mine.jsonl")
    err = is_openai_error(status, body, 400)
    assert "mine.jsonl line 2" in err["message"] and 'messages[1].content' in err["message"], err["message"]
    assert "/tmp" not in err["message"] and "svc/" not in err["message"]  # no server paths leak
    err = is_openai_error(*_upload(svc, b"{not json\n")[::2], 400)
    assert "line 1" in err["message"]
    prompt_only = json.dumps({"messages": [{"role": "user", "content": "hi"}]})
    assert "assistant" in is_openai_error(*_upload(svc, prompt_only.encode())[::2], 400)["message"]
    is_openai_error(*_upload(svc, b"")[::2], 400)
    is_openai_error(*_upload(svc, good.encode(), purpose="assistants")[::2], 400)
    err = is_openai_error(*_upload(svc, (good + "\n").encode() * 400)[::2], 413)
    assert err["code"] == "file_too_large"
    # nothing of the rejected uploads is left behind, visible or not
    assert len(client(svc["url"], svc["keys"]["acme"]).files.list(purpose="fine-tune").data) == 1
    assert list((svc["tmp"] / "svc" / "tmp").iterdir()) == []


BAD_JOBS = [
    ({"model": "tiny-aligned"}, "training_file"),
    ({"model": "gpt-99", "training_file": "{file}"}, "model"),
    ({"model": "tiny-aligned", "training_file": "{file}", "method": {"type": "dpo"}}, "method.type"),
    ({"model": "tiny-aligned", "training_file": "{file}", "method": {"type": "magic"}}, "method.type"),
    ({"model": "tiny-aligned", "training_file": "{file}", "hyperparameters": {"n_epochs": 0}}, "hyperparameters.n_epochs"),
    ({"model": "tiny-aligned", "training_file": "{file}", "hyperparameters": {"batch_size": "big"}}, "hyperparameters.batch_size"),
    ({"model": "tiny-aligned", "training_file": "{file}", "hyperparameters": {"learning_rate_multiplier": -1}},
     "hyperparameters.learning_rate_multiplier"),
    ({"model": "tiny-aligned", "training_file": "{file}", "safety": {"method": "sftt"}}, "safety"),
    ({"model": "tiny-aligned", "training_file": "{file}", "safety": {"method": "der", "args": {"nonsense": 1}}}, "safety"),
    ({"model": "tiny-aligned", "training_file": "{file}", "suffix": "has spaces!"}, "suffix"),
    ({"model": "tiny-aligned", "training_file": "{file}", "seed": -1}, "seed"),
    ({"model": "tiny-aligned", "training_file": "{file}", "metadata": {"k": 1}}, "metadata.k"),
    ({"model": "tiny-aligned", "training_file": "{file}", "unknown_field": 1}, "unknown_field"),
    ({"model": "tiny-aligned", "training_file": "{file}", "validation_file": "file-x"}, "validation_file"),
    ({"model": "tiny-aligned", "training_file": "{result}"}, "training_file"),
]


@pytest.mark.parametrize("body,param", BAD_JOBS)
def test_bad_job_requests_fail_at_creation_naming_the_field(svc, body, param):
    body = json.loads(json.dumps(body).replace("{file}", svc["file"]).replace("{result}", svc["result"]))
    status, _, raw = http("POST", f"{svc['url']}/v1/fine_tuning/jobs", svc["keys"]["acme"], json_body=body)
    err = is_openai_error(status, raw, 400)
    assert err["param"] is not None and err["param"].startswith(param), err


@pytest.mark.parametrize("method,path,kwargs,expected", [
    ("POST", "/v1/fine_tuning/jobs", {"data": b"{not json", "headers": {"Content-Type": "application/json"}}, 400),
    ("POST", "/v1/fine_tuning/jobs", {"json_body": [1, 2]}, 400),
    ("POST", "/v1/files", {"json_body": {"purpose": "fine-tune"}}, 400),
    ("GET", "/v1/fine_tuning/jobs?limit=0", {}, 400),
    ("GET", "/v1/fine_tuning/jobs?limit=abc", {}, 400),
    ("GET", "/v1/files?order=sideways", {}, 400),
    ("GET", "/v1/no/such/route", {}, 404),
    ("PUT", "/v1/files", {}, 405),
    ("GET", "/v1/fine_tuning/jobs/ftjob-x/events?after=ftevent-x", {}, 404),
])
def test_malformed_requests_get_4xx_openai_errors(svc, method, path, kwargs, expected):
    status, _, body = http(method, svc["url"] + path, svc["keys"]["acme"], **kwargs)
    is_openai_error(status, body, expected)


def test_health_and_metrics(svc):
    assert json.loads(http("GET", svc["url"] + "/healthz")[2]) == {"status": "ok"}
    text = http("GET", svc["url"] + "/metrics")[2].decode()
    assert "unforgotten_queue_depth 0" in text and 'unforgotten_jobs{status="succeeded"} 1' in text
    assert "unforgotten_train_steps_total 2" in text  # 8 rows / batch 4


def test_keys_cli_creates_lists_and_revokes(tmp_path):
    cfg = make_service(tmp_path)
    from typer.testing import CliRunner

    from unforgotten.cli import app

    runner = CliRunner()

    def run(*args):
        return runner.invoke(app, ["keys", *args, "-c", str(cfg)])

    out = run("create", "acme", "--name", "ci")
    assert out.exit_code == 0, out.output
    key_id = out.stdout.split("key_id:")[1].split()[0]
    key = out.stdout.split("key:")[1].split()[0]
    listed = run("list").stdout
    assert key_id in listed and "active" in listed and key not in listed
    store_file = (tmp_path / "svc" / "service.db").read_bytes()
    assert key.encode() not in store_file  # only the hash is stored
    assert run("revoke", key_id).exit_code == 0
    assert "revoked" in run("list").stdout
    assert run("revoke", key_id).exit_code == 2
    assert run("create", "bad tenant!").exit_code == 2


def test_a_declared_oversized_upload_is_refused_before_its_body_is_read(svc):
    import socket
    from urllib.parse import urlparse

    u = urlparse(svc["url"])
    with socket.create_connection((u.hostname, u.port), timeout=10) as s:
        s.sendall((f"POST /v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {svc['keys']['acme']}\r\n"
                   "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 900000000\r\n\r\n").encode())
        reply = _read_response(s)
    assert reply.startswith("HTTP/1.1 413") and '"code":"file_too_large"' in reply


def _read_response(s) -> str:
    """One whole HTTP response: headers and body often arrive in separate packets, so one recv
    may hold only the headers."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            return data.decode()
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), None)
    while length is not None and len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    return (head + b"\r\n\r\n" + body).decode()


def test_an_upload_cut_off_midway_leaves_nothing_visible(svc):
    import socket
    from urllib.parse import urlparse

    u = urlparse(svc["url"])
    c = client(svc["url"], svc["keys"]["globex"])
    before = {f.id for f in c.files.list()}
    head = json.dumps(TASK_ROWS[0]) + "\n"
    body = (f"--b\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nfine-tune\r\n--b\r\n"
            f"Content-Disposition: form-data; name=\"file\"; filename=\"cut.jsonl\"\r\n\r\n{head * 20}").encode()
    with socket.create_connection((u.hostname, u.port), timeout=10) as s:
        s.sendall((f"POST /v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {svc['keys']['globex']}\r\n"
                   f"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: {len(body) + 5000}\r\n\r\n").encode()
                  + body)  # the connection drops before the promised rest arrives
    import time

    time.sleep(0.5)
    assert {f.id for f in c.files.list()} == before
    assert list((svc["tmp"] / "svc" / "tmp").iterdir()) == []


def test_concurrent_uploads_from_several_tenants_lose_nothing_and_share_content(svc, tmp_path):
    import threading

    same = (json.dumps(TASK_ROWS[1]) + "\n").encode()
    made: dict[str, list[str]] = {"acme": [], "globex": []}
    errors = []

    def upload(tenant, i):
        try:
            c = client(svc["url"], svc["keys"][tenant])
            content = same if i % 2 else same + json.dumps(chat_row(f"{tenant} {i}")).encode() + b"\n"
            made[tenant].append(c.files.create(file=(f"{i}.jsonl", content), purpose="fine-tune").id)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=upload, args=(t, i)) for t in made for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for tenant, ids in made.items():
        listed = {f.id for f in client(svc["url"], svc["keys"][tenant]).files.list(limit=100)}
        assert set(ids) <= listed and len(ids) == 8
    # identical content is one blob; deleting one tenant's copy leaves the other's readable
    acme, globex = client(svc["url"], svc["keys"]["acme"]), client(svc["url"], svc["keys"]["globex"])
    a_same = next(i for i in made["acme"] if acme.files.content(i).read() == same)
    g_same = next(i for i in made["globex"] if globex.files.content(i).read() == same)
    acme.files.delete(a_same)
    assert globex.files.content(g_same).read() == same
    for c, ids in ((acme, made["acme"]), (globex, made["globex"])):  # leave the module's other tests as they were
        for i in ids:
            if i != a_same:
                c.files.delete(i)


def chat_row(text):
    return {"messages": [{"role": "user", "content": text}, {"role": "assistant", "content": "ok"}]}
