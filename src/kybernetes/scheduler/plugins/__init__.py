"""In-tree scheduler plugins, one module each, named as upstream (see ``registry``)."""
