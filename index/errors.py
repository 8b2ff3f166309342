"""Errors about the index, shared by storage and the vector stores (app/ catches these)."""


class IndexError_(RuntimeError):
    """Base class for problems with the index on disk or its vector store."""


class NoIndexError(IndexError_):
    pass


class IndexMismatchError(IndexError_):
    """The index was built with another model, chunker or store than the settings ask for."""


class IndexBusyError(IndexError_):
    pass
