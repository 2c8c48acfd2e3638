"""trackbridge's pure translation core: Journeys Track API calls to Data Pipelines calls.

`translate(raw)` turns one input message value into a `Translation` (a `Translator()` instance
does the same, caching parsed credentials). Nothing here does I/O, reads a clock or the
environment, or logs.
"""

from mapping.translate import Translator, translate

__all__ = ["Translator", "translate"]
