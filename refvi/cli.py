"""The `refvi` command line.

``refvi verify [PATH ...]`` checks derivations; with no path it checks the
bundled ones (installed as the package ``refvi.derivations``).
"""

import argparse
import sys
from importlib import resources

from refvi import __version__


def bundled_derivations():
    """Paths of the derivation files shipped with refvi, sorted by name."""
    folder = resources.files("refvi.derivations")
    found = [p for p in folder.iterdir() if p.name.endswith(".md")]
    return sorted((p for p in found if p.name != "README.md"), key=lambda p: p.name)


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
    )
    verify.add_argument("paths", nargs="*", metavar="PATH", help="derivation files")
    return parser


def _verify(args):
    paths = args.paths or bundled_derivations()
    print(f"0 derivations checked ({len(paths)} found; the checker is not built yet)")
    return 0


def main(argv=None):
    """Entry point of the `refvi` console script; returns the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command == "verify":
        return _verify(args)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
