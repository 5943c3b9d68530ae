"""``python -m refvi.verify.latex [--explain] PATH ...``: check from the LaTeX.

Exit status: 0 when every checked relation holds, 1 when one fails, 2 when a
file cannot be read (malformed LaTeX: one ``path:line: error: ...`` line).
"""

import argparse
import sys

from refvi.verify.latex.check import check_latex_file, format_result
from refvi.verify.latex.tokens import MalformedLatex


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m refvi.verify.latex")
    parser.add_argument("paths", nargs="+", metavar="PATH")
    parser.add_argument(
        "--explain", action="store_true", help="print how each line was read"
    )
    parser.add_argument("--seeds", type=int, default=3, help="instances per setting")
    args = parser.parse_args(argv)
    status = 0
    for path in args.paths:
        try:
            result = check_latex_file(path, seeds=args.seeds)
        except MalformedLatex as err:
            print(f"{path}:{err.line}: error: {err}", file=sys.stderr)
            return 2
        except OSError as err:
            print(f"{path}:0: error: cannot read file: {err}", file=sys.stderr)
            return 2
        print(format_result(result, explain=args.explain))
        if not result.ok:
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
