"""The ``unforgotten`` command line: thin wrappers over ``unforgotten.api``.

Each command reads its arguments (``config.load_config``), calls one ``api`` function and prints
what it returned (``report.rich_table`` for result tables); the work itself is never done here.

Exit codes: 0 ok, 2 bad input or usage (bad config, data, names), 1 any other failure.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer
from rich.console import Console
from rich.markup import escape

from .errors import UnforgottenError, UserInputError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Safety-preserving fine-tuning of LLMs.")
data_app = typer.Typer(no_args_is_help=True, help="Inspect and validate data files.")
list_app = typer.Typer(no_args_is_help=True, help="List registered components.")
app.add_typer(data_app, name="data")
app.add_typer(list_app, name="list")
console = Console()
err = Console(stderr=True)

ConfigArg = Annotated[Optional[Path], typer.Argument(help="Run config (YAML). Defaults apply to anything it leaves out.")]
ConfigOpt = Annotated[Optional[Path], typer.Option("--config", "-c", help="Run config (YAML).")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", "-s", help="Override a config value: section.key=value (repeatable).")]
OutOpt = Annotated[Optional[str], typer.Option("--output-dir", "-o", help="Where outputs go (overrides output_dir).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]


def _guard(fn: Callable) -> Callable:
    """Map our errors to exit codes and one readable line instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserInputError as e:  # the message is plain text: "[sft]" is not rich markup
            err.print(f"[bold red]error:[/] {escape(str(e))}", markup=True, highlight=False)
            raise typer.Exit(2) from None
        except UnforgottenError as e:  # a failure we understand (diverged training, a full disk)
            err.print(f"[bold red]failed:[/] {escape(str(e))}", markup=True, highlight=False)
            raise typer.Exit(1) from None
        except (typer.Exit, typer.Abort):
            raise
        except KeyboardInterrupt:
            err.print("interrupted; rerun with --resume to continue from the last checkpoint")
            raise typer.Exit(1) from None
        except Exception as e:  # noqa: BLE001 - the CLI's last line of defence
            err.print(f"[bold red]failed:[/] {type(e).__name__}: {escape(str(e))}", highlight=False)
            if "--debug" in sys.argv or logging.getLogger().isEnabledFor(logging.DEBUG):
                raise
            raise typer.Exit(1) from None

    return wrapper


def _config(path: Optional[Path], overrides: Optional[list[str]], output_dir: Optional[str] = None):
    from .config import load_config

    sets = list(overrides or [])
    if output_dir:
        sets.append(f"output_dir={output_dir}")
    return load_config(path, sets)


@app.command()
@_guard
def demo(
    output_dir: OutOpt = None,
    sets: SetOpt = None,
    quiet: QuietOpt = False,
):
    """Align the embedded model, fine-tune it on poisoned starter data, and print the table."""
    from . import api
    from .report import rich_table

    cfg = _config(api.demo_config_path(), sets, output_dir)
    rows = api.run(cfg, include_base=True, progress=not quiet)
    console.print(rich_table(rows, title="unforgotten demo: SmolLM2-135M-Instruct, starter data"))
    console.print(f"Report: {Path(cfg.output_dir) / 'report.md'}")


@app.command()
@_guard
def run(config: ConfigArg = None, sets: SetOpt = None, output_dir: OutOpt = None,
        resume: Annotated[bool, typer.Option(help="Continue an interrupted fine-tune from its last checkpoint.")] = False,
        include_base: Annotated[bool, typer.Option(help="Also evaluate the model before alignment.")] = False,
        quiet: QuietOpt = False):
    """align -> finetune -> evaluate -> report, from one config."""
    from . import api
    from .report import rich_table

    cfg = _config(config, sets, output_dir)
    rows = api.run(cfg, include_base=include_base, resume=resume, progress=not quiet)
    console.print(rich_table(rows, title=cfg.name))


@app.command()
@_guard
def align(config: ConfigOpt = None, sets: SetOpt = None,
          force: Annotated[bool, typer.Option(help="Re-align even when a cached aligned model exists.")] = False,
          tax: Annotated[bool, typer.Option(help="Also evaluate base and aligned model (eval.benchmarks, eval.general) "
                                                 "and report what alignment cost, in OUTPUT_DIR/align_tax.")] = False,
          quiet: QuietOpt = False):
    """Safety-align the base model (stage 1); prints the cached aligned model's directory."""
    from . import api

    cfg = _config(config, sets)
    console.print(str(api.align(cfg, force=force, progress=not quiet)))
    if tax:
        result = api.alignment_tax(cfg, progress=not quiet)
        for key, delta in result["change"].items():
            if delta is not None:
                console.print(f"{key}: {100 * result['base'][key]:.1f} -> {100 * result['aligned'][key]:.1f} ({100 * delta:+.1f} points)")


@app.command()
@_guard
def finetune(config: ConfigOpt = None, sets: SetOpt = None, output_dir: OutOpt = None,
             method: Annotated[Optional[list[str]], typer.Option("--method", "-m", help="Method name (repeat to compose).")] = None,
             model: Annotated[Optional[str], typer.Option(help="Start from this model instead of aligning the config's.")] = None,
             resume: Annotated[bool, typer.Option(help="Continue from the last checkpoint in the output dir.")] = False,
             quiet: QuietOpt = False):
    """Fine-tune the aligned model on user data with one or more methods."""
    from . import api

    sets = list(sets or [])
    if method:
        sets.append("train.methods=[" + ",".join(method) + "]")
    result = api.finetune(_config(config, sets, output_dir), model_source=model, resume=resume, progress=not quiet)
    console.print(f"{result.steps} steps, final loss {result.final_loss:.4f}; weights: {result.weights_dir}")


@app.command()
@_guard
def evaluate(config: ConfigOpt = None, sets: SetOpt = None, output_dir: OutOpt = None,
             model: Annotated[Optional[str], typer.Option(help="Model: 'embedded', .gguf, HF dir or hub id (default: config).")] = None,
             adapter: Annotated[Optional[Path], typer.Option(help="A peft LoRA adapter directory to apply.")] = None,
             benchmark: Annotated[Optional[list[str]], typer.Option("--benchmark", "-b", help="Benchmark name or NAME=PATH (repeatable; default: config). See `list benchmarks`.")] = None,
             judge: Annotated[Optional[list[str]], typer.Option("--judge", "-j", help="Judge name (repeatable; first = primary). See `list judges`.")] = None,
             data_dir: Annotated[Optional[str], typer.Option(help="Directory with local benchmark files in upstream layout (e.g. ../shared/data).")] = None,
             limit: Annotated[Optional[int], typer.Option(help="At most this many prompts per benchmark.")] = None,
             quiet: QuietOpt = False):
    """Evaluate a model: ASR on harmful sets, over-refusal on benign ones, utility; writes a report."""
    from . import api
    from .report import rich_table

    sets = list(sets or [])
    if benchmark:
        sets.append("eval.benchmarks=" + json.dumps(benchmark))
    if judge:
        sets.append("eval.judges=" + json.dumps(judge))
    if data_dir:
        sets.append("eval.data_dir=" + json.dumps(data_dir))
    if limit is not None:
        sets.append(f"eval.limit={limit}")
    cfg = _config(config, sets, output_dir)
    label = model or cfg.model.source
    summary = api.evaluate(cfg, model_source=model, adapter=adapter, label=label, progress=not quiet)
    out = Path(cfg.output_dir) / "eval"
    api.report([(label, summary)], out, title="evaluation")
    console.print(rich_table([(label, summary)], title="evaluation"))
    cache = summary.get("cache", {})
    console.print(f"{out}: summary.json, per-sample JSONL, report.md; generation cache: "
                  f"{cache.get('hits', 0)} hits, {cache.get('misses', 0)} generated; {summary['seconds']['total']:.1f} s")


@app.command()
@_guard
def report(paths: Annotated[list[Path], typer.Argument(help="Eval or run directories (or summary.json files).")],
           output_dir: Annotated[Path, typer.Option("--output-dir", "-o", help="Where to write the report.")] = Path("report"),
           judge: Annotated[Optional[str], typer.Option(help="Judge for the tables and plot (default: the first run's primary judge).")] = None,
           title: Annotated[Optional[str], typer.Option(help="Report title.")] = None):
    """One report (tables + safety-utility plot) from several evaluated runs; nothing is regenerated."""
    from . import api
    from .report import rich_table

    written, rows = api.report(paths, output_dir, judge=judge, title=title)
    console.print(rich_table(rows, judge=judge, title=title or "report"))
    console.print("Wrote " + ", ".join(str(p) for p in written.values()))


@data_app.command("check")
@_guard
def data_check(file: Annotated[str, typer.Argument(help="A data file, or hf:NAME / starter:NAME.")],
               spec: Annotated[Optional[str], typer.Option(help="How rows become records (default: detected).")] = None,
               format: Annotated[Optional[str], typer.Option(help="File format (default: from the extension).")] = None):
    """Validate a data file: exit 0 when clean, 2 with every problem listed."""
    from . import api

    problems, s = api.check_data(file, format=format, spec=spec)
    if problems:
        for p in problems:
            console.print(f"[red]✗[/] {p}", highlight=False)
        console.print(f"{len(problems)} problem(s) in {file}")
        raise typer.Exit(2)
    console.print(f"[green]✓[/] {file}: " + ", ".join(f"{k}={v}" for k, v in s.items()), highlight=False)


@list_app.command("methods")
def list_methods():
    """Registered fine-tuning methods."""
    from rich.table import Table

    from . import api

    table = Table(title="methods (details: docs/methods.md)")
    for col in ("name", "summary", "safety data"):
        table.add_column(col)
    for m in api.list_methods():
        table.add_row(m["name"], m["summary"], "needed" if m["needs_safety_data"] else "")
    console.print(table)


@list_app.command("judges")
def list_judges():
    """Registered judges: what each decides."""
    from rich.table import Table

    from . import api

    table = Table(title="judges (eval.judges; options via eval.judge_args.NAME)")
    for col in ("name", "decides", "summary"):
        table.add_column(col)
    for j in api.list_judges():
        table.add_row(j["name"], ", ".join(j["measures"]), j["summary"])
    console.print(table)


@list_app.command("benchmarks")
def list_benchmarks():
    """Registered benchmarks: kind, metric, where the data comes from."""
    from rich.table import Table

    from . import api

    table = Table(title="benchmarks (eval.benchmarks: NAME or NAME=PATH)")
    for col in ("name", "kind", "metric", "local file (eval.data_dir)", "hub / built in", "description"):
        table.add_column(col)
    for b in api.list_benchmarks():
        table.add_row(b["name"], b["kind"], b["metric"], b["local"] or "", b["hub"] or "(NAME=PATH)", b["description"])
    console.print(table)


from .service.commands import register as _register_service  # noqa: E402 - needs _guard above

_register_service(app, _guard)


def main() -> None:
    import warnings

    # peft/accelerate call a transformers API that transformers 5 deprecated; not the user's concern
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
    app()


if __name__ == "__main__":
    main()
