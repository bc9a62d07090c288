"""Every number in a config field or a method argument goes through one check (bounds.py) with one
message shape, ``<section>.<field> must be <what> (got <value>)``, and bad values exit 2 from the CLI."""

import dataclasses
import re
import typing

import pytest
from typer.testing import CliRunner

from unforgotten.bounds import Bounds, bounded, check_fields, check_number, numeric_kind, one_of
from unforgotten.cli import app
from unforgotten.config import RunConfig, load_config
from unforgotten.errors import ConfigError
from unforgotten.methods import METHODS, build_methods


def numeric_paths(cls, prefix=""):
    """(dotted path, int or float, optional) for every numeric field under dataclass ``cls``."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            yield from numeric_paths(tp, f"{prefix}{f.name}.")
        elif (kind := numeric_kind(tp)) is not None:
            yield f"{prefix}{f.name}", kind[0], kind[1]


CONFIG_NUMBERS = list(numeric_paths(RunConfig))


def test_the_walk_finds_the_numbers():
    paths = {p for p, _, _ in CONFIG_NUMBERS}
    assert {"train.lr", "train.epochs", "align.train.lr", "data.poison_ratio", "eval.top_p", "model.lora.r",
            "align.lora.dropout", "eval.code_timeout_s"} <= paths
    assert len(CONFIG_NUMBERS) > 30


@pytest.mark.parametrize("path", [p for p, _, _ in CONFIG_NUMBERS])
@pytest.mark.parametrize("raw", [".inf", ".nan", "-.inf", "true", "abc", "[1]"])
def test_every_config_number_refuses_non_finite_and_non_numbers(path, raw):
    with pytest.raises(ConfigError, match=rf"^{re.escape(path)} must be (an integer|a finite number)\b.*\(got .+\)$"):
        load_config(None, [f"{path}={raw}"])


def test_ranges_are_checked_with_the_field_named():
    cases = {
        "train.lr=0": "train.lr must be a finite number > 0 (got 0.0)",
        "train.lr=.inf": "train.lr must be a finite number > 0 (got inf)",
        "train.lr=.nan": "train.lr must be a finite number > 0 (got nan)",
        "train.epochs=-1": "train.epochs must be a finite number > 0 (got -1.0)",
        "train.batch_size=0": "train.batch_size must be an integer >= 1 (got 0)",
        "train.batch_size=2.5": "train.batch_size must be an integer >= 1 (got 2.5)",
        "train.max_steps=0": "train.max_steps must be an integer >= 1 or null (got 0)",
        "align.train.warmup_ratio=1.5": "align.train.warmup_ratio must be a finite number in [0, 1] (got 1.5)",
        "data.poison_ratio=1": "data.poison_ratio must be a finite number in [0, 1) (got 1.0)",
        "data.safety_size=-1": "data.safety_size must be an integer >= 0 (got -1)",
        "eval.top_p=0": "eval.top_p must be a finite number in (0, 1] (got 0.0)",
        "model.lora.dropout=1": "model.lora.dropout must be a finite number in [0, 1) (got 1.0)",
        "eval.limits={x: 0}": "eval.limits.x must be an integer >= 1 (got 0)",
        "train.seed=.inf": "train.seed must be an integer (got inf)",
    }
    assert_refused_with(cases)



def assert_refused_with(cases: dict[str, str]) -> None:
    """Each ``--set`` override is refused at load with exactly its message."""
    for override, message in cases.items():
        with pytest.raises(ConfigError) as e:
            load_config(None, [override])
        assert str(e.value) == message, override


def test_choices_and_bools_use_the_same_shape():
    cases = {
        "align.train.truncation=cut": "align.train.truncation must be one of 'truncate', 'drop' (got 'cut')",
        "model.dtype=fp8": "model.dtype must be one of 'float32', 'bfloat16', 'float16' (got 'fp8')",
        "eval.backend=tgi": "eval.backend must be one of 'auto', 'hf', 'vllm' (got 'tgi')",
        "eval.do_sample=3": "eval.do_sample must be true or false (got 3)",
        "train.share_prefix=sometimes": "train.share_prefix must be true, false or null (got 'sometimes')",
    }
    assert_refused_with(cases)


def test_valid_numbers_pass_and_ints_become_floats():
    cfg = load_config(None, ["train.lr=1", "train.epochs=2", "train.max_steps=null", "data.poison_ratio=0", "train.lr=2e-4"])
    assert cfg.train.lr == 2e-4 and cfg.train.epochs == 2.0 and isinstance(cfg.train.epochs, float)
    assert load_config(None, ["train.lr='3e-4'"]).train.lr == 3e-4  # YAML 1.1 reads 3e-4 as a string


@pytest.mark.parametrize("override", ["train.lr=.inf", "train.lr=.nan", "train.epochs=-1", "align.train.lr=0",
                                      "eval.batch_size=0", "model.lora.r=0"])
def test_cli_exits_2_naming_the_field(override):
    res = CliRunner().invoke(app, ["finetune", "--set", override])
    assert res.exit_code == 2, res.output
    assert override.split("=")[0] in " ".join(res.output.split())


# ----------------------------------------------------------------------------------- methods


METHOD_NUMBERS = [(name, f, kind, opt) for name in METHODS.names()
                  for f, kind, opt in numeric_paths(METHODS.get(name))]


def test_methods_have_numbers_to_check():
    assert {(n, f) for n, f, _, _ in METHOD_NUMBERS} >= {("der", "alpha"), ("lisa", "rho"), ("ewc", "lam"),
                                                         ("grsap", "response_top_p"), ("magmax", "lam")}


@pytest.mark.parametrize("name, field, kind, optional", METHOD_NUMBERS)
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), True, "x"])
def test_every_method_number_refuses_bad_values_in_one_shape(name, field, kind, optional, bad):
    pattern = rf"^{name}\.{field} must be (an integer|a finite number)\b.*\(got .+\)$"
    with pytest.raises(ConfigError, match=pattern):
        METHODS.get(name)(**{field: bad})
    with pytest.raises(ConfigError, match=pattern):  # through --set train.method_args.NAME.FIELD
        build_methods([name], {name: {field: bad}})


def test_method_messages():
    cases = [("der", {"alpha": -1}, "der.alpha must be a finite number >= 0 (got -1.0)"),
             ("magmax", {"lam": 0}, "magmax.lam must be a finite number > 0 (got 0.0)"),
             ("lisa", {"cycle_steps": 0}, "lisa.cycle_steps must be an integer >= 1 or null (got 0)"),
             ("safelora", {"threshold": 2}, "safelora.threshold must be a finite number in [-1, 1] (got 2.0)"),
             ("der", {"storage": "fp16"}, "der.storage must be one of 'topk', 'exact' (got 'fp16')"),
             ("refresh", {"normalize_fisher": "yes"}, "refresh.normalize_fisher must be true or false (got 'yes')")]
    for name, args, message in cases:
        with pytest.raises(ConfigError) as e:
            build_methods([name], {name: args})
        assert str(e.value) == message


def test_a_float_argument_given_an_int_is_stored_as_a_float():
    (der,) = build_methods(["der"], {"der": {"alpha": 1}})
    assert der.alpha == 1.0 and isinstance(der.alpha, float)


# ----------------------------------------------------------------------------------- the mechanism


def test_bounds_describe_and_check():
    assert Bounds(ge=0, lt=1).describe() == "in [0, 1)"
    assert Bounds(gt=0).describe() == "> 0" and Bounds(le=2.5).describe() == "<= 2.5" and Bounds().describe() == ""
    assert check_number("x.y", 3, float, Bounds(gt=0)) == 3.0
    assert check_number("x.y", None, int, Bounds(ge=1), optional=True) is None
    with pytest.raises(ConfigError, match=r"^x\.y must be an integer >= 1 \(got None\)$"):
        check_number("x.y", None, int, Bounds(ge=1))


def test_nested_dataclasses_are_walked_and_bad_declarations_fail_loudly():
    @dataclasses.dataclass
    class Inner:
        p: float = bounded(0.5, ge=0, le=1)
        mode: str = one_of("a", ("a", "b"))

    @dataclasses.dataclass
    class Outer:
        inner: Inner = dataclasses.field(default_factory=Inner)

    check_fields(Outer())
    with pytest.raises(ConfigError, match=r"^outer\.inner\.p must be"):
        check_fields(Outer(Inner(p=2)), "outer.")
    with pytest.raises(ConfigError, match=r"^inner\.mode must be one of 'a', 'b' \(got 'c'\)$"):
        check_fields(Outer(Inner(mode="c")))

    @dataclasses.dataclass
    class Wrong:
        name: str = bounded("x", ge=0)

    with pytest.raises(TypeError, match="bounded"):
        check_fields(Wrong())


# ----------------------------------------------------------------------------------- the service's config


def test_every_service_config_number_is_checked_the_same_way():
    from unforgotten.service.settings import ServiceConfig, load_service_config

    paths = [p for p, _, _ in numeric_paths(ServiceConfig)]
    assert {"port", "lease_s", "gate.asr_threshold", "screening.max_flagged_fraction"} <= set(paths)
    for path in paths:
        head, _, leaf = path.rpartition(".")
        override = {head: {leaf: float("nan")}} if head else {leaf: float("nan")}
        with pytest.raises(ConfigError, match=rf"^{re.escape(path)} must be (an integer|a finite number)\b"):
            load_service_config(None, override)
    with pytest.raises(ConfigError, match=r"^gate\.asr_threshold must be a finite number in \[0, 1\] \(got 1\.5\)$"):
        load_service_config(None, {"gate": {"asr_threshold": 1.5}})
