"""``python -m registry_app.devtools.aws_fake -H 127.0.0.1 -p PORT``: moto's server with the layer installed.

Takes the same options as ``moto_server`` (``-H/--host``, ``-p/--port``, ``-s/--ssl``, ...), because it
is moto's own ``main`` run after ``install()``; a drop-in replacement for ``moto_server`` in scripts.
"""

from __future__ import annotations

import sys

from moto.server import main as moto_main

from registry_app.devtools.aws_fake import install


def main(argv: list[str] | None = None) -> None:
    install()
    moto_main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
