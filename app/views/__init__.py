"""Views of a study that live in modules of their own; the shared pages only call them."""
