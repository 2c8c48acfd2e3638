"""trackbridge's pure translation core: Journeys Track API calls to Data Pipelines calls.

`translate(raw)` turns one input message value into a `Translation` (a `Translator()` instance
does the same, caching parsed credentials); `redacted_envelope(raw)` is the envelope copy that
dead-letter and skip records carry. Nothing here does I/O, reads a clock or
the environment, or logs.
"""

from mapping.envelope import redacted_envelope
from mapping.translate import Translator, translate

__all__ = ["Translator", "redacted_envelope", "translate"]
