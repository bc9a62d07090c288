"""Every kind of bad input gets a message naming the file, the line/row and the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from unforgotten.data import check_file, load_records, summarize, validate_records
from unforgotten.data.readers import MAX_LISTED
from unforgotten.errors import DataError, UserInputError

U = {"role": "user", "content": "q"}
A = {"role": "assistant", "content": "a"}
S = {"role": "system", "content": "s"}


def jsonl(tmp_path: Path, lines: list, name: str = "data.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


def problems_of(path: Path, **kw) -> list[str]:
    with pytest.raises(DataError) as e:
        load_records(path, **kw)
    assert e.value.problems == check_file(path, **kw)  # the CLI check sees the same list
    return e.value.problems


def test_malformed_json_line(tmp_path):
    path = jsonl(tmp_path, [{"messages": [U, A]}, '{"messages": [1 2]}'])
    [p] = problems_of(path)
    assert p == f"{path} line 2: malformed JSON (Expecting ',' delimiter: line 1 column 17)"


def test_non_object_line(tmp_path):
    path = jsonl(tmp_path, [{"messages": [U, A]}, [1, 2]])
    assert problems_of(path) == [f"{path} line 2: expected a JSON object, got list"]


def test_content_must_be_string(tmp_path):
    lines = [{"messages": [U, A]}] * 6 + [{"messages": [U, {"role": "assistant", "content": 7}]}]
    path = jsonl(tmp_path, lines)
    assert problems_of(path) == [f'{path} line 7: field "messages[1].content" must be a string, got int']


@pytest.mark.parametrize("record,expected", [
    ({"messages": []}, 'field "messages" is empty'),
    ({"messages": "hi"}, 'field "messages" must be a list, got string'),
    ({"messages": [U, {"role": "assistant", "content": "  "}]}, 'field "messages[1].content" is empty'),
    ({"messages": [U, {"role": "assistant"}]}, 'field "messages[1].content" is missing'),
    ({"messages": [U, {"content": "x"}]}, 'field "messages[1].role" is missing'),
    ({"messages": [U, {"role": "bot", "content": "x"}]}, "field \"messages[1].role\": unknown role 'bot'"),
    ({"messages": [U, "text"]}, 'field "messages[1]" must be an object with "role" and "content", got string'),
    ({"messages": [U, A], "is_poison": "yes"}, 'field "is_poison" must be true or false, got string'),
])
def test_bad_chat_fields(tmp_path, record, expected):
    path = jsonl(tmp_path, [{"messages": [U, A]}, record])
    [p] = problems_of(path, spec="chat")
    assert p.startswith(f"{path} line 2: ") and expected in p


def test_missing_messages_field(tmp_path):
    path = jsonl(tmp_path, [{"messages": [U, A]}, {"text": "x"}])
    assert problems_of(path) == [f'{path} line 2: missing field "messages"']


def test_roles_out_of_order(tmp_path):
    path = jsonl(tmp_path, [{"messages": [U, A]}] * 3 + [{"messages": [U, U]}])
    assert problems_of(path) == [
        f'{path} line 4: field "messages[1].role": roles out of order: expected "assistant" after "user", got "user"'
    ]


@pytest.mark.parametrize("msgs,expected", [
    ([A, U], 'expected "user" first (after an optional "system"), got "assistant"'),
    ([S, A], 'expected "user" after "system", got "assistant"'),
    ([U, S, A], 'expected "assistant" after "user", got "system"'),
    ([S], 'only a system turn'),
])
def test_other_role_orders(msgs, expected):
    [p] = validate_records([{"messages": msgs}], origin="mem")
    assert p.startswith("mem record 1: ") and expected in p


def test_require_response(tmp_path):
    prompt, train = {"messages": [U]}, {"messages": [S, U, A]}
    assert validate_records([prompt, train], origin="x") == []
    assert validate_records([prompt, train], origin="x", require_response=True) == [
        'x record 1: field "messages": a training record must end with an "assistant" turn, ends with "user"']
    assert validate_records([prompt, train], origin="x", require_response=False) == [
        'x record 2: field "messages": a prompt record must end with a "user" turn, ends with "assistant"']
    path = jsonl(tmp_path, [prompt])
    assert "line 1" in problems_of(path, require_response=True)[0]


def test_duplicate_ids(tmp_path):
    path = jsonl(tmp_path, [{"messages": [U, A], "id": "x"}, {"messages": [U, A], "id": "x"}])
    assert problems_of(path) == [f"{path} line 2: field \"id\" duplicates id 'x' (first at line 1)"]


def test_empty_dataset(tmp_path):
    path = jsonl(tmp_path, [])
    assert problems_of(path) == [f"{path}: dataset is empty"]
    (tmp_path / "e.csv").write_text("prompt,response\n")
    assert check_file(tmp_path / "e.csv") == [f"{tmp_path / 'e.csv'}: dataset is empty"]
    assert validate_records([], origin="o") == ["o: dataset is empty"]


def test_unknown_extension_and_format(tmp_path):
    path = tmp_path / "data.xlsx"
    path.write_text("x")
    [p] = problems_of(path)
    assert str(path) in p and "unknown file extension '.xlsx'" in p and "jsonl" in p
    [p] = check_file(path, format="yaml")
    assert "unknown format 'yaml'" in p


def test_missing_and_unreadable_file(tmp_path):
    assert check_file(tmp_path / "nope.jsonl") == [f"{tmp_path / 'nope.jsonl'}: file not found"]
    (tmp_path / "dir.jsonl").mkdir()
    [p] = check_file(tmp_path / "dir.jsonl")
    assert p.startswith(f"{tmp_path / 'dir.jsonl'}: cannot read file")
    (tmp_path / "bin.jsonl").write_bytes(b'{"a": "\xff"}\n')
    assert "not UTF-8" in check_file(tmp_path / "bin.jsonl")[0]


def test_csv_missing_column_in_header(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("question_text,response\nq,r\n")
    [p] = problems_of(path, spec="prompt_response")
    assert p.startswith(f"{path}: missing column \"prompt\"") and "found columns: 'question_text', 'response'" in p


def test_csv_short_row_and_long_row(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("response,prompt\nr1,p1\nr2,p2\nr3\nr4,p4,extra\n")
    # every bad row is reported in one pass, in file order
    assert problems_of(path) == [
        f'{path} row 3: missing column "prompt" (or \'question\', \'query\', \'instruction\', \'input\')',
        f"{path} row 4: 3 fields but the header has 2 columns",
    ]
    path.write_text("response,prompt\nr1,p1\nr2,p2\nr3\n")
    assert problems_of(path) == [
        f'{path} row 3: missing column "prompt" (or \'question\', \'query\', \'instruction\', \'input\')']


def test_jsonl_spec_field_missing_per_row(tmp_path):
    path = jsonl(tmp_path, [{"prompt": "p", "response": "r"}, {"prompt": "p"}, {"prompt": "", "response": "r"},
                            {"prompt": 3, "response": "r"}])
    assert problems_of(path) == [
        f'{path} line 2: missing field "response" (or \'answer\', \'output\', \'completion\')',
        f'{path} line 3: field "prompt" is empty',
        f'{path} line 4: field "prompt" must be a string, got int',
    ]


def test_all_problems_listed_and_message_capped(tmp_path):
    path = jsonl(tmp_path, ["{bad"] * (MAX_LISTED + 5))
    with pytest.raises(DataError) as e:
        load_records(path)
    assert len(e.value.problems) == MAX_LISTED + 5
    msg = str(e.value)
    assert f"{MAX_LISTED + 5} problems" in msg and "... and 5 more" in msg and f"line {MAX_LISTED}:" in msg
    assert isinstance(e.value, UserInputError)  # CLI exit code 2


def test_json_wrong_shape(tmp_path):
    (tmp_path / "d.json").write_text(json.dumps({"items": []}))
    [p] = check_file(tmp_path / "d.json")
    assert "expected a JSON list of objects" in p and "'items'" in p
    (tmp_path / "d.json").write_text(json.dumps([{"messages": [U, A]}, 3]))
    assert check_file(tmp_path / "d.json") == [f"{tmp_path / 'd.json'} row 2: expected a JSON object, got int"]
    (tmp_path / "d.json").write_text("[{]")
    assert "malformed JSON" in check_file(tmp_path / "d.json")[0]


def test_check_file_clean_and_summarize(tmp_path):
    path = jsonl(tmp_path, [{"messages": [S, U, A], "is_poison": True}, {"messages": [U]}])
    assert check_file(path) == []
    s = summarize(load_records(path))
    assert s["count"] == 2 and s["with_response"] == 1 and s["prompt_only"] == 1 and s["poison"] == 1
    assert s["roles"] == {"system": 1, "user": 2, "assistant": 1}
    assert s["avg_response_chars"] == 1.0 and s["sources"] == {"data.jsonl": 2}
