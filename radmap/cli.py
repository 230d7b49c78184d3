"""The ``radmap`` command: ``analyze`` a cohort, ``serve`` a bundle, open the ``demo``."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .analysis import options
from .analysis.validate import InputError

EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 1


def _top_genes(text: str) -> int | str:
    """``--n-top-genes``: a positive number of genes or ``all``."""
    if text.strip().lower() == "all":
        return "all"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number of genes or 'all', got {text!r}"
        ) from None


def _bootstraps(text: str) -> int | str:
    """``--bootstraps``: a number of resamples (0 = off) or ``auto``."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'auto', got {text!r}") from None


def _gene_permutations(text: str) -> int | str:
    """``--gene-permutations``: a number of permutations (0 = off) or ``auto``."""
    return _bootstraps(text)


def _analyze_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "analyze",
        help="build a radiogenomic map bundle from a cohort's files",
        description=(
            "Read expression, imaging and clinical files, build co-expressed gene modules, "
            "associate modules and genes with every imaging feature, annotate modules by "
            "pathway enrichment, test survival, and write OUT/bundle.h5ad plus tidy CSV "
            "tables in OUT/tables/. Every option can also be set in the TOML config "
            "(same name with underscores); the command line wins."
        ),
    )
    inputs = p.add_argument_group("inputs")
    inputs.add_argument("--config", type=Path, help="radmap.toml with any of the options below")
    inputs.add_argument(
        "--expression",
        type=Path,
        help="expression table (CSV/TSV[.gz], XLSX, Parquet or .h5ad); genes x samples "
        "or samples x genes, first column gene symbols",
    )
    inputs.add_argument(
        "--imaging",
        type=Path,
        action="append",
        help="imaging feature table (CSV/TSV/XLSX/Parquet; PyRadiomics output recognised); "
        "repeat to combine several sources",
    )
    inputs.add_argument("--aim-dir", type=Path, help="folder of AIM v4 XML semantic annotations")
    inputs.add_argument("--clinical", type=Path, help="clinical table (mutations, survival)")
    inputs.add_argument("--out", type=Path, help="output folder (created if missing)")
    inputs.add_argument("--name", help="dataset name shown in the explorer")
    opts = p.add_argument_group("input handling")
    opts.add_argument(
        "--orientation",
        choices=options.ORIENTATIONS,
        help="layout of the expression table (default: auto-detected)",
    )
    opts.add_argument(
        "--scale",
        choices=options.SCALES,
        help="scale of the expression values: counts/FPKM/TPM are log-transformed, "
        "log and z-scored data are left alone (default: inferred)",
    )
    opts.add_argument(
        "--max-missing",
        type=float,
        help="drop genes missing in more than this fraction of samples (default 0.2)",
    )
    opts.add_argument(
        "--sheet",
        help="worksheet to read from Excel inputs (default: the first; the error names them)",
    )
    opts.add_argument(
        "--id-pattern",
        help="regular expression extracting the patient ID from every source's IDs "
        "(first group, else the whole match)",
    )
    opts.add_argument(
        "--id-column",
        action="append",
        metavar="[INPUT=]COLUMN",
        help="patient ID column of the imaging or clinical table, e.g. "
        "clinical=bcr_patient_barcode (repeatable; a bare COLUMN applies to both; default: "
        "the ID-like column whose values match the other sources)",
    )
    opts.add_argument(
        "--min-overlap", type=int, help="fewest matched patients to analyse (default 10)"
    )
    opts.add_argument(
        "--derive-survival",
        action="store_true",
        default=None,
        help="derive survival time/event from the TCGA/GDC (vital_status, days to death / "
        "last contact), cBioPortal (OS_STATUS, OS_MONTHS) or TCIA NSCLC (dates) columns; "
        "the TCGA and cBioPortal layouts are derived without it",
    )
    opts.add_argument("--survival-time", help="clinical column with survival time (days)")
    opts.add_argument("--survival-event", help="clinical column with the event (1 = death)")
    opts.add_argument(
        "--mutation-column",
        dest="mutation_columns",
        action="append",
        metavar="COLUMN[=NAME]",
        help="clinical marker column (mutation, methylation, copy number), optionally with "
        "its short name, e.g. 'mgmt_status=MGMT' (repeatable; default: detected by header "
        "and values)",
    )
    opts.add_argument(
        "--marker-value",
        dest="marker_values",
        action="append",
        metavar="VALUE=STATE",
        help="read a marker value radmap does not know, e.g. 'Hypermethylated=mutant' "
        "(STATE: mutant, wildtype or missing; repeatable)",
    )
    opts.add_argument(
        "--keep-identifiers",
        action="store_true",
        default=None,
        help="keep columns that look like direct identifiers (names, record numbers, dates)",
    )
    opts.add_argument(
        "--viewer-url",
        metavar="TEMPLATE",
        help="link each patient's page in the explorer to an image viewer: an http(s) "
        "address with {patient} where the patient ID goes, e.g. "
        "'https://viewer.example.org/series?patient={patient}' (a link only; not fetched)",
    )
    opts.add_argument(
        "--pseudonymise-key",
        type=Path,
        help="file holding a secret key: patient IDs in the bundle and tables are replaced "
        "by keyed HMAC-SHA256 pseudonyms (the key itself is never stored)",
    )
    analysis = p.add_argument_group("analysis")
    analysis.add_argument(
        "--n-top-genes",
        type=_top_genes,
        help="most variable genes used for modules (default 5000), or 'all' for the whole "
        "transcriptome",
    )
    analysis.add_argument(
        "--max-block-size",
        type=int,
        help="largest WGCNA network found in one block; more genes are split into blocks "
        "first, as WGCNA's blockwiseModules (default: what fits in the available memory)",
    )
    analysis.add_argument(
        "--module-method",
        choices=options.MODULE_METHODS,
        help="WGCNA-style tree cut (default) or Leiden on a gene kNN graph",
    )
    analysis.add_argument(
        "--power", type=int, help="soft-threshold power (default: scale-free fit)"
    )
    analysis.add_argument(
        "--min-module-size", type=int, help="smallest module, genes (default 20, as WGCNA)"
    )
    analysis.add_argument(
        "--merge-cut-height",
        type=float,
        help="merge modules whose eigengenes correlate above 1 - this (default 0.25)",
    )
    analysis.add_argument(
        "--continuous-test",
        choices=options.CONTINUOUS_TESTS,
        help="test for continuous and ordinal features (default spearman)",
    )
    analysis.add_argument(
        "--binary-test",
        choices=options.BINARY_TESTS,
        help="test for binary features (default student: exact under no link; Welch's p is "
        "far too small when one group is small)",
    )
    analysis.add_argument(
        "--categorical-test",
        choices=options.CATEGORICAL_TESTS,
        help="test for multi-category features (default kruskal)",
    )
    analysis.add_argument(
        "--min-n",
        type=int,
        help="fewest patients a test uses; smaller groups are not tested (default 10, at least 5)",
    )
    analysis.add_argument(
        "--min-group",
        type=int,
        help="smallest group a categorical test compares; smaller levels are left out and "
        "named in the warnings (default 5)",
    )
    analysis.add_argument(
        "--families",
        choices=options.FAMILIES,
        help="multiple-testing families: per imaging source and mutation (default) or one per "
        "analysis",
    )
    analysis.add_argument(
        "--adjust-for",
        action="append",
        help="clinical covariate to adjust associations for (repeatable)",
    )
    analysis.add_argument(
        "--gene-sets",
        action="append",
        help="gene-set collection: 'hallmark', 'go_bp' or a GMT file (repeatable; "
        "default hallmark and go_bp)",
    )
    analysis.add_argument("--seed", type=int, help="random seed (default 0)")
    trust = p.add_argument_group("trust checks")
    trust.add_argument(
        "--permutations",
        type=int,
        help="permutations of the module-map null (default 1000; 0 switches it off)",
    )
    trust.add_argument(
        "--gene-permutations",
        type=_gene_permutations,
        help="permutations of the gene-map null: a number (0 switches it off) or auto "
        "(default: 100 for maps of up to 1 million gene x feature tests, fewer for larger "
        "ones, at least 20)",
    )
    trust.add_argument(
        "--size-feature",
        help="imaging feature or clinical column holding tumour size (default: PyRadiomics "
        "original_shape_VoxelVolume / MeshVolume / Maximum3DDiameter when present)",
    )
    trust.add_argument(
        "--acquisition-covariate",
        dest="acquisition_covariates",
        action="append",
        help="clinical column or imaging feature describing acquisition (scanner, kernel, "
        "slice thickness): links that vanish without it are flagged (repeatable)",
    )
    trust.add_argument(
        "--bootstraps",
        type=_bootstraps,
        help="bootstrap resamples for module and link stability: a number (0 = off) or "
        "auto (default: 100 for networks of up to 5,000 genes, off for larger ones)",
    )
    trust.add_argument(
        "--scheduler",
        help="where resampling runs: auto (default: a local Dask cluster for bootstraps), "
        "serial, local, or a Dask scheduler address (tcp://host:8786)",
    )
    trust.add_argument(
        "--workers",
        type=int,
        help="workers of a local Dask cluster, or threads of the permutation nulls run in "
        "this process (default 2)",
    )
    p.set_defaults(handler=_run_analyze)


def _serve_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface to bind (default 127.0.0.1: this machine only)",
    )
    p.add_argument("--port", type=int, default=8050, help="port (default 8050)")
    p.add_argument(
        "--workers", type=int, default=2, help="server processes (default 2; gunicorn, preloaded)"
    )
    p.add_argument("--pins-dir", type=Path, help="where hypothesis pins are kept")
    p.add_argument(
        "--viewer-url",
        metavar="TEMPLATE",
        help="image viewer address with {patient} where the patient ID goes, linked from "
        "each Patient page (default: the one given to `radmap analyze`, if any)",
    )
    p.add_argument(
        "--users",
        type=Path,
        help="users file (from `radmap add-user`): ask every visitor to log in",
    )


def _replicate_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "replicate",
        help="test whether a map's modules and links replicate in a second cohort",
        description=(
            "Module preservation (permutation Z-summary, as WGCNA's modulePreservation), "
            "every discovery link re-tested in the validation cohort with eigengenes "
            "projected from the discovery loadings (one-sided in the discovery direction, "
            "BH replication q), and a scorecard. Writes OUT/preservation.csv, "
            "OUT/replication_links.csv and OUT/replication.json; the explorer's Replication "
            "page shows them when OUT is DISCOVERY.replication (the default)."
        ),
    )
    p.add_argument("discovery", type=Path, help="discovery bundle.h5ad")
    p.add_argument("validation", type=Path, help="validation bundle.h5ad")
    p.add_argument(
        "--out",
        type=Path,
        help="output folder (default: DISCOVERY.replication next to the discovery bundle, "
        "where `radmap serve DISCOVERY` shows it on the Replication page)",
    )
    p.add_argument("--alpha", type=float, default=0.05, help="q threshold (default 0.05)")
    p.add_argument(
        "--links",
        choices=["significant", "all"],
        default="significant",
        help="re-test the discovery links (q < alpha, default) or every map cell",
    )
    p.add_argument(
        "--permutations",
        type=int,
        default=100,
        help="random gene sets per module for the preservation Z (default 100)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the random gene sets")
    _scheduler_options(p)
    p.set_defaults(handler=_run_replicate)


def _scheduler_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--scheduler",
        default="serial",
        help="where resampling runs: serial (this process, default), local (a Dask "
        "LocalCluster) or a Dask scheduler address (tcp://host:8786)",
    )
    p.add_argument("--workers", type=int, default=2, help="workers of a local cluster")


def _methods_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "methods",
        help="print a Methods paragraph and a CLEAR-style checklist generated from a bundle",
    )
    p.add_argument("bundle", type=Path, help="bundle.h5ad made by `radmap analyze`")
    p.set_defaults(handler=_run_methods)


def _predict_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="virtual biopsy: predict mutations / module activity from imaging by nested CV",
        description=(
            "Predict each target from semantic, radiomic and combined imaging features and "
            "from the baselines (tumour size, clinical, constant) by repeated nested "
            "cross-validation with every fitted step inside the folds; a permutation test "
            "of the whole procedure gives each AUC's p-value. Writes BUNDLE's stem + "
            "'.predict.json' next to the bundle (the bundle is not changed)."
        ),
    )
    p.add_argument("bundle", type=Path, help="bundle.h5ad made by `radmap analyze`")
    p.add_argument(
        "--target",
        dest="targets",
        action="append",
        help="mutation column, module name or clinical column (repeatable; default every "
        "mutation column)",
    )
    p.add_argument(
        "--feature-set",
        dest="feature_sets",
        action="append",
        choices=["semantic", "radiomic", "imaging", "size", "clinical", "constant"],
        help="feature set to evaluate (repeatable; default all six)",
    )
    p.add_argument("--model", choices=["elasticnet", "forest"], default="elasticnet")
    p.add_argument("--outer-splits", type=int, default=5, help="outer folds (default 5)")
    p.add_argument("--outer-repeats", type=int, default=5, help="outer repeats (default 5)")
    p.add_argument("--inner-splits", type=int, default=3, help="inner folds (default 3)")
    p.add_argument(
        "--permutations", type=int, default=200, help="label permutations (default 200; 0 = none)"
    )
    p.add_argument(
        "--permutation-repeats",
        type=int,
        default=1,
        help="outer repeats run for each permutation (default 1; the observed statistic "
        "uses as many)",
    )
    p.add_argument(
        "--max-features",
        type=int,
        default=50,
        help="columns kept by the in-fold univariate filter (default 50)",
    )
    p.add_argument(
        "--threshold",
        default="prevalence",
        help="probability cut for sensitivity / specificity: 'prevalence' (the training "
        "folds' event rate, default) or a number in (0, 1)",
    )
    p.add_argument(
        "--cut",
        type=float,
        help="turn continuous targets (module eigengenes) into high / low at this quantile",
    )
    p.add_argument("--size-feature", help="imaging column of the size baseline (default found)")
    p.add_argument(
        "--clinical-column",
        dest="clinical_columns",
        action="append",
        help="clinical column of the clinical baseline (repeatable; default smoking, sex, "
        "histology, age when present)",
    )
    p.add_argument(
        "--batch",
        help="clinical column naming each patient's batch (scanner, site): radiomic features "
        "are harmonised per batch (location / scale) inside the folds",
    )
    p.add_argument(
        "--validate",
        type=Path,
        help="external bundle: apply the model frozen on BUNDLE to it and report the same metrics",
    )
    p.add_argument("--out", type=Path, help="output JSON (default next to the bundle)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--jobs", type=int, default=1, help="processes for the permutations")
    p.set_defaults(handler=_run_predict)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``radmap`` command."""
    parser = argparse.ArgumentParser(
        prog="radmap", description="radmap: build and explore radiogenomic maps."
    )
    parser.add_argument("--version", action="version", version=f"radmap {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show full tracebacks for internal errors"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _analyze_parser(sub)
    _predict_parser(sub)
    serve = sub.add_parser("serve", help="open the explorer on a bundle")
    serve.add_argument("bundle", type=Path, help="bundle.h5ad made by `radmap analyze`")
    _serve_options(serve)
    serve.set_defaults(handler=_run_serve)
    demo = sub.add_parser("demo", help="build a demo bundle if needed and open the explorer on it")
    _serve_options(demo)
    demo.add_argument(
        "--dataset",
        default="nsclc",
        help="which demo: 'nsclc' (real NSCLC Radiogenomics subset, default) or 'tcga-gbm' "
        "(a synthetic glioblastoma-like cohort in the TCGA layout, labelled synthetic)",
    )
    demo.add_argument("--rebuild", action="store_true", help="rebuild the demo bundle")
    demo.add_argument(
        "--no-serve", action="store_true", help="only build the demo bundle and print its path"
    )
    demo.set_defaults(handler=_run_demo)
    add_user = sub.add_parser(
        "add-user", help="add a login (or change its password) in an explorer users file"
    )
    add_user.add_argument("users", type=Path, help="users file (created if missing)")
    add_user.add_argument("user", help="user name (letters, digits, . _ - @)")
    add_user.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input instead of prompting",
    )
    add_user.set_defaults(handler=_run_add_user)
    _replicate_parser(sub)
    _methods_parser(sub)
    return parser


def _progress(message: str) -> None:
    print(f"[radmap {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _run_analyze(args: argparse.Namespace) -> int:
    from .analysis.pipeline import Config, run

    config = Config.from_toml(args.config) if args.config else Config()
    options = {
        key: value
        for key, value in vars(args).items()
        if key not in ("config", "handler", "command", "debug")
    }
    config = config.updated(options, origin="command line")
    run(config, progress=_progress)
    return 0


def _serve(bundle: Path, args: argparse.Namespace) -> int:
    from .explorer.app import run as run_app

    if args.workers < 1:
        raise InputError(f"--workers must be at least 1, got {args.workers}")
    run_app(
        bundle,
        host=args.host,
        port=args.port,
        workers=args.workers,
        ready=lambda url: _progress(f"serving {bundle} at {url} (Ctrl+C to stop)"),
        pins_dir=args.pins_dir,
        users_file=args.users,
        viewer_url=args.viewer_url,
    )
    return 0


def _run_serve(args: argparse.Namespace) -> int:
    # A bad bundle or users file fails while the app is built, before the server starts.
    return _serve(args.bundle, args)


def _run_demo(args: argparse.Namespace) -> int:
    from .analysis.datasets import demo_bundle_path

    path = demo_bundle_path(rebuild=args.rebuild, progress=_progress, dataset=args.dataset)
    if args.no_serve:
        print(path)
        return 0
    return _serve(path, args)


def _run_predict(args: argparse.Namespace) -> int:
    from .analysis.predict import run_predict

    return run_predict(args, progress=_progress)


def _run_add_user(args: argparse.Namespace) -> int:
    import getpass

    from .explorer.auth import add_user

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"password for {args.user}: ")
        if getpass.getpass("again: ") != password:
            raise InputError("the two passwords differ; nothing was changed")
    is_new = add_user(args.users, args.user, password)
    _progress(f"{'added' if is_new else 'changed the password of'} {args.user} in {args.users}")
    return 0


def _run_replicate(args: argparse.Namespace) -> int:
    from .analysis.io import file_sha256, load_bundle
    from .analysis.replicate import replicate, scorecard_text, sidecar_dir, write_replication

    if args.permutations < 2 or not 0 < args.alpha < 1:
        raise InputError("--permutations must be at least 2 and --alpha between 0 and 1")
    discovery, validation = load_bundle(args.discovery), load_bundle(args.validation)
    _progress("replicating ...")
    result = replicate(
        discovery,
        validation,
        alpha=args.alpha,
        links=args.links,
        n_permutations=args.permutations,
        seed=args.seed,
        scheduler=args.scheduler,
        n_workers=args.workers,
    )
    result["params"]["discovery_bundle_sha256"] = file_sha256(args.discovery)
    paths = write_replication(result, args.out or sidecar_dir(args.discovery))
    _progress(scorecard_text(result["scorecard"]))
    print(paths["summary"])
    return 0


def _run_methods(args: argparse.Namespace) -> int:
    from .analysis.io import file_sha256, load_bundle
    from .analysis.methods import methods_text

    adata = load_bundle(args.bundle)
    print(methods_text(adata, bundle_hash=file_sha256(args.bundle)), end="")
    return 0


def _configure_logging() -> None:
    """Show radmap's warnings as ``radmap: warning: ...`` lines; leave other loggers alone."""
    logger = logging.getLogger("radmap")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("radmap: warning: %(message)s"))
        handler.setLevel(logging.WARNING)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def _terminate(signum: int, frame: object) -> None:
    """Turn SIGTERM into KeyboardInterrupt so half-written temporary files are removed.

    The stop request also stays recorded: should the exception be swallowed (raised inside a
    finaliser), the next commit point of the output raises it again.
    """
    from .analysis.io.files import request_stop

    request_stop()
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``radmap`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging()
    signal.signal(signal.SIGTERM, _terminate)
    try:
        return args.handler(args)
    except InputError as err:
        print(f"radmap: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("radmap: interrupted; nothing was written at the target path", file=sys.stderr)
        return 130
    except Exception as err:
        if args.debug:
            raise
        print(
            f"radmap: internal error: {type(err).__name__}: {err} "
            "(run with --debug for the traceback, and please report it)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
