"""The registry's use cases: load a module, let it decide, append; take artifacts in; sign."""
