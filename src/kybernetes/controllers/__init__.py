"""The controller manager's controllers: one module per controller (see manager.py)."""
