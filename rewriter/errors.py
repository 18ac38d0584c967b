"""The one exception type the command line turns into `kmirror: error: ...` and exit 2."""


class KmirrorError(Exception):
    """Bad usage, configuration, input or render: a message a user can act on.

    The message reads `<what>: <where>: <why>`; the CLI prefixes `kmirror: error: `.
    """
