"""libFuzzer target (atheris): the whole rewrite of any bytes; see fuzz/README.md."""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["rewriter", "ruamel", "oracle"]):
    import oracle


def main() -> None:
    """Fuzz `oracle.check_stream` with libFuzzer's arguments from the command line."""
    atheris.Setup(sys.argv, oracle.check_stream)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
