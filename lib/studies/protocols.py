"""The papers' training protocols as :class:`~lib.train.RunConfig`, imported from here by every page that needs them.

Each paper's protocol lives with its analysis (``lib/studies/<paper>/protocol.py``, beside the chapter's parameter
schema); this module is where chapters import it from, so that every page that needs a paper's networks (its own
chapter, and the cross-paper chapter that re-analyses them) builds exactly the same configurations and therefore
gets exactly the same runs from the cache (the cache key is the configuration).

- :func:`theunissen_config`: Theunissen, Davel & Barnard (FAIR 2019), Appendix A
  (:mod:`lib.studies.theunissen2019.protocol`)
- :func:`masc_config`: the MASC paper, section 3.1 and appendix A.2 (:mod:`lib.studies.masc.protocol`)
- :func:`zhang_config`, :func:`zhang_row_config`, :data:`ZHANG_TABLE1_ROWS`, :data:`ZHANG_TABLE4_SETTINGS`: Zhang,
  Bengio, Hardt, Recht & Vinyals (ICLR 2017), appendix A (:mod:`lib.studies.zhang2017.protocol`)
"""

from lib.studies.masc.protocol import masc_config
from lib.studies.theunissen2019.protocol import theunissen_config
from lib.studies.zhang2017.protocol import ZHANG_TABLE1_ROWS, ZHANG_TABLE4_SETTINGS, zhang_config, zhang_row_config

__all__ = ["masc_config", "theunissen_config", "ZHANG_TABLE1_ROWS", "ZHANG_TABLE4_SETTINGS", "zhang_config",
           "zhang_row_config"]
