"""Evidence made readable: plain-decimal numbers and deltas, metric glossary, server-side SVG charts. Pure.

- ``numbers``: ``plain`` (never scientific notation) and ``delta_view`` (arrow, sign, better/worse).
- ``glossary``: full names and fair ranges of Clarify bias metrics and common quality metrics.
- ``curves``: AUC by trapezoid, the ROC / precision-recall chart with the approved version overlaid.
- ``matrix``: confusion matrices with class labels, counts and row percentages.
- ``trend``: a metric-trend chart across a group's versions.

No ORM and no I/O: the selectors pass values in, the template tags turn the results into escaped HTML.
"""
