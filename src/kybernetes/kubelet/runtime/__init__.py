"""Container runtimes behind one CRI-like protocol (``base.Runtime``)."""
