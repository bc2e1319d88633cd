"""Errors the command line turns into one line and an exit code."""


class InputError(Exception):
    """Bad user input: a file, frame, option or config key. Exit code 2."""

    def __init__(self, message: str, *, path=None, frame: int | None = None):
        where = ", ".join(part for part in (str(path) if path is not None else None,
                                             f"frame {frame}" if frame is not None else None) if part)
        super().__init__(f"{where}: {message}" if where else message)
        self.path = path
        self.frame = frame
