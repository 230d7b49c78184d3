"""Pinned hypotheses: a per-bundle notebook of associations, with Markdown / HTML reports.

Pins of one bundle live in one JSON file. Several app workers may write at once, so every
change is read-modify-write under an exclusive ``fcntl.flock`` on a side lock file, and the
new file replaces the old one atomically (the one atomic write of ``analysis.io``). The previous good
version is kept as ``.bak``; if the main file does not parse (a crash, a full disk, a hand
edit) the store falls back to the backup, keeps the unreadable file aside as
``.corrupt-<time>`` and reports a warning instead of silently starting empty.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import html
import json
import logging
import math
import os
import re
import shutil
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

from ..analysis.io.files import atomic_write_text
from ..analysis.validate import InputError

PIN_KINDS = ("module", "gene", "feature", "prediction")
STATISTIC_KEYS = ("test", "effect", "p", "q", "n")
MAX_NOTE_CHARS = 20_000
MAX_FIGURE_BYTES = 2_000_000
"""Largest figure kept with a pin (its JSON); pins hold one association's plot."""
STORE_VERSION = 1
SAFE_BUNDLE_ID = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
MARKDOWN_SPECIALS = re.compile(r"([\\`*_{}\[\]()#!|~>])")

logger = logging.getLogger("radmap")


def _json_safe(value: Any) -> Any:
    """Plain JSON value: numpy scalars to Python, NaN / inf to None."""
    if isinstance(value, Mapping):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class PinStore:
    """Pins of one bundle, persisted in ``directory`` and safe across processes.

    Parameters
    ----------
    directory
        Folder of the pin files (created if missing).
    bundle_id
        Bundle identifier (e.g. its hash); pins of different bundles never mix.

    Attributes
    ----------
    path
        The JSON file of this bundle's pins.
    warnings
        Problems met while reading (e.g. recovery from the backup), for the user.
    """

    def __init__(self, directory: Path | str, bundle_id: str) -> None:
        bundle_id = str(bundle_id)
        if not bundle_id:
            raise InputError("bundle_id is empty: pass the bundle hash or name")
        stem = (
            bundle_id
            if SAFE_BUNDLE_ID.match(bundle_id)
            else hashlib.sha256(bundle_id.encode("utf-8")).hexdigest()[:32]
        )
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.bundle_id = bundle_id
        self.path = self.directory / f"pins-{stem}.json"
        self.backup_path = self.path.with_name(self.path.name + ".bak")
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.warnings: list[str] = []

    @contextlib.contextmanager
    def _locked(self, mode: int) -> Iterator[None]:
        with open(self.lock_path, "a+") as lock:
            fcntl.flock(lock.fileno(), mode)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def _warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)
        logger.warning(message)

    @staticmethod
    def _parse(path: Path) -> list[dict]:
        document = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(document, dict) or not isinstance(document.get("pins"), list):
            raise ValueError("not a radmap pin file (no 'pins' list)")
        return document["pins"]

    def _read(self) -> tuple[list[dict], bool]:
        """Pins on disk and whether the main file is sound (call with a lock held)."""
        if not self.path.exists():
            if self.backup_path.exists():
                return self._recover("is missing"), False
            return [], True
        try:
            return self._parse(self.path), True
        except (ValueError, UnicodeDecodeError) as error:
            return self._recover(f"could not be read ({error})"), False

    def _recover(self, problem: str) -> list[dict]:
        if self.backup_path.exists():
            try:
                pins = self._parse(self.backup_path)
            except (ValueError, UnicodeDecodeError) as error:
                self._warn(
                    f"pin file {self.path} {problem} and its backup too ({error}); "
                    "starting with no pins, the damaged files are kept"
                )
                return []
            self._warn(
                f"pin file {self.path} {problem}; restored {len(pins)} pins from "
                f"{self.backup_path.name} (changes after that backup are lost)"
            )
            return pins
        self._warn(f"pin file {self.path} {problem} and has no backup; starting with no pins")
        return []

    def _keep_backup(self) -> None:
        """Make the current (sound) file the backup; the main file never disappears."""
        staging = self.backup_path.with_name(f".{self.backup_path.name}.{uuid.uuid4().hex}")
        try:
            os.link(self.path, staging)
        except OSError:
            shutil.copy2(self.path, staging)
        os.replace(staging, self.backup_path)

    def _remove_stale_temporaries(self) -> None:
        """Delete temporary files left by a writer that was killed (call with LOCK_EX held).

        Every writer of this file holds the exclusive lock while its temporaries exist, so
        any found now belong to a dead process.
        """
        for stale in self.directory.glob(f".{self.path.name}*"):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
                logger.info("removed %s, left by an interrupted pin write", stale.name)

    def _write(self, pins: list[dict], *, main_is_sound: bool) -> None:
        """Replace the pin file atomically, keeping the previous good version as backup."""
        document = {"format": STORE_VERSION, "bundle_id": self.bundle_id, "pins": pins}
        text = json.dumps(_json_safe(document), indent=1, ensure_ascii=False, allow_nan=False)
        self._remove_stale_temporaries()

        def keep_previous() -> None:
            if not self.path.exists():
                return
            if main_is_sound:
                self._keep_backup()
            else:
                stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
                shutil.copy2(self.path, self.path.with_name(f"{self.path.name}.corrupt-{stamp}"))

        atomic_write_text(self.path, text, before_replace=keep_previous)

    def list(self) -> list[dict]:
        """All pins, oldest first."""
        with self._locked(fcntl.LOCK_SH):
            pins, _ = self._read()
        return sorted(pins, key=lambda pin: (pin.get("created", ""), pin.get("id", "")))

    def add(self, pin: Mapping[str, Any]) -> dict:
        """Store a new pin and return it with its ``id`` and ``created`` time.

        ``pin`` holds ``kind`` (``module`` / ``gene`` / ``feature``) and any of
        ``feature``, ``module``, ``gene``, ``statistics`` (``test``, ``effect``, ``p``,
        ``q``, ``n``), ``note``, ``url``, ``figure`` (plotly JSON string or dict).
        """
        record = _normalise_pin(pin)
        record["id"] = uuid.uuid4().hex[:16]
        record["created"] = _now()
        with self._locked(fcntl.LOCK_EX):
            pins, sound = self._read()
            pins.append(record)
            self._write(pins, main_is_sound=sound)
        return record

    def update(self, pin_id: str, note: str) -> dict:
        """Replace the note of a pin and return the pin."""
        note = _check_note(note)
        with self._locked(fcntl.LOCK_EX):
            pins, sound = self._read()
            for pin in pins:
                if pin.get("id") == pin_id:
                    pin["note"] = note
                    pin["updated"] = _now()
                    self._write(pins, main_is_sound=sound)
                    return pin
        raise InputError(f"no pin with id {pin_id!r} for bundle {self.bundle_id!r}")

    def remove(self, pin_id: str) -> None:
        """Delete a pin."""
        with self._locked(fcntl.LOCK_EX):
            pins, sound = self._read()
            kept = [pin for pin in pins if pin.get("id") != pin_id]
            if len(kept) == len(pins):
                raise InputError(f"no pin with id {pin_id!r} for bundle {self.bundle_id!r}")
            self._write(kept, main_is_sound=sound)


def _check_note(note: Any) -> str:
    note = "" if note is None else str(note)
    if len(note) > MAX_NOTE_CHARS:
        raise InputError(f"note is {len(note)} characters long; keep it under {MAX_NOTE_CHARS}")
    return note


def _normalise_pin(pin: Mapping[str, Any]) -> dict:
    kind = pin.get("kind")
    if kind not in PIN_KINDS:
        raise InputError(f"pin kind must be one of {PIN_KINDS}, got {kind!r}")
    statistics = pin.get("statistics") or {}
    if not isinstance(statistics, Mapping):
        raise InputError("pin statistics must be a dict with test, effect, p, q, n")
    figure = pin.get("figure")
    if isinstance(figure, str):
        try:
            figure = json.loads(figure)
        except ValueError as error:
            raise InputError(f"pin figure is not plotly JSON ({error})") from None
    if isinstance(figure, go.Figure):
        figure = json.loads(figure.to_json())
    if figure is not None and len(json.dumps(figure, default=str)) > MAX_FIGURE_BYTES:
        raise InputError(
            f"the pinned figure is larger than {MAX_FIGURE_BYTES // 1_000_000} MB; "
            "pin a smaller view"
        )
    record = {
        "kind": kind,
        "feature": pin.get("feature"),
        "module": pin.get("module"),
        "gene": pin.get("gene"),
        "statistics": {key: statistics.get(key) for key in STATISTIC_KEYS}
        | {str(key): value for key, value in statistics.items() if key not in STATISTIC_KEYS},
        "label": pin.get("label"),
        "note": _check_note(pin.get("note")),
        "url": pin.get("url"),
        "subset": pin.get("subset"),
        "figure": figure,
    }
    for key in ("feature", "module", "gene", "url", "label", "subset"):
        if record[key] is not None:
            record[key] = str(record[key])
    return _json_safe(record)


# ---------------------------------------------------------------------------- reports


def _format_number(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if isinstance(value, int) or float(value).is_integer() and abs(value) >= 1:
            return f"{int(value)}"
        return f"{value:.3g}"
    return str(value)


def _subject(pin: Mapping[str, Any]) -> str:
    if pin.get("label"):
        return str(pin["label"])
    parts = [pin.get(key) for key in ("feature", "module", "gene") if pin.get(key)]
    return " × ".join(str(part) for part in parts) or str(pin.get("kind", ""))


def safe_url(url: Any) -> str | None:
    """The app-relative link (``/page?query``) of a pin's ``url``, or None.

    Pins link to views of this app only. An ``http(s)`` URL (pins saved by older versions)
    keeps only its path and query; anything else with a scheme (``javascript:``) is refused,
    and so are the spellings browsers read as another host: ``//host``, ``/\\host``,
    ``\\\\host`` and control characters (a tab in ``/<tab>/host`` is dropped by browsers).
    """
    if not url:
        return None
    text = str(url).strip()
    if any(ord(character) < 32 or ord(character) == 127 for character in text):
        return None
    parts = urlsplit(text)
    if parts.scheme.lower() in ("http", "https") and parts.netloc:
        text = parts.path + (f"?{parts.query}" if parts.query else "")
        parts = urlsplit(text)
    if not text.startswith("/") or text.startswith("//") or "\\" in text:
        return None
    if parts.scheme or parts.netloc:
        return None
    return text


def escape_markdown(text: Any) -> str:
    """Text shown literally by Markdown renderers: HTML escaped, Markdown syntax escaped."""
    escaped = html.escape(str(text), quote=False)
    return MARKDOWN_SPECIALS.sub(r"\\\1", escaped)


def _markdown_cell(text: Any) -> str:
    return escape_markdown(text).replace("\r", "").replace("\n", "<br>")


def report_markdown(
    pins: Sequence[Mapping[str, Any]], *, bundle_info: Mapping[str, Any] | None = None
) -> str:
    """Pinned hypotheses as Markdown: a summary table, then one section per pin.

    Notes and every other user-provided text are escaped (HTML and Markdown syntax), so
    that a renderer shows them as written and cannot run them; links are kept only when
    they are paths of the app (:func:`safe_url`).
    """
    info = dict(bundle_info or {})
    lines = ["# radmap hypotheses", ""]
    for key, value in info.items():
        lines.append(f"- **{escape_markdown(key)}**: {escape_markdown(value)}")
    lines += ["", f"{len(pins)} pinned hypotheses.", ""]
    if pins:
        header = ["#", "kind", "feature", "module", "gene", "test", "effect", "p", "q", "n"]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" * len(header))
        for number, pin in enumerate(pins, start=1):
            stats = pin.get("statistics") or {}
            cells = [
                str(number),
                pin.get("kind", ""),
                pin.get("feature") or "",
                pin.get("module") or "",
                pin.get("gene") or "",
                stats.get("test") or "",
                _format_number(stats.get("effect")),
                _format_number(stats.get("p")),
                _format_number(stats.get("q")),
                _format_number(stats.get("n")),
            ]
            lines.append("| " + " | ".join(_markdown_cell(cell) for cell in cells) + " |")
        lines.append("")
    for number, pin in enumerate(pins, start=1):
        lines += [f"## {number}. {escape_markdown(_subject(pin))}", ""]
        lines.append(f"*pinned {escape_markdown(pin.get('created', ''))}*")
        url = safe_url(pin.get("url"))
        if url:
            lines.append(f"[open this view](<{quote(url, safe=':/?#=&%+,;@!$*.-_~')}>)")
        lines.append("")
        note = str(pin.get("note") or "")
        if note.strip():
            lines += ["> " + escape_markdown(line) for line in note.splitlines()]
        else:
            lines.append("*no note*")
        if pin.get("figure"):
            lines += ["", "*figure pinned: see the HTML report*"]
        lines.append("")
    return "\n".join(lines)


HTML_STYLE = """
body { font-family: Arial, Helvetica, 'Liberation Sans', sans-serif; max-width: 60rem;
       margin: 2rem auto; padding: 0 1rem; color: #222; line-height: 1.4; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left; }
th { background: #f3f3f3; }
.pin { border-top: 1px solid #ddd; margin-top: 2rem; padding-top: 1rem; }
.note { white-space: pre-wrap; background: #fafafa; border-left: 3px solid #0072B2;
        padding: 0.5rem 0.75rem; }
.figure svg { max-width: 100%; height: auto; }
.muted { color: #666; font-size: 0.85rem; }
"""


def _figure_html(
    figure: Mapping[str, Any], embed: Literal["svg", "plotly", "none"], number: int
) -> str:
    fig = go.Figure(figure)
    if embed == "svg":
        from .export import export_figure

        try:
            svg, _ = export_figure(fig, "svg", width="double")
        except Exception as error:  # noqa: BLE001 - the report is still worth having
            logger.warning("pinned figure %s not rendered: %s", number, error)
            return f'<p class="muted">figure could not be rendered ({html.escape(str(error))})</p>'
        return f'<div class="figure">{svg.decode("utf-8")}</div>'
    if embed == "plotly":
        return pio.to_html(
            fig,
            include_plotlyjs=False,
            full_html=False,
            div_id=f"pin-figure-{number}",
            config={"displaylogo": False},
        )
    return ""


def report_html(
    pins: Sequence[Mapping[str, Any]],
    *,
    bundle_info: Mapping[str, Any] | None = None,
    figures: Literal["svg", "plotly", "none"] = "svg",
    title: str = "radmap hypotheses",
) -> str:
    """Pinned hypotheses as one self-contained HTML page (no network needed to view it).

    Parameters
    ----------
    pins
        Pins as returned by :meth:`PinStore.list`.
    bundle_info
        Key/value facts about the bundle (name, hash, created, ...).
    figures
        Pinned figures as static inline SVG (rendered with :mod:`explorer.export`),
        interactive plotly with plotly.js inlined once (~4.5 MB), or left out.
    title
        Page title.

    Returns
    -------
    The HTML text; every user-provided text is HTML-escaped, links are kept only when
    they are paths of the app (:func:`safe_url`).
    """
    if figures not in ("svg", "plotly", "none"):
        raise InputError(f"figures must be 'svg', 'plotly' or 'none', got {figures!r}")
    esc = html.escape
    info = dict(bundle_info or {})
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title><style>{HTML_STYLE}</style>",
    ]
    has_figures = figures == "plotly" and any(pin.get("figure") for pin in pins)
    if has_figures:
        parts.append(f'<script type="text/javascript">{get_plotlyjs()}</script>')
    parts += ["</head><body>", f"<h1>{esc(title)}</h1>"]
    if info:
        parts.append("<table>")
        parts += [f"<tr><th>{esc(str(k))}</th><td>{esc(str(v))}</td></tr>" for k, v in info.items()]
        parts.append("</table>")
    parts.append(f"<p>{len(pins)} pinned hypotheses.</p>")
    if pins:
        header = ["#", "kind", "feature", "module", "gene", "test", "effect", "p", "q", "n"]
        parts.append("<table><tr>" + "".join(f"<th>{h}</th>" for h in header) + "</tr>")
        for number, pin in enumerate(pins, start=1):
            stats = pin.get("statistics") or {}
            cells = [
                f'<a href="#pin-{number}">{number}</a>',
                esc(str(pin.get("kind", ""))),
                esc(str(pin.get("feature") or "")),
                esc(str(pin.get("module") or "")),
                esc(str(pin.get("gene") or "")),
                esc(str(stats.get("test") or "")),
                esc(_format_number(stats.get("effect"))),
                esc(_format_number(stats.get("p"))),
                esc(_format_number(stats.get("q"))),
                esc(_format_number(stats.get("n"))),
            ]
            parts.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
        parts.append("</table>")
    for number, pin in enumerate(pins, start=1):
        parts.append(f'<section class="pin" id="pin-{number}">')
        parts.append(f"<h2>{number}. {esc(_subject(pin))}</h2>")
        meta = f"pinned {esc(str(pin.get('created', '')))}"
        url = safe_url(pin.get("url"))
        if url:
            meta += f' · <a href="{esc(url, quote=True)}">open this view</a>'
        parts.append(f'<p class="muted">{meta}</p>')
        note = str(pin.get("note") or "")
        parts.append(
            f'<div class="note">{esc(note)}</div>'
            if note.strip()
            else '<p class="muted">no note</p>'
        )
        if pin.get("figure") and figures != "none":
            parts.append(_figure_html(pin["figure"], figures, number))
        parts.append("</section>")
    parts.append(f'<p class="muted">generated {esc(_now())} by radmap</p></body></html>')
    return "\n".join(parts)
