"""The `refvi` command line.

``refvi verify [PATH ...]`` checks derivations; with no path it checks the
bundled ones (installed as the package ``refvi.derivations``). Exit codes: 0
every displayed line holds; 1 a line fails; 2 malformed input; 3 (under
``--strict``, the default) nothing fails but a line is undetermined,
unsupported or unchecked, or a file has no displayed line.

``refvi cases`` lists (``--list``), prints (``--json``) or writes (``--out
DIR``) the reference cases of ``refvi.crosscheck``.
"""

import argparse
import sys
import traceback
from importlib import resources
from pathlib import Path

from refvi import __version__

__all__ = [
    "bundled_derivations",
    "main",
]


def bundled_derivations():
    """Paths of the derivation files shipped with refvi, sorted by name."""
    folder = resources.files("refvi.derivations")
    found = [p for p in folder.iterdir() if p.name.endswith(".md")]
    return sorted((p for p in found if p.name != "README.md"), key=lambda p: p.name)


#: The legend of ``refvi verify``'s report, shown by ``refvi verify --help``
#: and quoted in the README.
VERIFY_LEGEND = """\
report: one row per displayed line, e.g.
  L42  D_{KL}(q(z|x) \\| p(z|x)) = \\int ...  =  holds  dev +4.53e-13 ±1.2e-14
       tol 1e-09  margin +1.00e-09  [block: quadrature]
  L42        line of the display in the file
  D_{KL}...  start of its LaTeX
  =          relation to the line before it in its chain (expr: first line
             of a chain, holds when a later line holds against it)
  holds      verdict: holds, fails, undetermined (numerical error too large
             to decide, or a side diverges or overflows: the next row says
             why), unsupported or unchecked (with the reason)
  dev        worst deviation over every instance and entry; its meaning
             depends on the relation, with scale = max(1, |a|, |b|):
               =          |a - b| / scale
               !=         |a - b| / scale, the smallest (must exceed the
                          separation)
               <=, <      (a - b) / scale (negative: holds with room)
               >=, >      (b - a) / scale (negative: holds with room)
               ~          |a - b| in standard errors (Bonferroni z-score)
  ±          the numerical error estimate of the deviation (when not zero)
  tol        the tolerance (separation for !=, z threshold for ~)
  margin     positive: holds with this much room; negative: fails by this
  [block: ]  checked from its check block ([latex: ] from its LaTeX alone)
             and the route: direct, quadrature, monte carlo
exit status: 0 every line holds, 1 some line fails, 2 malformed input,
3 (--strict, the default) nothing fails but a line is not shown to hold
"""


def _build_parser():
    parser = argparse.ArgumentParser(
        prog="refvi",
        description=(
            "refvi: variational inference by closed form, confirmed by another "
            "route. `refvi verify` checks every displayed line of a derivation."
        ),
    )
    parser.add_argument("--version", action="version", version=f"refvi {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    verify = sub.add_parser(
        "verify",
        help="check derivations line by line (default: the bundled ones)",
        description="Check every displayed line of the given derivation files.",
        epilog=VERIFY_LEGEND,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verify.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="derivation files, or folders of them (a folder's README.md left out)",
    )
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    verify.add_argument(
        "--format",
        choices=("text", "json", "junit", "github"),
        default="text",
        help="report format: text (default), json (= --json), junit (JUnit XML, "
        "one test case per displayed line) or github (workflow annotations)",
    )
    verify.add_argument(
        "--html",
        metavar="FILE",
        help="also write a self-contained HTML page of the checked derivations",
    )
    verify.add_argument(
        "--seeds",
        type=_seeds,
        metavar="N",
        help="random instances per setting, at most 1000 (default: each file's own)",
    )
    verify.add_argument(
        "--strict",
        action=argparse.BooleanOptionalAction,
        default=True,
        help=(
            "exit 3 when nothing fails but a line is undetermined, unsupported "
            "or unchecked, or a file has no displayed line (default: on; "
            "--no-strict exits 0 when no line fails)"
        ),
    )
    verify.add_argument(
        "--debug", action="store_true", help="show the traceback of an error"
    )
    mode = verify.add_mutually_exclusive_group()
    mode.add_argument(
        "--latex-only",
        action="store_true",
        help="ignore the check blocks: check every line from its LaTeX alone",
    )
    mode.add_argument(
        "--blocks-only",
        action="store_true",
        help="require a check block after every display (no LaTeX checking)",
    )
    verify.add_argument(
        "--explain",
        action="store_true",
        help="print how each LaTeX-checked line was read (its typed form)",
    )
    figures = sub.add_parser(
        "figures",
        help="draw the figures as PNG files (needs the 'plot' extra: matplotlib)",
        description="Compute and draw refvi's figures, one PNG file each.",
    )
    figures.add_argument(
        "names", nargs="*", metavar="NAME", help="figures to draw (default: all)"
    )
    figures.add_argument(
        "--out", default="figures", metavar="DIR", help="folder (default: figures)"
    )
    figures.add_argument("--list", action="store_true", help="list the figures")
    listing = sub.add_parser(
        "settings",
        help="list the settings, or the names one setting provides",
        description="Without NAME: every setting and its summary. With NAME: "
        "the names a check block may use on that setting, with their shapes.",
    )
    listing.add_argument("name", nargs="?", metavar="NAME", help="a setting")
    cases = sub.add_parser(
        "cases",
        help="reference cases for cross-checking another implementation",
        description="Reference cases (inputs, refvi's outputs, tolerances) as "
        "versioned JSON. NAME may be a case name or a shell wildcard "
        "('mixture.*'); without NAME, every case.",
    )
    cases.add_argument("names", nargs="*", metavar="NAME", help="cases or patterns")
    what = cases.add_mutually_exclusive_group(required=True)
    what.add_argument("--list", action="store_true", help="list the cases")
    what.add_argument("--json", action="store_true", help="print the cases as JSON")
    what.add_argument(
        "--out",
        metavar="DIR",
        help="write one JSON file per case, NAME.json, and cases_schema.json to DIR",
    )
    what.add_argument(
        "--schema", action="store_true", help="print the JSON Schema of the document"
    )
    return parser


def _cases(args):
    """``refvi cases``: list, print or write the reference cases; exit 0, or 2
    with one line for a pattern that matches no case."""
    import json

    from refvi.crosscheck import all_cases, find_cases, json_schema, to_json

    if args.schema:
        print(json.dumps(json_schema(), indent=1))
        return 0
    try:
        cases = find_cases(*args.names) if args.names else all_cases()
    except ValueError as err:
        print(f"refvi cases: error: {err}", file=sys.stderr)
        return 2
    if args.list:
        for case in cases:
            print(f"{case.name:<42s} {case.description.split('. Case: ')[-1]}")
    elif args.json:
        print(to_json(cases))
    else:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for case in cases:
            (out / f"{case.name}.json").write_text(to_json([case]), encoding="utf-8")
        schema = json.dumps(json_schema(), indent=1)
        (out / "cases_schema.json").write_text(schema, encoding="utf-8")
        print(f"wrote {len(cases)} cases and cases_schema.json to {out}")
    return 0


def _figures(args):
    """Draw the figures; exit 0, or 2 with one line if matplotlib is missing or
    a name is unknown."""
    from refvi.figures import FIGURES, MatplotlibMissing, render

    if args.list:
        for figure in FIGURES.values():
            print(f"{figure.name:<16s} {figure.about}")
        return 0
    unknown = [name for name in args.names if name not in FIGURES]
    if unknown:
        print(
            f"refvi figures: error: unknown figure {unknown[0]!r}; "
            f"the figures are {', '.join(FIGURES)}",
            file=sys.stderr,
        )
        return 2
    try:
        for name in args.names or FIGURES:
            print(render(name, args.out))
    except MatplotlibMissing as err:
        print(f"refvi figures: error: {err}", file=sys.stderr)
        return 2
    return 0


def _settings(args):
    """``refvi settings [NAME]``: what each setting provides."""
    import difflib

    import numpy as np

    from refvi.checker.settings import SETTINGS

    if args.name is None:
        for name, fn in SETTINGS.items():
            summary = (fn.__doc__ or "").strip().splitlines()[0]
            print(f"{name:20s} {summary}")
        return 0
    if args.name not in SETTINGS:
        close = difflib.get_close_matches(args.name, list(SETTINGS), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        print(f"refvi settings: unknown setting {args.name!r}{hint}", file=sys.stderr)
        return 2
    names = SETTINGS[args.name](0).names
    print(f"{args.name}: {(SETTINGS[args.name].__doc__ or '').strip().splitlines()[0]}")
    for key in sorted(names):
        value = names[key]
        if isinstance(value, np.ndarray):
            kind = f"array {value.shape}"
        elif isinstance(value, int | float | np.floating):
            kind = "number"
        else:
            kind = "function" if callable(value) else type(value).__name__
        print(f"  {key:18s} {kind}")
    return 0


def _expand(paths):
    """The derivation files named: a directory stands for its ``*.md`` and
    ``*.ipynb`` files (recursively, sorted; hidden folders, notebook
    checkpoints and a folder's ``README.md``, which describes the folder,
    left out; a README named on its own is read)."""
    from pathlib import Path

    out = []
    for path in paths:
        folder = Path(path)
        if not folder.is_dir():
            out.append(path)
            continue
        found = [
            p
            for p in folder.rglob("*")
            if p.suffix in (".md", ".ipynb")
            and p.name.lower() != "readme.md"
            and p.is_file()
            and not any(
                part.startswith(".") or part == ".ipynb_checkpoints"
                for part in p.relative_to(folder).parts[:-1]
            )
        ]
        # a folder without derivations stays itself: reading it is the error
        out.extend([str(p) for p in sorted(found)] or [path])
    return out


def _seeds(text):
    """``--seeds N``: an integer in 1 .. limits.MAX_SEEDS."""
    from refvi.checker.limits import check_seeds

    try:
        return check_seeds(text, "--seeds")
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _verify(args):
    """Verify each derivation and return the exit code of ``report.exit_code``:
    0 every line holds, 1 a line fails, 2 malformed input (one
    ``path:line: error: ...`` line per file), 3 under ``--strict`` (the
    default) when nothing fails but a line is not shown to hold."""
    from refvi.checker.derivation import DerivationError, verify_file
    from refvi.checker.report import (
        error_object,
        exit_code,
        format_file,
        format_total,
        to_json,
    )

    if args.json:
        args.format = "json"
    if args.paths:
        targets = [(path, path) for path in _expand(args.paths)]
    else:
        targets = [(p, f"derivations/{p.name}") for p in bundled_derivations()]
    results, errors, sources = [], [], []
    error_objects = []  # the errors as the JSON report lists them
    for path, name in targets:
        try:
            result = verify_file(
                path,
                seeds=args.seeds,
                latex_only=args.latex_only,
                blocks_only=args.blocks_only,
            )
        except DerivationError as err:
            message = f"{name}:{err.line}: error: {err.message}"
            kind = getattr(err, "kind", "malformed")
            errors.append(message)
            error_objects.append(error_object(name, err.line, kind, err.message))
            if args.debug:
                traceback.print_exc()
            print(message, file=sys.stderr)
            continue
        result.path = name
        results.append(result)
        sources.append(Path(path).read_text(encoding="utf-8"))
        for line, message in result.errors:  # a display that cannot be read
            errors.append(f"{name}:{result.where(line)}: error: {message}")
            cell, at = result.cell_of(line)
            error_objects.append(error_object(name, at, "malformed", message, cell))
            print(errors[-1], file=sys.stderr)
        if args.format == "text":
            print("\n".join(format_file(result, explain=args.explain)))
    if args.format == "json":
        print(to_json(results, error_objects, strict=args.strict))
    elif args.format == "text":
        print(format_total(results, errors, strict=args.strict))
    else:
        from refvi.checker import ci_report

        if args.format == "junit":
            kinds = [e["kind"] for e in error_objects]
            print(ci_report.junit_xml(results, errors, kinds))
        else:
            print("\n".join(ci_report.github_annotations(results, errors)))
    if args.html:
        from refvi.checker.html_report import html_page

        page = html_page(results, sources, errors)
        Path(args.html).write_text(page, encoding="utf-8")
    return exit_code(results, errors, strict=args.strict)


def main(argv=None):
    """Entry point of the `refvi` console script; returns the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command == "verify":
        return _verify(args)
    if args.command == "figures":
        return _figures(args)
    if args.command == "settings":
        return _settings(args)
    if args.command == "cases":
        return _cases(args)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
