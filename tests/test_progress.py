"""Long steps print plain progress lines when stderr is not a terminal (a log file, nohup, CI)."""

import io
import re

from rich.console import Console
from rich.progress import Progress

from unforgotten.config import TrainConfig
from unforgotten.data.schema import make_record
from unforgotten.eval.generate import generate
from unforgotten.methods import build_methods
from unforgotten.models import LoraSettings, apply_lora
from unforgotten.progress import PlainProgress, progress_bar
from unforgotten.train.loop import train

from tiny import tiny_model, tiny_tokenizer


def test_plain_lines_off_a_terminal_and_rich_bar_on_one():
    assert isinstance(progress_bar(console=Console(file=io.StringIO())), PlainProgress)
    assert isinstance(progress_bar(console=Console(file=io.StringIO(), force_terminal=True)), Progress)
    assert isinstance(progress_bar(console=Console(file=io.StringIO()), disable=True), Progress)  # a no-op bar


def test_plain_progress_prints_start_throttled_updates_and_the_end():
    out = io.StringIO()
    with PlainProgress(file=out, every=3600) as bar:
        task = bar.add_task("train sft", total=10, loss="-")
        for i in range(10):
            bar.update(task, advance=1, loss=f"{1 / (i + 1):.4f}")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2  # the start and the end; the 8 steps between fall inside the interval
    assert lines[0].startswith("train sft: 0/10 (0%)")
    assert re.match(r"train sft: 10/10 \(100%\), loss 0\.1000, \d+m\d\ds elapsed$", lines[1])


def test_plain_progress_every_zero_prints_each_update_with_time_left():
    out = io.StringIO()
    with PlainProgress(file=out, every=0) as bar:
        task = bar.add_task("generate", total=4)
        bar.advance(task)
    lines = out.getvalue().splitlines()
    assert lines[1].startswith("generate: 1/4 (25%)") and "left" in lines[1]


def test_a_loop_stopped_early_still_reports_where_it_stopped():
    out = io.StringIO()
    with PlainProgress(file=out, every=3600) as bar:
        task = bar.add_task("train", total=10, completed=2)
        bar.update(task, advance=3)
    assert out.getvalue().splitlines()[-1].startswith("train: 5/10 (50%)")


def test_training_and_generation_print_progress_to_a_non_terminal_stderr(tmp_path, capsys):
    tok = tiny_tokenizer()
    model = apply_lora(tiny_model(), LoraSettings(r=4, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj"]))
    records = [make_record("write poem about cats", "the sky is blue")] * 8
    train(model, tok, records, TrainConfig(lr=1e-2, max_steps=3, batch_size=4, save_every=0), tmp_path,
          methods=build_methods(["sft"], {}), progress=True)
    err = capsys.readouterr().err
    assert re.search(r"train sft: 0/3 \(0%\)", err) and re.search(r"train sft: 3/3 \(100%\), loss \d", err)
    generate(model, tok, [[{"role": "user", "content": "write poem about cats"}]] * 3, max_new_tokens=2,
             batch_size=2, progress=True)
    assert "generate: 2/2 (100%)" in capsys.readouterr().err


def test_cached_generation_prints_progress_to_a_non_terminal_stderr(tmp_path, capsys):
    from unforgotten.eval.cache import GenerationCache, cached_generate

    prompts = [[{"role": "user", "content": f"review this movie was {w}"}] for w in ("great", "bad", "fine")]
    cached_generate(tiny_model(), tiny_tokenizer(), prompts, fingerprint="m", cache=GenerationCache(tmp_path),
                    settings={"max_new_tokens": 2, "batch_size": 2}, progress=True)
    assert "generate: 3/3 (100%)" in capsys.readouterr().err
