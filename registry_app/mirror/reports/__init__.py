"""Evaluation reports (the files ModelMetrics points at), parsed into one neutral shape. Pure.

- ``parse``: the entry point (``parse_report``, ``verify_content_digest``): limits, JSON, section dispatch.
- ``values``: the neutral shape (``ParsedReport``, ``MetricValue``, the kinds) and the shared readers.
- ``charts``: curves and confusion matrices.
- One module per format: ``model_quality`` (Model Monitor and Pipelines), ``clarify_bias``,
  ``clarify_explainability``, ``card_metrics`` (the model-card metric schema).
- ``directions``: which way is better for a metric (``metric_direction``, ``better``).
"""
