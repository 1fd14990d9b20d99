"""Learned video: I/O now; the codec follows."""
