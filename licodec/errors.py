"""The one exception type licodec raises for bad input, bad bitstreams and bad weights."""


class LicodecError(Exception):
    """A user-facing error: the message is one line that says what is wrong and what to do."""


class BitstreamError(LicodecError):
    """A .lic bitstream is malformed, truncated, corrupted, foreign or from a newer format."""


class WeightsError(LicodecError):
    """Model weights are missing, do not match their recorded hash, or do not fit the bitstream."""
