"""One module per channel and per outside system, each behind a small interface."""
