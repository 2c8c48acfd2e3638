"""trackbridge's outside edge: routing by source, the Faust worker, metrics and the CLI."""
