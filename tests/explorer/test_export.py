"""Export through a real headless Chromium: one warm kaleido server for the whole module."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import multiprocessing
import re
import zipfile
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from defusedxml import ElementTree
from PIL import Image
from radmap.analysis import __version__ as radmap_version
from radmap.analysis.validate import InputError
from radmap.explorer import export
from radmap.explorer.figures import map_heatmap
from radmap.explorer.hypotheses import report_html

PROVENANCE = {
    "bundle_hash": "sha256:abc123",
    "parameters": {"value": "effect", "q_threshold": 0.05},
    "url": "/map?value=effect&q=0.05",
}


def expected_pixels(width_mm: float) -> int:
    return round(width_mm / 25.4 * 300)


@pytest.fixture(scope="module")
def server():
    export.start_server()
    assert export.server_running()
    yield
    export.stop_server()
    assert not export.server_running()


@pytest.fixture(scope="module")
def figure() -> go.Figure:
    rng = np.random.default_rng(0)
    features = pd.DataFrame(
        {
            "label": [f"Feature <{i}> & co" for i in range(6)],
            "type": "continuous",
            "source": "radiomic",
            "group": ["a", "a", "a", "b", "b", "b"],
        },
        index=[f"f{i}" for i in range(6)],
    )
    modules = ["M1", "M2", "M3"]
    assoc = pd.DataFrame(
        {
            "module": np.tile(modules, 6),
            "feature": np.repeat(features.index, 3),
            "effect": rng.uniform(-0.5, 0.5, 18),
            "q": rng.uniform(0, 0.2, 18),
        }
    )
    return map_heatmap(assoc, features, title="Radiogenomic map")


def test_svg_is_valid_xml_with_column_width_and_provenance(server, figure):
    data, provenance = export.export_figure(figure, "svg", width="single", provenance=PROVENANCE)
    root = ElementTree.fromstring(data)
    assert root.tag.endswith("svg")
    assert root.attrib["width"] == "89.00mm", "physical size for vector editors"
    view_width, view_height = (float(v) for v in root.attrib["viewBox"].split()[2:])
    assert view_width == round(89 / 25.4 * 96)
    height_mm = float(root.attrib["height"].removesuffix("mm"))
    assert height_mm == pytest.approx(view_height * 89 / view_width, abs=0.01)
    assert provenance["height_mm"] == pytest.approx(height_mm, abs=0.05)
    texts = {element.text for element in root.iter() if element.tag.endswith("text")}
    assert "Feature <0> & co" in texts and b"<0>" not in data, "labels escaped in the markup"
    metadata = next(el for el in root.iter() if el.tag.endswith("metadata"))
    assert json.loads(metadata.text)["bundle_hash"] == "sha256:abc123"
    assert provenance["sha256"] == hashlib.sha256(data).hexdigest()
    assert provenance["format"] == "svg" and provenance["dpi"] is None
    assert provenance["webgl_raster_dpi"] is None


def test_pdf_is_vector_pdf_of_column_width(server, figure):
    data, provenance = export.export_figure(figure, "pdf", width="double", provenance=PROVENANCE)
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    box = re.search(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", data)
    assert box is not None
    assert float(box.group(1)) == pytest.approx(183 / 25.4 * 72, abs=1.5), "width in points"
    assert provenance["width_mm"] == 183.0


@pytest.mark.parametrize(("width", "width_mm"), [("single", 89), ("double", 183)])
def test_png_has_300_dpi_pixels_and_metadata(server, figure, width, width_mm):
    data, provenance = export.export_figure(figure, "png", width=width, provenance=PROVENANCE)
    image = Image.open(io.BytesIO(data))
    image.load()
    assert image.size[0] == expected_pixels(width_mm)
    assert image.info["dpi"] == pytest.approx((300, 300), abs=0.01)
    assert provenance["pixels"] == list(image.size)
    embedded = json.loads(image.info["radmap:provenance"])
    assert embedded["url"] == PROVENANCE["url"] and embedded["width"] == width
    assert image.getextrema()[0][0] < 100, "something dark was drawn"


def test_webgl_points_in_svg_are_rasterised_at_300_dpi(server):
    rng = np.random.default_rng(1)
    fig = go.Figure(go.Scattergl(x=rng.normal(size=3000), y=rng.normal(size=3000), mode="markers"))
    data, provenance = export.export_figure(fig, "svg", width="single")
    image_tag = re.search(rb"<image[^>]*base64,([^\"]+)\"", data)
    assert image_tag is not None, "WebGL traces come out as an embedded image"
    raster = Image.open(io.BytesIO(base64.b64decode(image_tag.group(1))))
    assert raster.size[0] >= expected_pixels(89) - 2
    assert provenance["webgl_raster_dpi"] == 300


def test_provenance_content(server, figure):
    data, provenance = export.export_figure(figure, "svg", provenance=PROVENANCE)
    for key, value in PROVENANCE.items():
        assert provenance[key] == value
    assert provenance["radmap_version"] == radmap_version
    assert provenance["plotly_version"] and provenance["kaleido_version"]
    assert provenance["width"] == "single" and provenance["width_mm"] == 89.0
    assert datetime.fromisoformat(provenance["exported"]).tzinfo is not None
    assert PROVENANCE.get("format") is None, "caller's dict is not modified"


def test_concurrent_exports_from_threads(server, figure):
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(
            pool.map(lambda fmt: export.export_figure(figure, fmt), ["svg", "pdf", "svg"])
        )
    assert results[0][0].startswith(b"<svg") and results[2][0].startswith(b"<svg")
    assert results[1][0].startswith(b"%PDF")


def test_export_zip_bundles_figure_provenance_and_table(server, figure):
    table = pd.DataFrame({"feature": ["f1"], "effect": [0.2]})
    archive = zipfile.ZipFile(
        io.BytesIO(export.export_zip(figure, "svg", provenance=PROVENANCE, name="map", table=table))
    )
    assert sorted(archive.namelist()) == ["map.csv", "map.svg", "provenance.json"]
    provenance = json.loads(archive.read("provenance.json"))
    assert provenance["sha256"] == hashlib.sha256(archive.read("map.svg")).hexdigest()


def test_report_html_inlines_svg_figures(server, figure):
    pin = {
        "id": "p1",
        "kind": "module",
        "module": "M1",
        "note": "<script>alert(1)</script>",
        "figure": json.loads(figure.to_json()),
        "statistics": {},
    }
    page = report_html([pin], bundle_info={"bundle": "demo"}, figures="svg")
    assert page.count("<svg") >= 1 and "&lt;script&gt;alert(1)" in page
    assert "<script" not in page, "no plotly.js and no user script in the SVG report"


def _child_running(queue) -> None:
    queue.put(export.server_running())


def test_forked_child_does_not_reuse_parent_browser(server):
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_child_running, args=(queue,))
    child.start()
    child.join(30)
    assert queue.get(timeout=5) is False
    assert export.server_running()


def test_bad_format_and_width_are_input_errors(figure):
    with pytest.raises(InputError, match="format"):
        export.export_figure(figure, "eps")
    with pytest.raises(InputError, match="width"):
        export.export_figure(figure, "svg", width="a4")


def test_table_csv_keeps_index_and_neutralises_formulas():
    table = pd.DataFrame(
        {"label": ["=HYPERLINK(1)", "plain", "@cmd"], "effect": [-0.5, 0.25, 1.0]},
        index=pd.Index(["f1", "f2", "f3"], name="feature"),
    )
    text = export.table_csv(table).decode("utf-8")
    back = pd.read_csv(io.StringIO(text), index_col="feature")
    assert back.loc["f1", "label"] == "'=HYPERLINK(1)" and back.loc["f3", "label"] == "'@cmd"
    assert back.loc["f2", "label"] == "plain"
    np.testing.assert_allclose(back["effect"], table["effect"])
    plain = export.table_csv(pd.DataFrame({"a": [1, 2]})).decode("utf-8")
    assert plain.splitlines() == ["a", "1", "2"]
    raw = export.table_csv(table, escape_formulas=False).decode("utf-8")
    assert "\nf1,=HYPERLINK(1)," in raw


@pytest.fixture()
def local_listener():
    """A web server on 127.0.0.1 that records every request it gets."""
    import http.server
    import threading

    requests: list[str] = []

    class Recorder(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the http.server API
            requests.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()
            self.wfile.write(_red_png())

        def log_message(self, *args):
            pass

    listener = http.server.HTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=listener.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.server_address[1]}", requests
    listener.shutdown()
    listener.server_close()


def _red_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (255, 0, 0)).save(buffer, "PNG")
    return buffer.getvalue()


def _with_image(source: str) -> go.Figure:
    fig = go.Figure(go.Scatter(x=[1, 2], y=[1, 2]))
    fig.add_layout_image(source=source, x=0, y=1, sizex=1, sizey=1, xref="paper", yref="paper")
    return fig


def _shows_the_image(data: bytes, fmt: str) -> bool:
    if fmt == "svg":
        return b"<image" in data
    pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    return bool(((pixels == (255, 0, 0)).all(axis=-1)).any())


@pytest.mark.parametrize("fmt", ["svg", "png"])
def test_forged_image_sources_read_no_file_and_reach_no_server(
    server, local_listener, tmp_path, fmt
):
    address, requests = local_listener
    secret = tmp_path / "secret.png"
    secret.write_bytes(_red_png())
    for source in (secret.as_uri(), "file:///etc/passwd", f"{address}/probe.png"):
        data, _ = export.export_figure(_with_image(source), fmt)
        assert not _shows_the_image(data, fmt), source
        assert b"root:" not in data
        # Defence in depth: even a spec that skipped the filter is refused by the browser.
        raw = export._SERVER.render(
            _with_image(source).to_dict(),
            {"format": fmt, "width": 300, "height": 200, "scale": 1},
        )
        assert not _shows_the_image(raw, fmt), source
    assert requests == [], "the render browser must never send a request"
    inline = "data:image/png;base64," + base64.b64encode(_red_png()).decode()
    assert _shows_the_image(export.export_figure(_with_image(inline), fmt)[0], fmt)


def test_neutralise_external_sources_walks_templates_and_keeps_inline_images():
    spec = {
        "layout": {
            "images": [{"source": "http://x/a.png"}, {"source": "data:image/png;base64,AA"}],
            "template": {"layout": {"images": [{"source": " FILE:///etc/passwd"}]}},
        }
    }
    assert export.neutralise_external_sources(spec) == 2
    assert spec["layout"]["images"] == [{"source": "data:image/png;base64,AA"}]
    assert spec["layout"]["template"]["layout"]["images"] == []


@pytest.mark.slow
def test_normal_exports_succeed_while_an_oversized_one_runs(server, monkeypatch):
    import time

    monkeypatch.setattr(export, "RENDER_TIMEOUT_S", 3.0)
    rng = np.random.default_rng(1)
    n = export.MAX_SVG_POINTS - 1000
    heavy = go.Figure(go.Scatter(x=rng.random(n), y=rng.random(n), mode="markers"))
    small = go.Figure(go.Bar(x=["a", "b"], y=[1, 2]))
    with ThreadPoolExecutor(4) as pool:
        slow_job = pool.submit(export.export_figure, heavy, "svg", client="heavy")
        time.sleep(0.5)  # its turn has begun
        queued = pool.submit(export.export_figure, small, "png", client="heavy")
        normal = [
            pool.submit(export.export_figure, small, "svg", client=f"user{i}") for i in range(2)
        ]
        time.sleep(0.2)
        with pytest.raises(export.ExportBusy, match="exports in progress"):
            export.export_figure(small, "svg", client="heavy")
        exported = [job.result(timeout=180)[0] for job in normal]
        assert queued.result(timeout=180)[0].startswith(export.PNG_SIGNATURE)
        with pytest.raises(RuntimeError, match="took more than 3 s"):
            slow_job.result(timeout=180)
    assert all(b"<svg" in data for data in exported), "the others waited, then rendered"
    assert export.server_running(), "a fresh browser took over"


def test_figures_too_big_to_render_are_refused_before_the_browser(monkeypatch):
    def no_render(*args, **kwargs):
        raise AssertionError("must not reach the browser")

    monkeypatch.setattr(export._SERVER, "render", no_render)
    points = export.MAX_SVG_POINTS + 1
    many = go.Figure(go.Scatter(x=np.arange(points), y=np.arange(points), mode="markers"))
    with pytest.raises(InputError, match="points one by one"):
        export.export_figure(many, "svg")
    text = "x" * (export.MAX_FIGURE_BYTES + 1)
    with pytest.raises(InputError, match="too large to export"):
        export.export_figure(go.Figure(layout={"title": {"text": text}}), "png")
    with pytest.raises(InputError, match="height"):
        export.export_figure(go.Figure(), "png", height=export.MAX_HEIGHT_PX * 10)
