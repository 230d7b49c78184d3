"""Pin store (persistence, concurrency, recovery) and the Markdown / HTML reports."""

from __future__ import annotations

import json
import multiprocessing
from html.parser import HTMLParser

import numpy as np
import plotly.graph_objects as go
import pytest
from radmap.analysis.validate import InputError
from radmap.explorer.hypotheses import PinStore, escape_markdown, report_html, report_markdown

XSS_NOTE = "<script>alert(1)</script>"


def module_pin(**extra) -> dict:
    pin = {
        "kind": "module",
        "feature": "margin",
        "module": "M3",
        "statistics": {"test": "kruskal", "effect": 0.42, "p": 1.2e-4, "q": 0.003, "n": 118},
        "note": "spiculated margins go with M3",
        "url": "/map?feature=margin&module=M3",
    }
    pin.update(extra)
    return pin


def test_add_list_update_remove(tmp_path):
    store = PinStore(tmp_path, "bundle-a")
    first = store.add(module_pin())
    second = store.add(
        {"kind": "gene", "gene": "EGFR", "statistics": {"effect": np.float32(0.25), "q": np.nan}}
    )
    assert first["id"] != second["id"] and first["created"] <= second["created"]
    labelled = store.add(
        module_pin(label="M3 x Nodule margin", statistics={"statistic": 7.5, "q": 0.01})
    )
    assert labelled["label"] == "M3 x Nodule margin"
    assert labelled["statistics"]["statistic"] == 7.5 and labelled["statistics"]["p"] is None
    store.remove(labelled["id"])
    assert second["statistics"] == {"test": None, "effect": 0.25, "p": None, "q": None, "n": None}
    assert [pin["id"] for pin in store.list()] == [first["id"], second["id"]]
    updated = store.update(first["id"], "new note")
    assert updated["note"] == "new note" and "updated" in updated
    assert store.list()[0]["note"] == "new note"
    store.remove(second["id"])
    assert [pin["id"] for pin in store.list()] == [first["id"]]
    with pytest.raises(InputError, match="no pin"):
        store.remove("missing")
    with pytest.raises(InputError, match="no pin"):
        store.update("missing", "x")


def test_invalid_pins_are_rejected(tmp_path):
    store = PinStore(tmp_path, "bundle-a")
    with pytest.raises(InputError, match="kind"):
        store.add({"kind": "pathway"})
    with pytest.raises(InputError, match="under"):
        store.add(module_pin(note="x" * 20_001))
    with pytest.raises(InputError, match="plotly JSON"):
        store.add(module_pin(figure="{not json"))
    with pytest.raises(InputError):
        PinStore(tmp_path, "")
    assert store.list() == []


def test_pins_persist_across_instances_and_bundles_stay_apart(tmp_path):
    figure = go.Figure(go.Bar(x=["a"], y=[1]))
    pin = PinStore(tmp_path, "bundle-a").add(module_pin(figure=figure.to_json()))
    PinStore(tmp_path, "bundle-b").add(module_pin(module="M9"))
    reopened = PinStore(tmp_path, "bundle-a").list()
    assert [p["id"] for p in reopened] == [pin["id"]]
    assert reopened[0]["figure"]["data"][0]["type"] == "bar"
    assert [p["module"] for p in PinStore(tmp_path, "bundle-b").list()] == ["M9"]
    odd = PinStore(tmp_path, "../../etc/passwd")
    assert odd.path.parent == tmp_path and ".." not in odd.path.name


def _add_many(directory, bundle_id, worker, count) -> None:
    store = PinStore(directory, bundle_id)
    for k in range(count):
        store.add(module_pin(note=f"worker {worker} pin {k}"))


def test_concurrent_adds_from_processes_lose_nothing(tmp_path):
    context = multiprocessing.get_context("fork")
    workers = [
        context.Process(target=_add_many, args=(tmp_path, "shared", worker, 20))
        for worker in range(4)
    ]
    for process in workers:
        process.start()
    for process in workers:
        process.join(60)
        assert process.exitcode == 0
    pins = PinStore(tmp_path, "shared").list()
    assert len(pins) == 80 and len({pin["id"] for pin in pins}) == 80
    notes = {pin["note"] for pin in pins}
    assert notes == {f"worker {w} pin {k}" for w in range(4) for k in range(20)}
    assert not list(tmp_path.glob(".pins-*")), "no temporary files left behind"


def test_corrupt_file_recovers_from_backup_with_warning(tmp_path):
    store = PinStore(tmp_path, "bundle-a")
    first = store.add(module_pin(note="one"))
    second = store.add(module_pin(note="two"))
    assert json.loads(store.backup_path.read_text())["pins"][0]["id"] == first["id"]
    store.path.write_text('{"format": 1, "pins": [{"id": "tru')

    reader = PinStore(tmp_path, "bundle-a")
    assert [pin["id"] for pin in reader.list()] == [first["id"]]
    assert reader.warnings and "restored 1 pins" in reader.warnings[0]

    third = reader.add(module_pin(note="three"))
    assert [pin["id"] for pin in PinStore(tmp_path, "bundle-a").list()] == [
        first["id"],
        third["id"],
    ]
    kept = list(tmp_path.glob("pins-bundle-a.json.corrupt-*"))
    assert len(kept) == 1 and '"tru' in kept[0].read_text(), "damaged file kept for the user"
    assert second["id"] not in store.path.read_text()


def test_temporaries_of_a_killed_writer_are_removed_by_the_next_write(tmp_path):
    store = PinStore(tmp_path, "bundle-a")
    first = store.add(module_pin(note="one"))
    stale = [
        tmp_path / f".{store.path.name}.abc123.tmp",
        tmp_path / f".{store.backup_path.name}.0123456789abcdef",
    ]
    for path in stale:
        path.write_text('{"format": 1, "pins": [')
    other_bundle = tmp_path / ".pins-bundle-b.json.def456.tmp"
    other_bundle.write_text("in progress")

    assert [pin["id"] for pin in store.list()] == [first["id"]]  # reading leaves them
    assert all(path.exists() for path in stale)
    store.add(module_pin(note="two"))
    assert not any(path.exists() for path in stale)
    assert other_bundle.exists(), "another bundle's writer holds another lock"
    assert [pin["note"] for pin in store.list()] == ["one", "two"]


def test_corrupt_file_without_backup_warns_and_starts_empty(tmp_path):
    store = PinStore(tmp_path, "bundle-a")
    store.path.write_text("[1, 2")
    assert store.list() == []
    assert "no backup" in store.warnings[0]


def test_missing_file_with_backup_is_restored(tmp_path):
    store = PinStore(tmp_path, "bundle-a")
    first = store.add(module_pin())
    store.add(module_pin())
    store.path.unlink()
    assert [pin["id"] for pin in store.list()] == [first["id"]]
    assert "is missing" in store.warnings[0]


def test_escape_markdown_neutralises_markup():
    text = escape_markdown("[click](javascript:alert(1)) *bold* <b>x</b> | a")
    assert "<b>" not in text and "&lt;b&gt;" in text
    assert "\\[click\\]\\(javascript:alert\\(1\\)\\)" in text
    assert "\\*bold\\*" in text and "\\|" in text


def test_report_markdown_lists_pins_and_escapes_notes(tmp_path):
    store = PinStore(tmp_path, "bundle-a")
    store.add(module_pin(note=f"{XSS_NOTE}\nsecond line | with pipe"))
    store.add({"kind": "gene", "gene": "EGFR", "url": "javascript:alert(1)", "note": ""})
    text = report_markdown(store.list(), bundle_info={"bundle": "demo <NSCLC>", "hash": "abc"})
    assert "<script>" not in text and "&lt;script&gt;alert\\(1\\)&lt;/script&gt;" in text
    assert "> second line \\| with pipe" in text
    assert "demo &lt;NSCLC&gt;" in text
    table_rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(table_rows) == 3, "header + one row per pin"
    assert "| 1 | module | margin | M3 |  | kruskal | 0.42 | 0.00012 | 0.003 | 118 |" in text
    assert "javascript:" not in text
    labelled = report_markdown([module_pin(label="M3 x <Nodule margin>")], bundle_info={})
    assert "## 1. M3 x &lt;Nodule margin&gt;" in labelled
    assert "](</map?feature=margin&module=M3>)" in text


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.scripts: list[dict] = []
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "script":
            self.scripts.append(dict(attrs))
        if tag == "a":
            self.links.append(dict(attrs).get("href", ""))


def test_report_html_escapes_and_is_self_contained(tmp_path):
    store = PinStore(tmp_path, "bundle-a")
    figure = go.Figure(go.Scatter(x=[1, 2], y=[3, 4], name="</script><script>alert(2)"))
    store.add(module_pin(note=XSS_NOTE, figure=figure.to_json()))
    store.add({"kind": "feature", "feature": "size", "url": "javascript:alert(1)"})
    pins = store.list()

    page = report_html(pins, bundle_info={"bundle": "<b>demo</b>"}, figures="plotly")
    parsed = _Collector()
    parsed.feed(page)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and XSS_NOTE not in page
    assert "&lt;b&gt;demo&lt;/b&gt;" in page
    assert all("src" not in attrs for attrs in parsed.scripts), "no external scripts (no CDN)"
    assert len(page) > 1_000_000, "plotly.js is inlined"
    assert "</script><script>alert(2)" not in page, "figure text cannot close the script"
    assert "\\u003c\\u002fscript\\u003e\\u003cscript\\u003ealert(2)" in page
    assert not any(link.startswith("javascript") for link in parsed.links)
    assert "/map?feature=margin&amp;module=M3" in page

    light = report_html(pins, bundle_info={}, figures="none")
    assert len(light) < 20_000 and "<script" not in light
    assert light.count('class="pin"') == 2
    with pytest.raises(InputError):
        report_html(pins, figures="png")


def test_pin_writes_go_through_the_one_atomic_write(tmp_path, monkeypatch):
    from radmap.analysis.io import files

    store = PinStore(tmp_path, "bundle")
    store.add({"kind": "feature", "feature": "f1", "note": "kept"})
    before = store.path.read_bytes()
    calls = []
    real = files.atomic_write_text

    def failing_hook(path, text, *, before_replace=None, mode=None):
        calls.append(path)

        def hook():
            before_replace()
            raise OSError(28, "No space left on device")

        return real(path, text, before_replace=hook, mode=mode)

    monkeypatch.setattr("radmap.explorer.hypotheses.atomic_write_text", failing_hook)
    with pytest.raises(Exception, match="No space left"):
        store.add({"kind": "feature", "feature": "f2", "note": "lost"})
    assert calls == [store.path]
    assert store.path.read_bytes() == before, "the old file stays whole"
    assert store.backup_path.read_bytes() == before
    assert not list(tmp_path.glob(f".{store.path.name}*")), "no temporary left behind"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/map?feature=size&module=M1", "/map?feature=size&module=M1"),
        ("/radmap/gene?gene=EGFR", "/radmap/gene?gene=EGFR"),
        ("http://127.0.0.1:8050/gene?gene=EGFR", "/gene?gene=EGFR"),
        ("https://evil.example//evil.example/x", None),
        ("/\\evil.example", None),
        ("\\\\evil.example", None),
        ("\\/evil.example", None),
        ("//evil.example/x", None),
        ("/\t/evil.example", None),
        ("/\n/evil.example", None),
        ("javascript:alert(1)", None),
        ("JaVaScRiPt:alert(1)", None),
        ("data:text/html,<b>x</b>", None),
        ("map?feature=size", None),
        ("", None),
        (None, None),
    ],
)
def test_safe_url_accepts_only_paths_of_the_app(url, expected):
    from radmap.explorer.hypotheses import safe_url

    assert safe_url(url) == expected


def test_a_pinned_figure_has_a_size_cap(tmp_path):
    from radmap.explorer.hypotheses import MAX_FIGURE_BYTES

    store = PinStore(tmp_path, "bundle")
    huge = {"data": [{"type": "scatter", "x": list(range(MAX_FIGURE_BYTES // 4))}]}
    with pytest.raises(InputError, match="larger than"):
        store.add({"kind": "feature", "feature": "f1", "figure": huge})
    assert store.list() == []
