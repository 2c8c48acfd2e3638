"""Producing records in whole per-partition batches, placed as the Java client places them:
shared by the worker's runtime and the edge."""
