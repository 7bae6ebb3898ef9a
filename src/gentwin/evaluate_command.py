"""Console-script entry point of installs made before the move (``gentwin.commands.evaluate``)."""

from gentwin.commands.evaluate import console  # noqa: F401
