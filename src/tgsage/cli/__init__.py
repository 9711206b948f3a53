"""The ``tgsage`` command line: the only package that uses Typer and rich.

One module per command group (``compare``, ``teacher``, ``evaluate``, ``demo``, ``search``,
``experiments``), each with a ``register(app)`` that :mod:`tgsage.cli.main` calls; shared options,
progress bars and error handling live in :mod:`tgsage.cli.common`. The commands only parse
options, call the library and render its results.
"""

from tgsage.cli.main import app

__all__ = ["app"]
