"""One module per op family (its lowerings, and the typed specs of ops that have one); registry.py lists them,
context.py is the LoweringContext they emit kernel calls through."""
