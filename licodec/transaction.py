"""Writers that either finish or leave nothing: the context-manager half of that contract."""

from __future__ import annotations


class CloseOrAbort:
    """Mixin for a writer with ``close()`` (finish and publish what was written) and ``abort()``
    (drop it, leaving the destination as it was): ``with writer:`` closes on a normal exit and
    aborts when the block raises, so an error never leaves a half-written file."""

    def close(self) -> None:  # pragma: no cover - every writer defines it
        raise NotImplementedError

    def abort(self) -> None:  # pragma: no cover - every writer defines it
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
