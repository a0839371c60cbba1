"""Evaluation reports (the files ModelMetrics points at), parsed into one neutral shape. Pure."""
