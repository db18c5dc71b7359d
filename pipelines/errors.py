"""Exceptions whose message is written for the person who submitted the job."""


class StudioError(Exception):
    """An error the user can act on; its message is shown as is."""


class InvalidInput(StudioError):
    """The submitted image or parameters cannot be processed."""


class WeightsMissing(StudioError):
    """A model file is absent and could not be downloaded."""

    def __init__(self, filename: str, folder: str, url: str | None, reason: str):
        self.filename, self.folder, self.url, self.reason = filename, folder, url, reason
        where = f"Put it in {folder}"
        if url:
            where += f" (download: {url})"
        super().__init__(f"Model file {filename} is missing ({reason}). {where}.")


class Cancelled(Exception):
    """The user cancelled the job; raised between steps by `RunContext.check_cancelled`."""
