"""Compile reports and artifact directories.

- :mod:`snncc.reports.report`: the ``report.json`` document built from a compile's facts;
- :mod:`snncc.reports.render`: Markdown and self-contained HTML renderings of it;
- :mod:`snncc.reports.figures`: deterministic SVG pictures (matplotlib, imported lazily);
- :mod:`snncc.reports.artifacts`: canonical JSON, hashes and atomic directory replacement.
"""

from __future__ import annotations
