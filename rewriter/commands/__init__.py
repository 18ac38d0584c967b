"""One module per command, as pre-commit's `commands/`: each `run` takes the command's options and returns its exit code.

`rewriter.cli` declares the options (typer) and calls them; nothing here imports typer.
Exit codes: 0 clean; 1 findings (or `--check` would change files); 2 bad usage,
configuration, input or render (raised as KmirrorError); 3 internal error; 130 interrupted.
"""
