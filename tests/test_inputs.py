"""Reading inputs: formats, default columns, labels, and one-line errors."""

from __future__ import annotations

import pytest

from attribkit.errors import InvalidInputError
from attribkit.inputs import InputRow, read_inputs


def test_csv_quotes_empty_rows_and_labels(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text('text,label\n"hello, world",1\n"",0\nbye,\n', encoding="utf-8")
    assert read_inputs(path) == [InputRow("hello, world", None, "1"), InputRow("bye", None, None)]


def test_jsonl_labels_and_default_pair_column(tmp_path):
    path = tmp_path / "b.jsonl"
    path.write_text(
        '{"sentence1": "a", "sentence2": "b", "label": -1}\n{"sentence1": "c", "sentence2": "d", "label": true}\n'
    )
    rows = read_inputs(path)
    assert rows == [InputRow("a", "b", None), InputRow("c", "d", 1)]  # -1 = unlabelled (GLUE test files)
    assert rows[0].model_input == ("a", "b")
    assert read_inputs(path, pair_column="sentence1", text_column="sentence2")[0].model_input == ("b", "a")


def test_tsv_keeps_quotes_literally_and_txt_skips_blank_lines(tmp_path):
    tsv = tmp_path / "c.tsv"
    tsv.write_text('sentence\tlabel\n"quoted" start\t0\n', encoding="utf-8")
    assert read_inputs(tsv)[0].text == '"quoted" start'
    txt = tmp_path / "d.txt"
    txt.write_text("\ufeffone\n\n  \ntwo\r\n", encoding="utf-8")
    assert [r.text for r in read_inputs(txt)] == ["one", "two"]


@pytest.mark.parametrize(
    ("name", "content", "kwargs", "message"),
    [
        ("e.csv", "review\nx\n", {}, "no text column; pass --text-column"),
        ("f.csv", "text\nx\n", {"text_column": "body"}, "no column 'body' (--text-column)"),
        ("g.jsonl", "[1, 2]\n", {}, "must be a JSON object"),
        ("h.parquet", "", {}, "use a .txt, .tsv, .csv, .jsonl file"),
        ("i.txt", "x\n", {"text_column": "text"}, "plain text"),
    ],
)
def test_errors_say_what_to_do(tmp_path, name, content, kwargs, message):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InvalidInputError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        read_inputs(path, **kwargs)


def test_not_utf8(tmp_path):
    path = tmp_path / "j.txt"
    path.write_bytes(b"caf\xe9\n")
    with pytest.raises(InvalidInputError, match="not UTF-8"):
        read_inputs(path)
