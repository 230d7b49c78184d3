"""How long the user waits, measured in a real Chromium: navigation or input -> figure drawn.

Usage::

    .venv/bin/python benchmarks/bench_browser.py --bundle study.h5ad --repeat 5
    .venv/bin/python benchmarks/bench_browser.py --url http://127.0.0.1:8050   # a running app

Without ``--url`` the bundle is served with the documented gunicorn command (2 workers,
127.0.0.1 only) and stopped at the end. The browser is Debian's ``/usr/bin/chromium``
(headless, 1600 x 1000, fresh profile). Measured, each ``--repeat`` times, median printed:

- page load: ``driver.get(page)`` until the page's main figure has data, is drawn and no
  Dash component is loading (``performance.now()``: from navigation start), from a page at
  rest (its figures, tables and callbacks done, its main thread idle), as after a look at
  it; and once more right after the previous page's main figure was drawn ("right after
  another"), when the rest of that page (its tables, other figures, callbacks on the
  server) still runs and delays the new one;
- in-app moves: a link to another volcano feature / another gene (history push, as a link
  in the app does) until the new figure is drawn;
- choices: another feature in the volcano's dropdown, another FDR threshold on the map,
  another gene in the gene page's search, set as the user's choice sets it (Dash's
  ``set_props``), until the figure is redrawn (for the gene, also until all three of the
  page's figures are: the first of a response's figures is drawn before the others);
- map drill-down: a click on a map cell (the heatmap's ``clickData``, as plotly sets it)
  until the cell's phenotype plot is drawn below the map;
- subset change: the map recomputed for a subset of the patients (two levels of a
  categorical clinical column, another each round, as the subset panel's Apply sets it)
  until redrawn (a server that has already run the bench keeps these subsets in memory:
  compare servers started for the run);
- bytes: transferred vs decoded size of the first layout and the callback responses of a
  volcano load (compression shows as transferred < decoded).

Moves, choices, the drill-down and the subset change start from the page at rest too (no
Dash component loading, then the main thread idle): started as soon as the main thread was
idle, they ran while the page's last callbacks of its load were still on the server.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.explorer.dash_client import start_gunicorn, stop  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
PAGES = {
    "map": "map-heatmap",
    "volcano": "volcano",
    "gene": "gene-bar",
    "module": "module-heatmap",
    "cohort": "cohort-missing",
}

DRAWN_JS = """
const done = arguments[arguments.length - 1];
const name = arguments[0], previous = arguments[1], limit = performance.now() + 60000;
function graph() {
  const root = document.getElementById(JSON.stringify({fig: name, role: 'graph'}));
  return root && root.querySelector('.js-plotly-plot');
}
function check() {
  const gd = graph();
  const busy = document.querySelector('[data-dash-is-loading="true"]');
  const drawn = gd && gd._fullLayout && gd.data && gd.data.length && gd.querySelector('.main-svg');
  const fresh = !previous || (gd && gd.dataset.rmMark !== previous);
  if (drawn && !busy && fresh) { done(performance.now()); return; }
  if (performance.now() > limit) { done(-1); return; }
  requestAnimationFrame(check);
}
check();
"""

MARK_JS = """
const root = document.getElementById(JSON.stringify({fig: arguments[0], role: 'graph'}));
const gd = root && root.querySelector('.js-plotly-plot');
if (!gd) return null;
const mark = String(Math.random());
gd.dataset.rmMark = mark;  // a re-rendered figure div loses it, a redraw keeps the node...
const react = gd.data;
window.__rmData = react;
return mark;
"""

CHANGED_JS = """
const done = arguments[arguments.length - 1];
const name = arguments[0], limit = performance.now() + 60000, started = arguments[1];
function check() {
  const root = document.getElementById(JSON.stringify({fig: name, role: 'graph'}));
  const gd = root && root.querySelector('.js-plotly-plot');
  const busy = document.querySelector('[data-dash-is-loading="true"]');
  if (gd && gd.data && gd.data !== window.__rmData && gd._fullLayout && !busy) {
    done(performance.now() - started); return;
  }
  if (performance.now() > limit) { done(-1); return; }
  requestAnimationFrame(check);
}
check();
"""

MARK_ALL_JS = """
window.__rmAllData = Array.from(document.querySelectorAll('.js-plotly-plot')).map((gd) => gd.data);
"""

ALL_CHANGED_JS = """
const done = arguments[arguments.length - 1];
const started = arguments[0], limit = performance.now() + 60000;
function check() {
  const graphs = Array.from(document.querySelectorAll('.js-plotly-plot'));
  const busy = document.querySelector('.dash-graph--pending, [data-dash-is-loading="true"]');
  if (!busy && graphs.every((gd, k) => gd.data && gd.data !== window.__rmAllData[k])) {
    done(performance.now() - started); return;
  }
  if (performance.now() > limit) { done(-1); return; }
  requestAnimationFrame(check);
}
check();
"""

PUSH_JS = """
window.history.pushState({}, '', arguments[0]);
window.dispatchEvent(new CustomEvent('_dashprivate_pushstate'));
return performance.now();
"""

SET_VALUE_JS = """
window.dash_clientside.set_props(arguments[0], {value: arguments[1]});
return performance.now();
"""

CLICK_CELL_JS = """
const root = document.getElementById(JSON.stringify({fig: 'map-heatmap', role: 'graph'}));
const gd = root.querySelector('.js-plotly-plot');
const cells = [];  // (trace, row, column) of every feature x module cell with a test
gd.data.forEach((trace, number) => {
  if (trace.type !== 'heatmap' || !trace.customdata) return;
  trace.customdata.forEach((row, r) => (row || []).forEach((custom, c) => {
    if (custom && custom[0] && custom[1] === trace.x[c]) cells.push([number, r, c]);
  }));
});
const [number, row, column] = cells[arguments[0] % cells.length];
const trace = gd.data[number];
const point = {curveNumber: number, x: trace.x[column], y: trace.y[row]};
window.dash_clientside.set_props({fig: 'map-heatmap', role: 'graph'}, {clickData: {points: [point]}});
return performance.now();
"""

SET_DATA_JS = """
window.dash_clientside.set_props(arguments[0], {data: arguments[1]});
return performance.now();
"""

BYTES_JS = """
return performance.getEntriesByType('resource')
  .filter((e) => e.name.includes('_dash-update-component') || e.name.includes('_dash-layout'))
  .map((e) => [e.transferSize, e.decodedBodySize]);
"""


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="radmap-bench-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1600,1000",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_script_timeout(90)
    driver.set_page_load_timeout(90)
    return driver, profile


def page_load(driver, url: str, figure: str) -> float:
    driver.get(url)
    return driver.execute_async_script(DRAWN_JS, figure, None)


QUIET_JS = """
const done = arguments[arguments.length - 1], limit = performance.now() + 30000;
(function check() {
  const busy = document.querySelector('[data-dash-is-loading="true"]');
  if (!busy || performance.now() > limit) { done(!busy); return; }
  setTimeout(check, 50);
})();
"""

IDLE_JS = """
const done = arguments[arguments.length - 1], limit = performance.now() + 5000;
let quiet = 0;
(function wait() {
  requestIdleCallback((deadline) => {
    quiet = deadline.timeRemaining() > 40 ? quiet + 1 : 0;
    if (quiet >= 3 || performance.now() > limit) done(quiet >= 3); else wait();
  }, {timeout: 1000});
})();
"""


def settle(driver) -> None:
    """Wait until the page's main thread is idle (three idle periods in a row with nothing
    else to do, at most 5 s): an interaction is timed from a page at rest, not while the
    load's last grid and figure work is still running. (The browser also offers idle time
    between two tasks of that work: one idle callback is no sign of rest.)"""
    driver.execute_async_script(IDLE_JS)


def at_rest(driver) -> None:
    """Wait until no Dash component of the page is loading (its callbacks answered) and its
    main thread is idle."""
    driver.execute_async_script(QUIET_JS)
    settle(driver)


def in_app_move(driver, path: str, figure: str) -> float:
    at_rest(driver)
    driver.execute_script(MARK_JS, figure)
    started = driver.execute_script(PUSH_JS, path)
    return driver.execute_async_script(CHANGED_JS, figure, started)


def control_change(
    driver, control: dict, value: str, figure: str, *, every_figure: bool = False
) -> float | tuple[float, float]:
    """Set a control's value as a user's choice does (Dash's ``set_props``) until redrawn;
    with ``every_figure``, also until every figure of the page is redrawn."""
    at_rest(driver)
    driver.execute_script(MARK_JS, figure)
    driver.execute_script(MARK_ALL_JS)
    started = driver.execute_script(SET_VALUE_JS, control, value)
    drawn = driver.execute_async_script(CHANGED_JS, figure, started)
    if not every_figure:
        return drawn
    return drawn, driver.execute_async_script(ALL_CHANGED_JS, started)


def map_drill(driver, k: int) -> float:
    """Click the ``k``-th cell of the map until its drill-down's phenotype plot is drawn."""
    at_rest(driver)
    driver.execute_script(MARK_JS, "map-phenotype")
    started = driver.execute_script(CLICK_CELL_JS, k)
    return driver.execute_async_script(CHANGED_JS, "map-phenotype", started)


def subset_change(driver, subset: str) -> float:
    """Apply ``subset`` to the map (its store, as the panel's Apply does) until redrawn."""
    at_rest(driver)
    driver.execute_script(MARK_JS, "map-heatmap")
    store = {"role": "state-store", "page": "map", "key": "subset"}
    started = driver.execute_script(SET_DATA_JS, store, subset)
    return driver.execute_async_script(CHANGED_JS, "map-heatmap", started)


def subsets(data) -> list[str]:
    """Subsets of two levels of a categorical clinical column (each round applies another,
    so that each is computed for the first time, as when a user applies one)."""
    pairs = []
    for column in data.subset_columns().values():
        if column.kind == "categorical" and column.source == "clinical":
            levels = column.levels
            pairs += [
                f"{column.name}:{a}|{b}" for i, a in enumerate(levels) for b in levels[i + 1 :]
            ]
    return pairs


def one_round(
    driver, base: str, volcano_features, genes, times: dict, k: int, subset: str | None = None
) -> list:
    """Every page load and in-app move once on the explorer at ``base``; volcano sizes."""
    for page, figure in PAGES.items():
        at_rest(driver)
        times.setdefault(f"load {page}", []).append(page_load(driver, f"{base}/{page}", figure))
    for page, figure in PAGES.items():
        times.setdefault(f"load {page}, right after another", []).append(
            page_load(driver, f"{base}/{page}", figure)
        )
    page_load(driver, f"{base}/volcano", "volcano")
    sizes = driver.execute_script(BYTES_JS)
    feature = volcano_features[k % len(volcano_features)]
    times.setdefault("move volcano feature", []).append(
        in_app_move(driver, f"/volcano?feature={feature}", "volcano")
    )
    page_load(driver, f"{base}/gene", "gene-bar")
    gene = genes[k % len(genes)]
    times.setdefault("move gene", []).append(in_app_move(driver, f"/gene?gene={gene}", "gene-bar"))
    page_load(driver, f"{base}/volcano", "volcano")
    feature = volcano_features[(k + 1) % len(volcano_features)]
    volcano_control = {"role": "state", "page": "volcano", "key": "feature"}
    times.setdefault("choose volcano feature", []).append(
        control_change(driver, volcano_control, feature, "volcano")
    )
    page_load(driver, f"{base}/map", "map-heatmap")
    map_q = {"role": "state", "page": "map", "key": "q"}
    times.setdefault("choose map FDR", []).append(
        control_change(driver, map_q, (0.1, 0.01, 0.25)[k % 3], "map-heatmap")
    )
    page_load(driver, f"{base}/gene", "gene-bar")
    gene = genes[(k + 1) % len(genes)]
    gene_control = {"role": "state", "page": "gene", "key": "gene"}
    drawn, every = control_change(driver, gene_control, gene, "gene-bar", every_figure=True)
    times.setdefault("choose gene", []).append(drawn)
    times.setdefault("choose gene, all 3 figures", []).append(every)
    page_load(driver, f"{base}/map", "map-heatmap")
    times.setdefault("map drill-down", []).append(map_drill(driver, 7 * k + 3))
    if subset:
        page_load(driver, f"{base}/map", "map-heatmap")
        times.setdefault("subset change (map)", []).append(subset_change(driver, subset))
    return sizes


def cpu_times() -> list[int] | None:
    """The machine's CPU time counters (``/proc/stat``: user, nice, system, idle, iowait,
    irq, softirq, steal), or None where there is no such file."""
    try:
        return [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:9]]
    except (OSError, ValueError):
        return None


def machine_state(before: list[int] | None, after: list[int] | None) -> str:
    """What else the machine did while the run took its times (shared machines are noisy)."""
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    text = f"load average at the end {load} on {os.cpu_count()} CPUs"
    if before and after:
        spent = [b - a for a, b in zip(before, after, strict=True)]
        total = sum(spent) or 1
        idle, steal = spent[3] + spent[4], spent[7]
        text += (
            f"; CPU time during the run: {100 * (total - idle - steal) / total:.0f} % busy "
            f"(browser, server and anything else), {100 * steal / total:.0f} % taken by "
            "other machines on the host"
        )
    return text


def median(values: list[float]) -> float:
    good = [v for v in values if v >= 0]
    return statistics.median(good) if good else float("nan")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", type=Path, required=True, help="bundle to serve / read")
    parser.add_argument("--url", help="an explorer already running on --bundle (not started)")
    parser.add_argument(
        "--baseline",
        help="a second explorer on the same bundle (e.g. the previous version) measured in "
        "the same run, round by round in turn with the first; ratios are printed",
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path, help="write every time to this file")
    args = parser.parse_args(argv)
    from radmap.explorer.data import BundleData

    data = BundleData(args.bundle)
    volcano_features = list(data.gene_features[1:6])
    genes = [str(gene) for gene in data.genes[1:6]]
    chosen_subsets = subsets(data)
    server = workdir = None
    if not args.url:
        workdir = Path(tempfile.mkdtemp(prefix="radmap-bench-app-"))
        server = start_gunicorn(args.bundle, workdir)
        base = server.base
    else:
        base = args.url.rstrip("/")
    bases = {"this": base}
    if args.baseline:
        bases["baseline"] = args.baseline.rstrip("/")
    driver, profile = browser()
    started = cpu_times()
    times: dict[str, dict[str, list[float]]] = {name: {} for name in bases}
    sizes: dict[str, list] = {}
    try:
        for url in bases.values():
            page_load(driver, f"{url}/map", "map-heatmap")  # warm the browser cache once
        for k in range(args.repeat):
            for name, url in bases.items():
                subset = chosen_subsets[k % len(chosen_subsets)] if chosen_subsets else None
                sizes[name] = one_round(
                    driver, url, volcano_features, genes, times[name], k, subset=subset
                )
    finally:
        ended = cpu_times()
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
        if server is not None:
            stop(server.process)
            shutil.rmtree(workdir, ignore_errors=True)
    for name, url in bases.items():
        transferred = sum(size[0] for size in sizes[name])
        decoded = sum(size[1] for size in sizes[name])
        print(f"explorer at {url} ({name}), {args.repeat} repeats, medians in ms")
        for label, values in times[name].items():
            print(
                f"  {label:34s} {median(values):8.0f}   (all: {', '.join(f'{v:.0f}' for v in values)})"
            )
        print(
            f"  volcano load (layout + callbacks): {decoded / 1024:.0f} KB decoded, "
            f"{transferred / 1024:.0f} KB sent"
        )
    print(machine_state(started, ended))
    if args.baseline:
        print("this / baseline (medians; < 1 is faster)")
        for label, values in times["this"].items():
            before = median(times["baseline"][label])
            print(f"  {label:34s} {median(values) / before:8.2f}")
    if args.json:
        args.json.write_text(json.dumps({"times_ms": times, "bases": bases}))


if __name__ == "__main__":
    main()
