"""Publication export: figures to SVG / PDF / PNG with provenance, tables to CSV.

Rendering goes through kaleido (>= 1), which drives a headless Chromium. Starting the
browser costs seconds, so each process keeps ONE kaleido instance, started on first use
and stopped at exit. It runs on its own asyncio loop in a daemon thread; callers from any
thread take turns on it (one render at a time), and each render's time limit starts with
its turn, so waiting in the queue never counts against a job. A render that outlives its
limit stops the browser; the next job in the queue starts a fresh one, so only the slow
job fails. Each client may have only :data:`MAX_JOBS_PER_CLIENT` exports queued or running,
and figures beyond :data:`MAX_FIGURE_BYTES` or :data:`MAX_SVG_POINTS` are refused before
they reach the browser. A forked child (a gunicorn worker) never reuses its parent's
browser: it starts its own on first export.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import collections
import contextlib
import hashlib
import io
import json
import logging
import math
import os
import re
import shutil
import struct
import threading
import time
import zipfile
import zlib
from collections.abc import Iterator
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Literal
from xml.sax.saxutils import escape

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.io.json import to_json_plotly

from ..analysis import __version__ as radmap_version
from ..analysis.io import csv_text
from ..analysis.validate import InputError
from .figures.style import (
    CSS_DPI,
    PRINT_DPI,
    PUBLICATION_SIZES,
    PUBLICATION_WIDTH_MM,
    mm_to_px,
    publication_layout,
)

FORMATS = ("svg", "pdf", "png")
MEDIA_TYPES = {"svg": "image/svg+xml", "pdf": "application/pdf", "png": "image/png"}
DEFAULT_BROWSER = "/usr/bin/chromium"
RENDER_TIMEOUT_S = 60.0
WEBGL_PIXEL_RATIO = 2
"""kaleido draws WebGL traces (Scattergl) at twice the output scale; SVG and PDF embed them
as a bitmap, so SVG is rendered at a scale that makes that bitmap 300 dpi (its width and
height are then given in mm, so the scale does not change its printed size). PDF is
rendered at scale 1 so that its page is the column size: WebGL bitmaps in PDF are 192 dpi."""
START_TIMEOUT_S = 60.0
QUEUE_TIMEOUT_S = 180.0
"""How long a job may wait for its turn before it is refused (the server is overloaded)."""
MAX_JOBS_PER_CLIENT = 2
"""Exports one client may have queued or running at once in one process."""
MAX_FIGURE_BYTES = 20_000_000
"""Largest figure (its JSON) that is rendered."""
MAX_SVG_POINTS = 30_000
"""Most data points drawn as SVG (non-WebGL traces): each is a DOM node, and Chromium needs
about a second per thousand of them."""
MAX_HEIGHT_PX = 4000
"""Tallest figure exported, in CSS pixels."""
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_PROVENANCE_KEY = b"radmap:provenance"

logger = logging.getLogger("radmap")


def browser_path() -> str:
    """Chromium used for rendering: ``$BROWSER_PATH``, else ``chromium`` on PATH, else Debian's."""
    return (
        os.environ.get("BROWSER_PATH")
        or shutil.which("chromium")
        or shutil.which("chromium-browser")
        or DEFAULT_BROWSER
    )


RENDER_PAGE_POLICY = (
    "default-src 'none'; script-src file: 'unsafe-inline' 'unsafe-eval'; "
    "style-src 'unsafe-inline'; img-src data: blob:; font-src data:; connect-src 'none'; "
    "frame-src 'none'; object-src 'none'; base-uri 'none'; form-action 'none'"
)
"""Content-Security-Policy of the page kaleido renders in: its scripts come from local
files, and nothing else may be loaded. An image, font or fetch pointing at ``file:`` or
``http(s):`` (e.g. a ``layout.images`` source) is refused by the browser itself."""


def _locked_down_page() -> Any:
    """kaleido's render page (local plotly.js, no MathJax) under :data:`RENDER_PAGE_POLICY`."""
    from kaleido import PageGenerator

    page = PageGenerator(mathjax=False)
    policy = f'<meta http-equiv="Content-Security-Policy" content="{RENDER_PAGE_POLICY}">'
    # kaleido prints PDFs with 0.1 inch margins on a page the figure's size: the figure
    # was moved 0.1 inch right and down, and its right and bottom edges cut off
    no_margins = "<style>@page { margin: 0; }</style>"
    page.header = page.header.replace("<head>", f"<head>\n        {policy}{no_margins}", 1)
    return page


def _is_inline_image(source: object) -> bool:
    return isinstance(source, str) and source.strip().lower().startswith("data:image/")


def neutralise_external_sources(spec: Any) -> int:
    """Drop every ``images`` entry whose ``source`` is not an inline ``data:image/`` URI.

    Walks the whole figure dict in place (layout, templates, subplots). Returns how many
    images were dropped. A figure pointing at ``file:///etc/passwd`` or at a local web
    server would otherwise make the render browser read the file or send the request.
    """
    dropped = 0
    if isinstance(spec, dict):
        images = spec.get("images")
        if isinstance(images, list | tuple):
            kept = [
                image
                for image in images
                if not isinstance(image, dict)
                or "source" not in image
                or _is_inline_image(image["source"])
            ]
            dropped += len(images) - len(kept)
            spec["images"] = kept
        for value in spec.values():
            dropped += neutralise_external_sources(value)
    elif isinstance(spec, list | tuple):
        for value in spec:
            dropped += neutralise_external_sources(value)
    return dropped


class ExportBusy(InputError):
    """An export refused for now: the client has too many running, or the queue is full."""


class _RenderServer:
    """One kaleido browser on a private event loop thread, shared by all threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._turn = threading.Lock()
        self._clients: collections.Counter[str] = collections.Counter()
        self._clients_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._kaleido: Any = None
        self._pid: int | None = None

    def running(self) -> bool:
        return self._kaleido is not None and self._pid == os.getpid()

    def start(self) -> tuple[asyncio.AbstractEventLoop, Any]:
        """Start the browser unless running; return its loop and kaleido instance."""
        with self._lock:
            if self.running():
                return self._loop, self._kaleido
            self._forget()
            import kaleido

            path = browser_path()
            if not os.path.isfile(path):
                raise RuntimeError(
                    f"no Chromium at {path}: install Debian's chromium or set BROWSER_PATH"
                )
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="radmap-kaleido", daemon=True)
            thread.start()

            async def open_browser() -> Any:
                browser = kaleido.Kaleido(
                    n=1, path=path, page_generator=_locked_down_page(), timeout=RENDER_TIMEOUT_S
                )
                await browser.open()
                return browser

            try:
                browser = asyncio.run_coroutine_threadsafe(open_browser(), loop).result(
                    START_TIMEOUT_S
                )
            except BaseException:
                loop.call_soon_threadsafe(loop.stop)
                thread.join(5)
                raise
            self._loop, self._thread, self._kaleido, self._pid = loop, thread, browser, os.getpid()
            logger.info("kaleido render server started (pid %s, %s)", self._pid, path)
            return loop, browser

    def stop(self) -> None:
        with self._lock:
            if not self.running():
                self._forget()
                return
            loop, browser = self._loop, self._kaleido
            # Chromium's goodbye message reaches choreographer's JSON reader at shutdown,
            # which logs a harmless traceback for it.
            pipe_logger = logging.getLogger("choreographer.channels.pipe")
            level = pipe_logger.level
            pipe_logger.setLevel(logging.CRITICAL)
            try:
                asyncio.run_coroutine_threadsafe(browser.close(), loop).result(10)
            except Exception as error:  # noqa: BLE001 - best effort at shutdown
                logger.warning("kaleido did not close cleanly: %s", error)
            finally:
                pipe_logger.setLevel(level)
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join(5)
            self._forget()

    def _forget(self) -> None:
        self._loop = self._thread = self._kaleido = self._pid = None

    def after_fork(self) -> None:
        """In a forked child: drop the parent's browser and locks a parent thread may hold."""
        self._lock = threading.Lock()
        self._turn = threading.Lock()
        self._clients = collections.Counter()
        self._clients_lock = threading.Lock()
        self._forget()

    @contextlib.contextmanager
    def _client_slot(self, client: str | None) -> Iterator[None]:
        """Count a job of ``client``; refuse it when the client has too many already."""
        if client is None:
            yield
            return
        with self._clients_lock:
            if self._clients[client] >= MAX_JOBS_PER_CLIENT:
                raise ExportBusy(
                    f"you already have {MAX_JOBS_PER_CLIENT} exports in progress; "
                    "wait for them to finish"
                )
            self._clients[client] += 1
        try:
            yield
        finally:
            with self._clients_lock:
                self._clients[client] -= 1
                if self._clients[client] <= 0:
                    del self._clients[client]

    def render(self, spec: dict, opts: dict, *, client: str | None = None) -> bytes:
        """Render on this process's browser when it is this job's turn.

        The time limit (:data:`RENDER_TIMEOUT_S`) counts from the start of the turn.
        """
        with self._client_slot(client):
            if not self._turn.acquire(timeout=QUEUE_TIMEOUT_S):
                raise ExportBusy("the export queue is full; try again in a minute")
            try:
                return self._render_now(spec, opts)
            finally:
                self._turn.release()

    def _render_now(self, spec: dict, opts: dict) -> bytes:
        loop, browser = self.start()
        limit = RENDER_TIMEOUT_S
        future = asyncio.run_coroutine_threadsafe(browser.calc_fig(spec, opts=opts), loop)
        try:
            return future.result(limit)
        except FutureTimeout:
            future.cancel()
            self.stop()  # the next job in the queue starts a fresh browser
            raise RuntimeError(
                f"rendering took more than {limit:.0f} s; export a smaller view"
            ) from None
        except Exception as error:
            from kaleido.errors import KaleidoError

            if not isinstance(error, KaleidoError):
                self.stop()
            raise


_SERVER = _RenderServer()
atexit.register(_SERVER.stop)
os.register_at_fork(after_in_child=_SERVER.after_fork)


def start_server() -> None:
    """Start this process's render browser now (otherwise it starts on first export)."""
    _SERVER.start()


def stop_server() -> None:
    """Stop this process's render browser (it is also stopped at exit)."""
    _SERVER.stop()


def server_running() -> bool:
    """Whether this process has a render browser running."""
    return _SERVER.running()


def _package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    body = kind + payload
    return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))


def _png_with_metadata(png: bytes, provenance: dict) -> bytes:
    """Add the print resolution (pHYs) and provenance (iTXt) chunks without re-encoding.

    Decoding and re-encoding a 300-dpi page with PIL costs ~0.5 s; splicing two chunks
    after the header costs nothing and leaves chromium's pixels untouched.
    """
    if not png.startswith(PNG_SIGNATURE):
        raise RuntimeError("kaleido returned bytes that are not a PNG")
    chunks, offset = [], len(PNG_SIGNATURE)
    while offset < len(png):
        (length,) = struct.unpack(">I", png[offset : offset + 4])
        kind = png[offset + 4 : offset + 8]
        end = offset + 12 + length
        if kind not in (b"pHYs", b"iTXt", b"tEXt"):
            chunks.append(png[offset:end])
        offset = end
    pixels_per_metre = round(PRINT_DPI / 0.0254)
    physical = _png_chunk(b"pHYs", struct.pack(">IIB", pixels_per_metre, pixels_per_metre, 1))
    text = json.dumps(provenance, sort_keys=True, default=str).encode("utf-8")
    itxt = _png_chunk(b"iTXt", PNG_PROVENANCE_KEY + b"\0\0\0\0\0" + text)
    software = _png_chunk(b"tEXt", b"Software\0" + f"radmap {radmap_version}".encode("latin-1"))
    return PNG_SIGNATURE + chunks[0] + physical + software + itxt + b"".join(chunks[1:])


def _svg_for_print(
    svg: bytes, provenance: dict, *, width_px: float, height_px: float, width_mm: float
) -> bytes:
    """Give the SVG its physical size in mm (keeping the CSS-pixel viewBox) and provenance."""
    text = svg.decode("utf-8")
    start = text.find("<svg")
    end = text.find(">", start)
    if start < 0 or end < 0:
        raise RuntimeError("kaleido returned an SVG without a root element")
    root = text[start:end]
    height_mm = height_px * width_mm / width_px
    root = re.sub(r'\swidth="[^"]*"', f' width="{width_mm:.2f}mm"', root, count=1)
    root = re.sub(r'\sheight="[^"]*"', f' height="{height_mm:.2f}mm"', root, count=1)
    if "viewBox" not in root:
        root += f' viewBox="0 0 {width_px:g} {height_px:g}"'
    metadata = escape(json.dumps(provenance, sort_keys=True, default=str))
    tag = f'<metadata id="radmap-provenance">{metadata}</metadata>'
    return f"{text[:start]}{root}>{tag}{text[end + 1 :]}".encode()


SVG_POINT_TRACES = ("scatter", "bar", "box", "violin", "scatterpolar", "scatterternary")
"""Trace types that draw one SVG element per data point."""


def _length(values: Any) -> int:
    """Number of values of a trace array, also when plotly stored it as typed bytes."""
    if isinstance(values, dict) and "bdata" in values:
        shape = str(values.get("shape") or "")
        if shape:
            return math.prod(int(part) for part in shape.split(",") if part.strip())
        itemsize = np.dtype(values.get("dtype", "f8")).itemsize
        return len(base64.b64decode(values["bdata"])) // itemsize
    try:
        return len(values)
    except TypeError:
        return 0


def _svg_points(spec: dict) -> int:
    points = 0
    for trace in spec.get("data", []):
        if str(trace.get("type") or "scatter") not in SVG_POINT_TRACES:
            continue
        sizes = [_length(trace[axis]) for axis in ("x", "y", "r", "a") if axis in trace]
        points += max(sizes, default=0)
    return points


def check_export_size(spec: dict, *, height: float | None = None) -> None:
    """Refuse a figure too big to render in time (:data:`MAX_FIGURE_BYTES`, ...)."""
    if height is not None and not 0 < height <= MAX_HEIGHT_PX:
        raise InputError(f"export height must be between 1 and {MAX_HEIGHT_PX} px, got {height}")
    size = len(to_json_plotly(spec))
    if size > MAX_FIGURE_BYTES:
        raise InputError(
            f"this figure is too large to export ({size / 1e6:.1f} MB of data, the limit is "
            f"{MAX_FIGURE_BYTES / 1e6:.0f} MB); filter the view first"
        )
    points = _svg_points(spec)
    if points > MAX_SVG_POINTS:
        raise InputError(
            f"this figure draws {points:,} points one by one (the limit is {MAX_SVG_POINTS:,}); "
            "filter the view first"
        )


def export_figure(
    fig: go.Figure,
    fmt: Literal["svg", "pdf", "png"],
    *,
    width: Literal["single", "double"] = "single",
    height: float | None = None,
    provenance: dict | None = None,
    client: str | None = None,
) -> tuple[bytes, dict]:
    """Render a figure for a paper.

    Parameters
    ----------
    fig
        A radmap figure (not modified).
    fmt
        ``svg`` and ``pdf`` are vector; ``png`` is rendered at 300 dpi for the column width
        (89 mm single -> 1051 px, 183 mm double -> 2161 px) and tagged with its dpi.
    width
        Journal column: ``single`` (89 mm) or ``double`` (183 mm).
    height
        Height in CSS pixels (96 per inch); see :func:`publication_layout`.
    provenance
        What made the figure: bundle hash, parameters, view URL, ... (copied, then
        completed with format, size, time, versions and the SHA-256 of the bytes).
    client
        Who asked (e.g. user or address): each client may have only
        :data:`MAX_JOBS_PER_CLIENT` exports queued or running (else :class:`ExportBusy`).

    Returns
    -------
    The file bytes and the completed provenance dict (also embedded in SVG ``<metadata>``
    and as a PNG text chunk).
    """
    if fmt not in FORMATS:
        raise InputError(f"export format must be one of {FORMATS}, got {fmt!r}")
    if width not in PUBLICATION_SIZES:
        raise InputError(f"width must be one of {sorted(PUBLICATION_SIZES)}, got {width!r}")
    if height is not None and not 0 < height <= MAX_HEIGHT_PX:
        raise InputError(f"export height must be between 1 and {MAX_HEIGHT_PX} px, got {height}")
    published = publication_layout(fig, width, height=height)
    width_px = published.layout.width
    height_px = published.layout.height
    spec = published.to_dict()
    for trace in spec.get("data", []):
        for hover_only in ("customdata", "hovertemplate", "hovertext"):
            trace.pop(hover_only, None)
        if "scatter" in str(trace.get("type", "")) and "text" not in trace.get("mode", "text"):
            trace.pop("text", None)
    if neutralise_external_sources(spec):
        logger.warning("export: dropped images that were not inline data (file or URL sources)")
    check_export_size(spec, height=height_px)
    webgl = any(str(trace.get("type", "")).endswith("gl") for trace in spec.get("data", []))
    if fmt == "png":
        scale = mm_to_px(PUBLICATION_WIDTH_MM[width], dpi=PRINT_DPI) / width_px
    elif fmt == "svg" and webgl:
        scale = PRINT_DPI / (CSS_DPI * WEBGL_PIXEL_RATIO)
    else:
        scale = 1
    record = dict(provenance or {})
    record.update(
        format=fmt,
        media_type=MEDIA_TYPES[fmt],
        width=width,
        width_mm=PUBLICATION_WIDTH_MM[width],
        height_mm=round(height_px * PUBLICATION_WIDTH_MM[width] / width_px, 1),
        dpi=PRINT_DPI if fmt == "png" else None,
        pixels=None,
        webgl_raster_dpi=(
            None
            if not webgl
            else PRINT_DPI
            if fmt == "png"
            else round(CSS_DPI * WEBGL_PIXEL_RATIO * scale)
        ),
        exported=datetime.now(UTC).isoformat(timespec="seconds"),
        radmap_version=radmap_version,
        plotly_version=_package_version("plotly"),
        kaleido_version=_package_version("kaleido"),
    )
    started = time.perf_counter()
    data = _SERVER.render(
        spec,
        {"format": fmt, "width": width_px, "height": height_px, "scale": scale},
        client=client,
    )
    logger.info("exported %s (%s) in %.2f s", fmt, width, time.perf_counter() - started)
    if fmt == "png":
        record["pixels"] = list(struct.unpack(">II", data[16:24]))
        data = _png_with_metadata(data, record)
    elif fmt == "svg":
        data = _svg_for_print(
            data, record, width_px=width_px, height_px=height_px, width_mm=record["width_mm"]
        )
    record["sha256"] = hashlib.sha256(data).hexdigest()
    return data, record


def export_zip(
    fig: go.Figure,
    fmt: Literal["svg", "pdf", "png"],
    *,
    width: Literal["single", "double"] = "single",
    height: float | None = None,
    provenance: dict | None = None,
    name: str = "figure",
    table: pd.DataFrame | None = None,
) -> bytes:
    """A zip with the exported figure, ``provenance.json`` and optionally the data as CSV."""
    data, record = export_figure(fig, fmt, width=width, height=height, provenance=provenance)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{name}.{fmt}", data)
        archive.writestr(
            "provenance.json", json.dumps(record, indent=2, sort_keys=True, default=str)
        )
        if table is not None:
            archive.writestr(f"{name}.csv", table_csv(table))
    return buffer.getvalue()


def table_csv(df: pd.DataFrame, *, escape_formulas: bool = True) -> bytes:
    """A table as UTF-8 CSV bytes.

    The index is written when it carries information (named or not a default range).
    With ``escape_formulas``, text cells that a spreadsheet would run as a formula
    (starting with ``= + - @``) get a leading apostrophe; numbers are untouched (the same
    escaping as every CSV table ``radmap analyze`` writes).
    """
    keep_index = df.index.name is not None or not isinstance(df.index, pd.RangeIndex)
    if escape_formulas:
        return csv_text(df, index=keep_index).encode("utf-8")
    return df.to_csv(index=keep_index).encode("utf-8")
