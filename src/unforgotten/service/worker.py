"""A worker: claim a job with a lease, screen its data, fine-tune through ``api.finetune``, gate
the result, publish or fail it. Run several, on several machines, against one store.

A heartbeat thread keeps the lease alive while the job runs; a worker that dies (kill -9, a lost
machine) stops renewing it, and once it expires another worker claims the job and resumes the
training from its last checkpoint (``train/checkpoint.py``: weights, optimizer, schedule, RNG
and data position, so the resumed run continues exactly). Cancel and pause reach a running job
through the heartbeat; it stops at its next step with a checkpoint kept.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from ..errors import DataError, UserInputError
from ..outdir import OutputInUse
from .blobs import Blobs
from .gate import evaluate_gate
from .jobspec import run_config
from .screening import describe, screen
from .settings import ALIGNED, ServiceConfig
from .store import CANCELLED, FAILED, PAUSED, QUEUED, RUNNING, SUCCEEDED, VALIDATING, FileRow, JobRow, ModelRow, Store, new_id, now

log = logging.getLogger("unforgotten.worker")


class LeaseLost(Exception):
    """Another worker holds the job now (this one stalled past its lease): touch nothing more."""


class Heartbeat(threading.Thread):
    def __init__(self, store: Store, job_id: str, worker: str, lease_s: float, every_s: float):
        super().__init__(daemon=True, name=f"heartbeat-{job_id}")
        self.store, self.job_id, self.worker, self.lease_s, self.every_s = store, job_id, worker, lease_s, every_s
        self.stop = threading.Event()
        self.lost = self.cancel = self.pause = False

    def run(self) -> None:
        while not self.stop.wait(self.every_s):
            try:
                row = self.store.heartbeat(self.job_id, self.worker, self.lease_s)
            except Exception:  # noqa: BLE001 - a store blip: try again next beat; the lease covers it
                log.exception("heartbeat failed")
                continue
            if row is None:
                self.lost = True
                return
            self.cancel, self.pause = row.cancel_requested, row.pause_requested


def trained_tokens(train_log: Path) -> int:
    """Tokens trained on, each step counted once even when a crash made the log repeat steps."""
    per_step: dict[int, int] = {}
    prev: dict[str, Any] | None = None
    for line in train_log.read_text().splitlines() if train_log.is_file() else []:
        rec = json.loads(line)
        same_segment = prev is not None and rec["step"] == prev["step"] + 1 and rec["tokens"] >= prev["tokens"]
        per_step[rec["step"]] = rec["tokens"] - prev["tokens"] if same_segment else rec["tokens"]
        prev = rec
    return sum(per_step.values())


class Worker:
    def __init__(self, settings: ServiceConfig, store: Store | None = None, name: str | None = None):
        self.settings = settings
        self.store = store or Store(settings.db_url)
        self.blobs = Blobs(settings.data_dir)
        self.template = settings.template()
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{new_id('w')[-6:]}"
        self._sources: dict[str, str] = {}
        self.shutdown = threading.Event()  # set on SIGTERM: the running job checkpoints and goes back to the queue

    # ------------------------------------------------------------------ loop
    def run(self, stop: threading.Event | None = None, max_jobs: int | None = None) -> int:
        """Work until ``stop`` is set (or ``max_jobs`` were processed); returns how many were."""
        stop = stop or threading.Event()
        done = 0
        while not stop.is_set() and (max_jobs is None or done < max_jobs):
            if self.run_one():
                done += 1
            else:
                stop.wait(self.settings.poll_s)
        return done

    def run_one(self) -> bool:
        job = self.store.claim(self.name, self.settings.lease_s)
        if job is None:
            return False
        log.info("%s claimed %s (%s, attempt %d)", self.name, job.id, job.status, job.attempts)
        hb = Heartbeat(self.store, job.id, self.name, self.settings.lease_s, self.settings.heartbeat_s)
        hb.start()
        try:
            if job.attempts > self.settings.max_attempts:
                self._fail(job, "worker_crashed", f"The job stopped its worker {job.attempts - 1} times; giving up.")
            elif job.status == VALIDATING:
                self._validate(job, hb)
            else:
                self._train(job, hb)
        except LeaseLost:
            log.warning("%s lost the lease on %s; another worker has it", self.name, job.id)
        except OutputInUse:
            # The job's previous worker stalled past its lease but still trains it: leave the job to
            # it, and claimable again once this lease runs out (the stalled one will have stopped).
            log.warning("%s: %s is still being trained elsewhere; backing off", self.name, job.id)
            self.store.update_job(job.id, self.name, lease_expires=time.time() + self.settings.lease_s)
        except DataError as e:
            self._fail(job, "invalid_training_file", str(e))
        except UserInputError as e:
            self._fail(job, "invalid_request", str(e))
        except Exception as e:  # noqa: BLE001 - the job fails; the worker lives on
            self.job_dir(job).mkdir(parents=True, exist_ok=True)
            (self.job_dir(job) / "worker_error.log").write_text(traceback.format_exc())
            log.exception("job %s failed", job.id)
            self._fail(job, "internal_error", f"{type(e).__name__}: {e}")
        finally:
            hb.stop.set()
        return True

    def job_dir(self, job: JobRow) -> Path:
        return Path(self.settings.data_dir) / "jobs" / job.id

    # ------------------------------------------------------------------ phases
    def _validate(self, job: JobRow, hb: Heartbeat) -> None:
        """validating_files: load the upload and screen it; then queued (or failed: rejected)."""
        from ..data import load_records

        blob = self._blob(job, job.training_file)
        records = load_records(blob, format="jsonl", require_response=True)
        out = self.job_dir(job)
        out.mkdir(parents=True, exist_ok=True)
        summary: dict[str, Any] = {"enabled": False, "rows": len(records), "flagged": 0, "dropped": 0}
        kept = records
        if self.settings.screening.enabled:
            s = screen(records, self.settings.screening)
            summary = {"enabled": True, **s.summary}
            kept = s.kept
            level = "warn" if s.flagged else "info"
            self._event(job, describe(s), level=level, data={k: v for k, v in summary.items() if k != "flagged_rows"})
            if s.rejected:
                report = {"job": job.id, "screening": summary, "method": job.safety}
                return self._fail(job, "screening_rejected", describe(s), report=report, screening=summary)
            if not kept:
                return self._fail(job, "screening_rejected", "Every row was flagged; nothing left to train on.",
                                  report={"job": job.id, "screening": summary}, screening=summary)
        with open(out / "train.jsonl.tmp", "w") as f:
            for r in kept:
                f.write(json.dumps({k: v for k, v in r.items() if not k.startswith("_")}) + "\n")
        os.replace(out / "train.jsonl.tmp", out / "train.jsonl")
        if hb.cancel:
            return self._set(job, status=CANCELLED, finished_at=now(), release=True, message="Job cancelled")
        self._set(job, status=PAUSED if hb.pause else QUEUED, screening=summary, release=True,
                  message="Job paused" if hb.pause else "Files validated; job queued")

    def _train(self, job: JobRow, hb: Heartbeat) -> None:
        from .. import api
        from ..train import checkpoint
        from ..train.loop import TrainingStopped

        out = self.job_dir(job)
        data_path = out / "train.jsonl"
        n_records = sum(1 for _ in open(data_path))
        cfg = run_config(self.settings, self.template, job, data_path, out, n_records)
        ft_dir = out / "finetune"
        resume_from = checkpoint.latest(ft_dir)
        done = (ft_dir / "train_summary.json").is_file()
        if done:
            msg = "Training had finished before the last worker stopped; running the safety gate"
        elif resume_from is not None:
            step = json.loads((resume_from / "state.json").read_text())["step"]
            self._backfill(job, ft_dir, step)
            msg = f"Resuming fine-tuning from checkpoint at step {step}"
        else:
            msg = f"Fine-tuning started ({'+'.join(cfg.train.methods)}, {n_records} rows)"
        self._set(job, status=RUNNING, message=msg, pause_requested=False)
        source = self._source(job.model)
        if not done:
            step_times: list[float] = []

            def on_step(ctx) -> None:
                if hb.lost:
                    raise LeaseLost
                step_times.append(time.time())
                rec = ctx.last_record
                per_step = (step_times[-1] - step_times[0]) / (len(step_times) - 1) if len(step_times) > 1 else None
                eta = int(time.time() + per_step * (ctx.total_steps - ctx.step)) if per_step else None
                if not self.store.update_job(job.id, self.name, step=ctx.step, total_steps=ctx.total_steps,
                                             estimated_finish=eta, event=self._step_event(ctx.step, ctx.total_steps, rec)):
                    raise LeaseLost
                stopping = hb.cancel or hb.pause or self.shutdown.is_set()
                every = cfg.train.save_every
                if ctx.step < ctx.total_steps and (stopping or (every and ctx.step % every == 0)):
                    self.store.add_checkpoint(job.id, ctx.step, {"step": ctx.step, "train_loss": rec.get("loss")})
                ctx.stop_requested = stopping

            try:
                api.finetune(cfg, model_source=source, resume=resume_from is not None, progress=False, on_step=on_step)
            except TrainingStopped as e:
                if hb.cancel:
                    return self._set(job, status=CANCELLED, finished_at=now(), estimated_finish=None, release=True,
                                     message=f"Job cancelled at step {e.step}; checkpoint kept")
                if not hb.pause:  # this worker is shutting down: another one continues the job
                    return self._set(job, status=QUEUED, estimated_finish=None, release=True,
                                     message=f"Worker stopped at step {e.step}; checkpoint kept; job queued again")
                return self._set(job, status=PAUSED, estimated_finish=None, release=True,
                                 message=f"Job paused at step {e.step}; checkpoint kept")
        summary = json.loads((ft_dir / "train_summary.json").read_text())
        tokens = trained_tokens(ft_dir / "train_log.jsonl")
        weights = Path(summary["weights"])
        report: dict[str, Any] = {
            "job": job.id, "model": job.model, "method": job.safety, "screening": job.screening,
            "training": {"steps": summary["steps"], "final_loss": summary["final_loss"], "trained_tokens": tokens,
                         "resumed_from_step": summary["resumed_from"]},
        }
        self._set(job, trained_tokens=tokens, estimated_finish=None, message=f"Training done: {summary['steps']} steps, "
                  f"final loss {summary['final_loss']:.4f}")
        if self.settings.gate.enabled:
            self._event(job, "Safety gate: evaluating the fine-tuned model")
            adapter = weights if weights.name == "adapter" else None
            gate = evaluate_gate(self.settings.gate, cfg, model_source=source if adapter else str(weights),
                                 adapter=adapter, output_dir=out / "gate", label=job.id)
            report["gate"] = gate
            verdict = (f"Safety gate: ASR {gate['asr']:.3f} (95% CI {gate['asr_ci'][0]:.3f}-{gate['asr_ci'][1]:.3f}, "
                       f"judge {gate['judge']}, {gate['worst_set']}) vs threshold {gate['threshold']:.3f}")
            if not gate["passed"]:
                return self._fail(job, "safety_gate", verdict + ": the model is not published", report=report)
            self._event(job, verdict + ": passed", data={k: gate[k] for k in ("asr", "asr_ci", "threshold", "judge")})
        if hb.lost:
            raise LeaseLost
        if hb.cancel:
            return self._set(job, status=CANCELLED, finished_at=now(), release=True, message="Job cancelled")
        model_id = f"ft:{job.model}:{job.tenant}:{job.suffix or ''}:{job.id.removeprefix('ftjob-')}"
        self.store.add_model(ModelRow(id=model_id, tenant=job.tenant, job_id=job.id, base=job.model, created_at=now(),
                                      deleted=False))
        result = self._result_file(job, report)
        self._set(job, status=SUCCEEDED, fine_tuned_model=model_id, finished_at=now(), result_files=[result],
                  release=True, message=f"The job has successfully completed; model {model_id} published")

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _step_event(ctx_step: int, total: int | None, rec: dict[str, Any]) -> dict[str, Any]:
        data = {"step": ctx_step, "total_steps": total, "train_loss": rec.get("loss"), "learning_rate": rec.get("lr"),
                "tokens": rec.get("tokens"), "grad_norm": rec.get("grad_norm")}
        return {"type": "metrics", "data": data,
                "message": f"Step {ctx_step}/{total}: training loss={rec.get('loss', float('nan')):.4f}"}

    def _backfill(self, job: JobRow, ft_dir: Path, upto: int) -> None:
        """A worker killed after a checkpoint but before reporting its step: report it from the
        training log, so the job's events still list every step once."""
        seen = self.store.metric_steps(job.id)
        log_path = ft_dir / "train_log.jsonl"
        recs = [json.loads(x) for x in log_path.read_text().splitlines()] if log_path.is_file() else []
        for rec in recs:
            if rec["step"] <= upto and rec["step"] not in seen:
                self.store.update_job(job.id, self.name, event=self._step_event(rec["step"], job.total_steps, rec))
                seen.add(rec["step"])
        self.store.add_checkpoint(job.id, upto, {"step": upto, "train_loss": next(
            (r["loss"] for r in reversed(recs) if r["step"] == upto), None)})

    def _source(self, model_id: str) -> str:
        if model_id not in self._sources:
            from .. import api

            src = self.settings.models[model_id]
            self._sources[model_id] = api.starting_model(self.template, progress=False) if src == ALIGNED else src
        return self._sources[model_id]

    def _blob(self, job: JobRow, file_id: str) -> Path:
        row = self.store.get(FileRow, job.tenant, file_id)
        if row is None:
            raise DataError(f"training file {file_id} no longer exists")
        return self.blobs.path(row.sha256)

    def _event(self, job: JobRow, message: str, *, level: str = "info", data: dict | None = None) -> None:
        self.store.add_event(job.id, message, level=level, data=data)

    def _set(self, job: JobRow, *, message: str, release: bool = False, **values: Any) -> None:
        if not self.store.update_job(job.id, self.name, release=release, event={"message": message}, **values):
            raise LeaseLost

    def _result_file(self, job: JobRow, report: dict[str, Any]) -> str:
        sha, size = self.blobs.write_bytes(json.dumps(report, indent=2, default=str).encode())
        row = FileRow(id=new_id("file"), tenant=job.tenant, filename=f"{job.id}_report.json", purpose="fine-tune-results",
                      bytes=size, sha256=sha, status="processed", created_at=now(), deleted=False)
        self.store.add_file(row)
        return row.id

    def _fail(self, job: JobRow, code: str, message: str, *, report: dict | None = None, **values: Any) -> None:
        if report is not None:
            values["result_files"] = [self._result_file(job, report)]
        ok = self.store.update_job(job.id, self.name, release=True, status=FAILED, finished_at=now(),
                                   estimated_finish=None, error={"code": code, "message": message, "param": None},
                                   event={"message": f"Job failed ({code}): {message}", "level": "error"}, **values)
        if not ok:
            raise LeaseLost


def main_loop(settings: ServiceConfig) -> None:
    """``unforgotten worker``: work until interrupted."""
    import signal

    stop = threading.Event()
    w = Worker(settings)

    def on_term(*_):  # finish cleanly: the running job checkpoints at its next step and is queued again
        stop.set()
        w.shutdown.set()

    signal.signal(signal.SIGTERM, on_term)
    log.info("worker %s polling %s", w.name, settings.db_url.split("@")[-1])
    try:
        w.run(stop)
    except KeyboardInterrupt:
        pass
