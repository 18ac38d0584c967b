"""libFuzzer target (atheris): the image reference parser and the rules; see fuzz/README.md."""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["rewriter", "oracle"]):
    import oracle


def one_input(data: bytes) -> None:
    """Check one input, read as UTF-8 text (YAML gives the parser text, never bytes)."""
    oracle.check_reference(data.decode("utf-8", "replace"))


def main() -> None:
    """Fuzz `oracle.check_reference` with libFuzzer's arguments from the command line."""
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
