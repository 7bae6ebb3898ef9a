"""Console-script entry points of installs made before the move (``gentwin.commands``)."""

from gentwin.commands.export import console as export_main  # noqa: F401
from gentwin.commands.report import console as report_main  # noqa: F401
from gentwin.commands.run import main  # noqa: F401
from gentwin.commands.sample import console as sample_main  # noqa: F401
