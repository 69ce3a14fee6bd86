"""Write docs/cli.md from every command's --help; with --check, fail if it is out of date.

Usage: python scripts/cli_reference.py [--check] [--output PATH]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from databutler.cli import render_reference

DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "docs" / "cli.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the file differs from the generated text"
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="default: docs/cli.md")
    args = parser.parse_args(argv)
    text = render_reference()
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else None
        if current != text:
            print(
                f"{args.output} is out of date; regenerate it with python scripts/cli_reference.py",
                file=sys.stderr,
            )
            return 1
        print(f"{args.output} is up to date.")
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"Wrote {args.output}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
