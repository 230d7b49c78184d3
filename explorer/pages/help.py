"""The science, explained in the app: a methods panel and one "i" note per figure.

The panel says which test each feature type gets, what the effect measures mean, what q is
and over which family it is controlled, how modules are found, with links to the papers.
The texts follow ``radmap.analysis.associate`` and the pipeline's defaults; a bundle's own
settings are in its provenance (Provenance button of each figure).
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import html

HELP_BUTTON = "help-open"
HELP_PANEL = "help-panel"

TESTS = (
    ("continuous", "Spearman rank correlation (Pearson optional)", "Spearman ρ (−1 to 1)"),
    ("ordinal (radiologist scale)", "Spearman on the order of the levels", "Spearman ρ"),
    (
        "binary (yes / no)",
        "Student's t-test (Welch or Mann–Whitney U optional)",
        "Hedges' g: difference of means in pooled SDs, second level vs first "
        "(Mann–Whitney: rank-biserial r)",
    ),
    (
        "categorical (unordered)",
        "Kruskal–Wallis H (one-way ANOVA optional)",
        "ε² (ANOVA: η²): share of variance between groups, 0 to 1, unsigned",
    ),
    (
        "mutation x categorical feature",
        "χ² test, Fisher's exact test when cells are sparse",
        "Cramér's V (0 to 1)",
    ),
    ("survival", "log-rank test (groups); Cox model (continuous)", "hazard ratio with 95 % CI"),
)

REFERENCES = (
    (
        "Benjamini & Hochberg (1995), controlling the false discovery rate",
        "https://doi.org/10.1111/j.2517-6161.1995.tb02031.x",
    ),
    (
        "Langfelder & Horvath (2008), WGCNA: weighted gene co-expression network analysis",
        "https://doi.org/10.1186/1471-2105-9-559",
    ),
    (
        "Traag, Waltman & van Eck (2019), From Louvain to Leiden",
        "https://doi.org/10.1038/s41598-019-41695-z",
    ),
    (
        "Hedges (1981), distribution theory for Glass's estimator of effect size",
        "https://doi.org/10.3102/10769986006002107",
    ),
    (
        "Zhou et al. (2018), non-small cell lung cancer radiogenomics map (Radiology)",
        "https://doi.org/10.1148/radiol.2017161845",
    ),
    (
        "PyRadiomics feature definitions",
        "https://pyradiomics.readthedocs.io/en/latest/features.html",
    ),
)

FIGURE_HELP = {
    "map-heatmap": (
        "Each cell is one module eigengene (the first principal component of the module's "
        "genes) tested against one imaging feature; colour is the effect, each measure on "
        "its own colour bar (diverging for signed ρ / g, sequential from 0 for unsigned ε² / "
        "Cramér's V); a dot marks q below the threshold, a square a link stable in ≥ 80 % of "
        "the bootstraps (when run). Click a cell for its scatter or box plot."
    ),
    "map-compare": (
        "The module map of the comparison subset (B), computed on its patients with the same "
        "tests and corrections as the map above (subset A, or the whole cohort)."
    ),
    "map-difference": (
        "Effect in subset B minus effect in subset A for each module and feature; rows whose "
        "links are significant in one subset only come first. A / B: significant in that "
        "subset only; •: in both."
    ),
    "map-phenotype": (
        "Module eigengene per patient against the imaging feature of the clicked cell; the "
        "title carries the test's q."
    ),
    "volcano": (
        "Every gene tested against the chosen feature: effect (x) against −log10 q or p (y). "
        "Colour is the gene's module; faded points are not significant."
    ),
    "network": (
        "Modules and imaging features linked by significant associations (q below the "
        "threshold, |effect| at least the minimum); edge width is |effect|."
    ),
    "gene-bar": (
        "The gene's associations with imaging features, strongest q first; bars are the "
        "effect, opaque when q is below the threshold."
    ),
    "gene-phenotype": "The gene's expression per patient against the chosen imaging feature.",
    "gene-km": (
        "Kaplan–Meier curves of the patients with expression grouped by the gene's expression "
        "(median, tertiles, quartiles or a cut), with the log-rank p, n and events."
    ),
    "module-heatmap": (
        "Z-scored expression of the module's genes (rows, by kME) across patients ordered by "
        "the chosen imaging feature (strip on top)."
    ),
    "module-enrichment": (
        "Gene sets over-represented among the module's genes (hypergeometric test, BH q over "
        "the collection)."
    ),
    "cohort-km": (
        "Kaplan–Meier curves for the chosen grouping, on the patients of the analysis row "
        "(imaging features and mutations: every patient with the variable and survival "
        "data, with or without expression), with the analysis' test (log-rank; Cox trend "
        "for ordinal scales), n and events."
    ),
    "patient-profile": (
        "The patient (diamond) on each cohort distribution (box: quartiles, whiskers: range), "
        "in cohort standard deviations from the mean; hover for the value and percentile. "
        "Rows: module eigengenes, the top hub genes of each module, continuous semantic "
        "features and the radiomic features with the strongest module links."
    ),
    "patient-survival": (
        "The whole cohort's Kaplan–Meier curve with the patient's follow-up marked: filled "
        "for an event, open when censored."
    ),
    "cohort-missing": "Share of patients without a value, per imaging feature.",
    "cohort-mutation": (
        "Imaging features (rows) against mutation status (columns): effect of the test the "
        "feature type calls for, dots where q is below the threshold."
    ),
    "cohort-overlap": "Patients found in each input file, matched across the files by ID.",
    "cohort-types": "Imaging features per source (radiomic, semantic) and type.",
    "replication-scorecard": (
        "Discovery links (q below the threshold) by what the validation cohort says: "
        "replicated (one-sided replication q < alpha in the discovery direction), opposite "
        "sign, not replicated, not testable (feature or most of the module's genes missing)."
    ),
    "replication-preservation": (
        "WGCNA Z-summary of each discovery module in the validation cohort against random "
        "gene sets of the same size: above 10 strong, 2 to 10 moderate evidence of "
        "preservation."
    ),
    "predict-roc": (
        "ROC curves of each imaging feature set and of the size, clinical and constant "
        "baselines, from repeated nested cross-validation (bands: bootstrap)."
    ),
    "predict-calibration": (
        "Predicted against observed frequency per bin of predicted probability; the "
        "diagonal is perfect calibration."
    ),
    "predict-performance": (
        "AUC (or R²) per feature set with its confidence interval; the permutation p says "
        "whether the whole procedure beats chance."
    ),
}


def info_icon(name: str):
    """A small "i" with the figure's note on hover (nothing when there is no note)."""
    text = FIGURE_HELP.get(name)
    if not text:
        return None
    target = f"help-{name}"
    return html.Span(
        [
            html.Span("i", id=target, className="rm-info", tabIndex="0", **{"aria-label": text}),
            dbc.Tooltip(text, target=target, placement="bottom"),
        ]
    )


def help_button() -> dbc.Button:
    return dbc.Button(
        "Help & methods",
        id=HELP_BUTTON,
        color="secondary",
        outline=True,
        size="sm",
        className="rm-help-button ms-3",
        title="Which test for which feature, what effect and q mean, how modules are found",
    )


def help_panel() -> dbc.Offcanvas:
    """The methods panel (opened from the navigation bar)."""
    tests = html.Table(
        [
            html.Thead(html.Tr([html.Th("Feature type"), html.Th("Test"), html.Th("Effect")])),
            html.Tbody(
                [
                    html.Tr([html.Td(kind), html.Td(test), html.Td(effect)])
                    for kind, test, effect in TESTS
                ]
            ),
        ],
        className="table table-sm rm-help-table",
    )
    return dbc.Offcanvas(
        [
            html.H6("Which test, which effect"),
            html.P(
                "Every module eigengene and every gene is tested against every imaging feature "
                "with the test its type calls for. Patients missing either value are left out "
                "of that test only; every result carries its n."
            ),
            tests,
            html.H6("p and q"),
            html.P(
                "p is the test's p-value. q is the Benjamini–Hochberg adjusted p-value "
                "(false discovery rate), controlled within a declared family: per analysis "
                "and imaging source for modules x features, per mutation for mutations x "
                "features; for genes x features per feature, and over the whole map in two "
                "steps (Simes per feature, then BH across features). A cell or gene is "
                "called significant when q is below the threshold in the header. Numbers "
                "show 3 significant digits, scientific below 0.001; a p-value too small "
                "for the computer's numbers (below 1e-300) reads “< 1e-300”."
            ),
            html.H6("Modules"),
            html.P(
                "Genes are grouped into co-expression modules (WGCNA: a soft-thresholded "
                "correlation network cut by a dynamic tree cut, or Leiden communities on the "
                "gene graph). A module's eigengene is the first principal component of its "
                "z-scored genes; kME is a gene's correlation with it, hub genes have the "
                "highest kME."
            ),
            html.H6("Imaging features"),
            html.P(
                "Radiomic features (PyRadiomics, named image type_class_feature) and "
                "radiologists' semantic annotations. Long names are shortened on the axes "
                "(e.g. wav- for wavelet-, initials of CamelCase names); hover shows the full "
                "name. Radiomic families summarise a group of features by their strongest "
                "association."
            ),
            html.H6("References"),
            html.Ul(
                [
                    html.Li(html.A(text, href=url, target="_blank", rel="noopener noreferrer"))
                    for text, url in REFERENCES
                ]
            ),
        ],
        id=HELP_PANEL,
        title="Help & methods",
        placement="end",
        is_open=False,
        scrollable=True,
        className="rm-help",
    )
