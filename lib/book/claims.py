"""The claims a chapter registers, as the publishing layer sees them: every name of :mod:`lib.verdicts` (where the
criterion language, preconditions, tolerances and protocol distance live), so a chapter may import either."""

from lib.verdicts import *  # noqa: F401,F403
from lib.verdicts import __all__  # noqa: F401
