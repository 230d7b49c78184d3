/* radmap explorer: small browser-side callbacks (served from /assets, no inline script). */

/* Run `next` once the browser has painted (at once in a hidden tab, which paints nothing). */
function afterNextPaint(next) {
  if (document.hidden) {
    window.setTimeout(next, 0);
  } else {
    window.requestAnimationFrame(function () { window.setTimeout(next, 0); });
  }
}

/* Sent on the document each time plotly has drawn a figure (drawInTurns below). */
const FIGURE_DRAWN_EVENT = "radmap:figure-drawn";

window.dash_clientside = Object.assign({}, window.dash_clientside, {
  radmap: {
    /* A new query string (`search`, from the controls' write) and header (`header`, with
       it or after a navigation): one browser-side callback for both, as both come in the
       same answer when a control changes a shared key (each callback costs the page ~15
       updates of Dash's store).
       The query string: `replace` (a page filling in its defaults) rewrites the current
       history entry first, so dcc.Location sees no change to push and Back leaves the
       page; otherwise dcc.Location pushes a new entry. The header: its FDR threshold and
       the navigation links (header_view in explorer/callbacks/core.py). */
    applyUrlState: function (search, header) {
      const noUpdate = window.dash_clientside.no_update;
      const triggered = window.dash_clientside.callback_context.triggered.map(function (t) {
        return t.prop_id;
      });
      /* the page load's call: the first layout's query string (the URL's defaults) */
      const initial = !triggered.length || triggered.indexOf(".") >= 0;
      let written = [noUpdate, noUpdate, noUpdate];
      let shownHeader = [noUpdate, noUpdate, noUpdate];
      if (search && typeof search.search === "string" &&
          (initial || triggered.indexOf("search-update.data") >= 0)) {
        const url = window.location.pathname + search.search + window.location.hash;
        if (search.replace) {
          window.history.replaceState(window.history.state, "", url);
        }
        /* href too: dcc.Location pushes its href prop when it differs from the address
           bar, and a stale href would push the old address back (and render the page
           again). */
        const shown = {pathname: window.location.pathname, search: search.search};
        written = [search.search, window.location.origin + url, shown];
      }
      if (header && triggered.indexOf("header-update.data") >= 0) {
        shownHeader = [header.q, header.hrefs, header.active];
      }
      return written.concat(shownHeader);
    },
    /* What a new URL needs from the server, decided in the browser (one callback, so a
       control's own query string costs one browser-side step and no request):
       - the page, only when the URL differs from the one the page shows (a page load
         carries its page; the controls' own query string is already shown);
       - the header, only when the path or a shared key's value changes (the same key as
         header_key in explorer/callbacks/core.py). */
    urlGate: function (pathname, search, shown, header) {
      const noUpdate = window.dash_clientside.no_update;
      const query = search || "";
      const request = {pathname: pathname, search: query};
      const same = shown && shown.pathname === pathname && shown.search === query;
      const keys = (header && header.keys) || [];
      const params = new URLSearchParams(query);
      const shared = keys.map(function (key) {
        const value = params.get(key);
        return key + "=" + (value === null ? "" : value);
      });
      const key = (pathname || "") + "?" + shared.join("&");
      if (header && header.key === key) {
        return [same ? noUpdate : request, noUpdate, noUpdate];
      }
      return [same ? noUpdate : request, request, {keys: keys, key: key}];
    },
    /* true once the graph whose figure triggered this is drawn (a page's parts that
       follow it wait for this); no update when `ready` already is. */
    afterDrawn: function (figure, ready) {
      if (ready) {
        return window.dash_clientside.no_update;
      }
      const trigger = window.dash_clientside.callback_context.inputs_list[0].id;
      const limit = performance.now() + 5000;
      return new Promise(function (resolve) {
        function check() {
          const root = document.getElementById(JSON.stringify(trigger));
          const plot = root && root.querySelector(".js-plotly-plot");
          if ((plot && plot._fullLayout && plot.querySelector(".main-svg")) ||
              performance.now() > limit) {
            window.requestAnimationFrame(function () { resolve(true); });
            return;
          }
          window.requestAnimationFrame(check);
        }
        check();
      });
    },
    /* Bring the map's drill-down into view once it shows a clicked cell. */
    revealDrill: function (title, click) {
      if (click && title) {
        const panel = document.getElementById("map-drill");
        if (panel) {
          window.requestAnimationFrame(function () {
            panel.scrollIntoView({behavior: "smooth", block: "start"});
          });
        }
      }
      return window.dash_clientside.no_update;
    },
    /* The (feature, module) of a clicked map cell: its customdata[0:2]. Dash leaves
       customdata out of heatmap click events, and a click on a cell's marker (its
       significance dot or stability box, traces of their own) carries none, so the cell
       is looked up by its row (y) and column (x) labels: in the clicked trace, else in
       the figure's other traces. Read in the browser: the server would be sent the whole
       map for two labels, one round trip before the drill-down is asked for. */
    cellFromClick: function (click, figure) {
      const point = click && click.points && click.points[0];
      let cell = point && point.customdata;
      if (point && cell == null && figure && Array.isArray(figure.data)) {
        const cellAt = function (trace) {
          if (!trace || !Array.isArray(trace.x) || !Array.isArray(trace.y) ||
              !Array.isArray(trace.customdata)) {
            return null;
          }
          const cells = trace.customdata[trace.y.indexOf(point.y)];
          const column = trace.x.indexOf(point.x);
          return Array.isArray(cells) && column >= 0 ? cells[column] : null;
        };
        cell = cellAt(figure.data[point.curveNumber]);
        for (let i = 0; cell == null && i < figure.data.length; i++) {
          cell = cellAt(figure.data[i]);
        }
      }
      if (!Array.isArray(cell) || cell.length < 2 || !cell[0] || !cell[1]) {
        throw window.dash_clientside.PreventUpdate;
      }
      return [String(cell[0]), String(cell[1])];
    },
    /* Open / close the folded navigation bar; a page change (new pathname) closes it. */
    toggleNavbar: function (clicks, pathname, isOpen) {
      const trigger = window.dash_clientside.callback_context.triggered_id;
      return trigger === "navbar-toggler" ? !isOpen : false;
    },
  },
});

/* dcc.Graph redraws its figure whenever the graph's box changes size (Plotly.Plots.resize),
   even when plotly has just drawn the new figure at that size: a card taking the height of
   the figure it shows drew each such figure twice. Resize only when the size plotly would
   take from the box differs from the drawn one. radmap's plotly.js build is loaded before
   this file; Dash's own plotly.js would arrive on first use of a graph, after it, so the
   guard (and drawInTurns below) is also put in place when plotly.js arrives. */
(function guardGraphResize() {
  function guard(plotly) {
    if (!plotly || !plotly.Plots || plotly.Plots.resize.radmapGuard) {
      return;
    }
    const resize = plotly.Plots.resize;
    plotly.Plots.resize = function (gd) {
      const full = gd && gd._fullLayout;
      if (full && gd.layout && !gd.layout.width) {
        const style = window.getComputedStyle(gd);
        const width = parseFloat(style.width);
        const height = parseFloat(style.height);
        if (Math.abs(width - full.width) < 1 && Math.abs(height - full.height) < 1) {
          return Promise.resolve(gd);
        }
      }
      return resize.apply(this, arguments);
    };
    plotly.Plots.resize.radmapGuard = true;
    drawAtScreenResolution(plotly);
    drawInTurns(plotly);
  }
  /* plotly draws WebGL traces (the volcano) at twice the screen's resolution by default,
     which is meant for image export (radmap exports on the server). On a screen of one
     device pixel per CSS pixel that is four times the pixels to create, clear and draw:
     without a GPU, the volcano's two WebGL contexts took ~160 ms to create instead of
     ~80 ms. Draw at the screen's own resolution (rounded up), following zoom changes. */
  function drawAtScreenResolution(plotly) {
    function follow() {
      const ratio = Math.min(4, Math.max(1, Math.ceil(window.devicePixelRatio || 1)));
      plotly.setPlotConfig({plotGlPixelRatio: ratio});
      window.matchMedia("(resolution: " + window.devicePixelRatio + "dppx)")
        .addEventListener("change", follow, {once: true});
    }
    follow();
  }
  /* A response that brings several figures has dcc.Graph draw them all in one task (one
     chain of promise callbacks), so the browser paints none of them until it has drawn the
     last: a gene choice showed its association bar only after the phenotype plot and the
     survival curves were drawn too. Draw the first shown figure at once and the others, in
     the order they came (top of the page first), once the browser has painted it; figures
     of a panel not shown (the map's hidden drill-down and comparison) never go first. A
     newer figure for a graph replaces one still waiting. */
  function drawInTurns(plotly) {
    const react = plotly.react;
    let waiting = [];
    let turnTaken = false;
    let flushPlanned = false;
    /* Not shown: out of the layout (display: none), or in a panel kept hidden at its width
       (HIDDEN_AT_WIDTH in explorer/pages/common.py). A graph whose loading spinner shows
       (visibility: hidden until its figure comes) is shown. */
    function shown(gd) {
      if (!(gd instanceof Element)) {
        return true;
      }
      return gd.getClientRects().length > 0 &&
        window.getComputedStyle(gd).getPropertyValue("--rm-hidden-panel").trim() !== "1";
    }
    function run(call) {
      const gd = call.args[0];
      if (call.deferred && gd instanceof Element && !gd.isConnected) {
        call.resolve(gd);  // the graph left the page while it waited
        return;
      }
      let drawn;
      try {
        fitBox(gd, figureParts(call.args).layout);
        drawn = react.apply(plotly, titleUnderToolbar(titleFitted(call.args)));
      } catch (error) {
        drawn = Promise.reject(error);
      }
      Promise.resolve(drawn).then(call.resolve, call.reject).then(announceDrawn);
    }
    function announceDrawn() {
      document.dispatchEvent(new Event(FIGURE_DRAWN_EVENT));
    }
    function flushAfterPaint() {
      if (flushPlanned) {
        return;
      }
      flushPlanned = true;
      afterNextPaint(function () {
        flushPlanned = false;
        turnTaken = false;
        const calls = waiting;
        const drawing = calls.filter(hasTraces);
        const now = drawing.length ? drawing : calls;
        waiting = calls.filter(function (call) { return now.indexOf(call) < 0; });
        now.forEach(run);
        if (waiting.length) {
          flushAfterPaint();
        }
      });
    }
    /* On a device without hover (a phone, a tablet) plotly shows its toolbar at all times,
       over the top right of the figure, where a title longer than the space left of it ran
       under the buttons (7 of the 16 titled figures on the demo at 500 px). There, each
       title starts under the toolbar's band, and the top margin grows by as much. The
       figures keep their layout where the toolbar shows only under the pointer. */
    const TOOLBAR_PX = 32;
    const NO_HOVER = window.matchMedia("(hover: none)").matches;  // as plotly.js decides
    const TITLE_LINE = 1.3;  // line height of a title of several lines, in font sizes
    const LINE_BREAK = /<br\s*\/?>/i;
    /* A figure's title and what places it: its font size and family, the top margin, and
       whether it is placed from the top (title_from_top in style.py: its pad holds the
       lines above the last) rather than centred in the top margin. */
    function titleParts(args) {
      const layout = figureParts(args).layout;
      const title = layout && (typeof layout.title === "string" ? {text: layout.title} : layout.title);
      if (!title || typeof title.text !== "string" || !title.text) {
        return null;
      }
      const template = (layout.template && layout.template.layout) || {};
      const font = Object.assign({}, template.font, layout.font, (template.title || {}).font, title.font);
      return {
        layout: layout, title: title,
        size: (title.font && title.font.size) || ((template.title || {}).font || {}).size || 16,
        family: font.family || "sans-serif",
        marginTop: (layout.margin || {}).t != null ? layout.margin.t : (template.margin || {}).t || 100,
        fromTop: title.yref === "container" && title.yanchor === "top" && title.y === 1,
      };
    }
    /* Plotly.react's arguments, (gd, figure) or (gd, data, layout), with this title and
       top margin. */
    function withTitle(args, parts, title, marginTop) {
      const layout = Object.assign({}, parts.layout, {
        title: title, margin: Object.assign({}, parts.layout.margin, {t: marginTop}),
      });
      const rest = Array.prototype.slice.call(args, Array.isArray(args[1]) ? 3 : 2);
      return (Array.isArray(args[1]) ? [args[0], args[1], layout]
        : [args[0], Object.assign({}, args[1], {layout: layout})]).concat(rest);
    }
    /* A title wider than its figure (a phenotype plot's "GENE x <a long feature name>
       (q = ...)" on a phone) ran past the figure's right edge, cut by its card. Break it
       where words meet into lines that fit the figure, and give the top margin their
       height. A figure of a fixed width, and a title with markup other than line breaks,
       are drawn as they come. */
    let measure = null;
    function titleFitted(args) {
      const parts = titleParts(args);
      const gd = args[0];
      if (!parts || parts.layout.width || !(gd instanceof Element) || /<(?!br\s*\/?>)/i.test(parts.title.text)) {
        return args;
      }
      const room = gd.clientWidth - ((parts.title.pad || {}).l || 0) - 8;
      const written = parts.title.text.split(LINE_BREAK);
      if (!(room > 0) || written.every(function (line) { return line.length * parts.size * 0.45 < room; })) {
        return args;  // every line shorter than the narrowest font could make it
      }
      measure = measure || document.createElement("canvas").getContext("2d");
      measure.font = parts.size + "px " + parts.family;
      const lines = [];
      written.forEach(function (line) {
        let current = "";
        // "q = 1.2e-5" stays on one line
        line.replace(/ = /g, "\u00a0=\u00a0").split(" ").forEach(function (word) {
          const longer = current ? current + " " + word : word;
          if (current && measure.measureText(longer).width > room) {
            lines.push(current);
            current = word;
          } else {
            current = longer;
          }
        });
        lines.push(current);
      });
      const extra = (lines.length - written.length) * parts.size * TITLE_LINE;
      if (!extra) {
        return args;
      }
      const text = lines.join("<br>").replace(/\u00a0=\u00a0/g, " = ");
      const title = Object.assign({}, parts.title, {text: text});
      if (parts.fromTop) {
        title.pad = Object.assign({}, parts.title.pad, {t: ((parts.title.pad || {}).t || 0) + extra});
      }
      return withTitle(args, parts, title, parts.marginTop + extra);
    }
    function titleUnderToolbar(args) {
      const parts = NO_HOVER && titleParts(args);
      if (!parts) {
        return args;
      }
      const above = (parts.title.text.split(LINE_BREAK).length - 1) * parts.size * TITLE_LINE;
      const first = parts.fromTop ? ((parts.title.pad && parts.title.pad.t) || 0) - above
        : (parts.marginTop - parts.size - above) / 2;
      if (first >= TOOLBAR_PX) {
        return args;
      }
      const moved = Object.assign({}, parts.title, {yref: "container", y: 1, yanchor: "top",
        pad: Object.assign({}, parts.title.pad, {t: TOOLBAR_PX + above})});
      return withTitle(args, parts, moved, parts.marginTop + TOOLBAR_PX - first);
    }
    /* Figures that draw no trace (a graph's default empty figure, a message) wait for the
       next paint after the figures that draw data: the Cohort page's two graphs filled
       after load drew their empty figures in the turn of its missing-values chart, which
       then took 140 ms from plotly.react to drawn instead of 60 (page loads 0.96x). */
    function hasTraces(call) {
      const data = figureParts(call.args).data;
      return Boolean(data && data.length);
    }
    /* Data and layout of a Plotly.react call: (gd, figure) or (gd, data, layout). */
    function figureParts(args) {
      return Array.isArray(args[1]) ? {data: args[1], layout: args[2]} : args[1] || {};
    }
    /* A card made to fit its figures (FIT_CLASS in explorer/pages/common.py) takes the
       figure's height, and the width below which it scrolls sideways instead of squeezing
       its plot, before plotly draws into it: each figure is drawn once, at its own size.
       Done here rather than by a callback on the figure: a callback, even one answered in
       the browser, costs every figure change ~15 updates of Dash's store. */
    function fitBox(gd, layout) {
      const box = gd instanceof Element && gd.closest(".rm-fit");
      if (!box || !layout || !layout.height) {
        return;
      }
      const minWidth = layout.meta && layout.meta.min_width;
      box.style.height = layout.height + "px";
      box.style.setProperty("--rm-min-width", minWidth ? minWidth + "px" : "0px");
    }
    plotly.react = function () {
      const call = {args: arguments};
      const done = new Promise(function (resolve, reject) {
        call.resolve = resolve;
        call.reject = reject;
      });
      waiting = waiting.filter(function (queued) {
        if (queued.args[0] !== call.args[0]) {
          return true;
        }
        done.then(queued.resolve, queued.reject);
        return false;
      });
      if (turnTaken || !shown(call.args[0])) {
        call.deferred = true;
        waiting.push(call);
        flushAfterPaint();
      } else {
        turnTaken = true;
        flushAfterPaint();
        run(call);
      }
      return done;
    };
  }
  if (window.Plotly) {
    guard(window.Plotly);
    return;
  }
  let plotly;
  Object.defineProperty(window, "Plotly", {
    configurable: true,
    enumerable: true,
    get: function () { return plotly; },
    set: function (value) { plotly = value; guard(value); },
  });
})();

/* A page's tables are built after its figures are drawn. AG Grid takes ~100 ms to set up
   each table, and the grids' code arrived before Dash's plotly.js (1.4 MB), so a page's
   tables were built first and its main figure drawn after them (the Volcano page's three
   tables held its volcano back ~400 ms). Each grid waits, as an empty box of its size,
   until every shown graph on the page has drawn a figure (at most 2 s), then a paint. */
(function gridsAfterFigures() {
  const grids = window.dash_ag_grid;
  const React = window.React;
  if (!grids || !grids.AgGrid || !React) {
    return;
  }
  const Grid = grids.AgGrid;
  const MAX_WAIT_MS = 2000;
  function figuresPending() {
    return Array.prototype.some.call(document.querySelectorAll(".rm-graph"), function (graph) {
      return graph.getClientRects().length > 0 && !graph.querySelector(".main-svg");
    });
  }
  /* Looked at once the page has painted, then each time a figure is drawn: a loop every
     20 ms in each grid made the browser lay out the loading page again and again (~45 ms
     of the Gene page's load, before its first figure). */
  function figuresDrawn() {
    return new Promise(function (resolve) {
      let finished = false;
      const timer = window.setTimeout(finish, MAX_WAIT_MS);
      function finish() {
        if (!finished) {
          finished = true;
          window.clearTimeout(timer);
          document.removeEventListener(FIGURE_DRAWN_EVENT, check);
          afterNextPaint(resolve);
        }
      }
      function check() {
        if (!figuresPending()) {
          finish();
        }
      }
      document.addEventListener(FIGURE_DRAWN_EVENT, check);
      afterNextPaint(check);
    });
  }
  function GridAfterFigures(props) {
    const [ready, setReady] = React.useState(false);
    React.useEffect(function () {
      let mounted = true;
      figuresDrawn().then(function () {
        if (mounted) {
          setReady(true);
        }
      });
      return function () { mounted = false; };
    }, []);
    if (ready) {
      return React.createElement(Grid, props);
    }
    return React.createElement("div", {style: props.style, className: props.className});
  }
  Object.assign(GridAfterFigures, Grid);  // defaultProps, propTypes
  /* The package's exports are read-only getters: replace the namespace Dash looks in. */
  window.dash_ag_grid = Object.assign({}, grids, {AgGrid: GridAfterFigures});
})();
