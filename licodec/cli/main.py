"""``licodec`` command line: encode, decode, info, models, demo, train, export, average, eval, bdrate, plot, datasets.

Every failure the user can cause prints one line ``licodec: error: ...`` to stderr and
exits non-zero; no traceback.
"""

from __future__ import annotations

import argparse
import sys

from licodec.errors import LicodecError

EXIT_ERROR = 1


def build_parser() -> argparse.ArgumentParser:
    from licodec.cli import commands

    parser = argparse.ArgumentParser(prog="licodec", description="Learned image compression on a plain CPU.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in commands.REGISTRARS:
        register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI with ``argv``; returns the exit status (0 on success)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse already printed its one-line usage error
        return int(e.code or 0)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return int(args.run(args) or 0)
    except LicodecError as e:
        print(f"licodec: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("licodec: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("licodec: error: out of memory", file=sys.stderr)
        return EXIT_ERROR


def entry_point() -> None:
    sys.exit(main())
