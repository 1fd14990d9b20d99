"""Reading and writing video, one frame at a time (memory stays bounded by a frame or two): the
public names of :mod:`licodec.video.frames`, :mod:`licodec.video.readers` and
:mod:`licodec.video.writers` in one place.

==============================  ================================================================
input (:func:`open_video`)      what is read
==============================  ================================================================
``.y4m``                        YUV4MPEG2, 8-bit 4:2:0 (``C420``, ``C420jpeg``, ``C420paldv``,
                                ``C420mpeg2`` or no ``C`` tag), progressive; W, H, F from the header
``.yuv``                        raw I420 (Y, U, V planes, no header); needs ``size=(W, H)`` and ``fps``
a folder                        its ``*.png`` files in lexical order, all one size; ``fps`` default 25
``.mp4 .mkv .webm .avi .mov``   decoded by the ffmpeg of ``imageio-ffmpeg``: as yuv420p when the
                                stream is 8-bit 4:2:0 with even sides, else as RGB
==============================  ================================================================

==============================  ================================================================
output (:func:`open_writer`)    what is written
==============================  ================================================================
``.y4m``                        ``YUV4MPEG2 W.. H.. F num:den Ip A1:1 C420``, written to a temporary
                                file beside it and renamed into place on close
a path without suffix           a folder of ``frame_00000.png`` ..., staged in a temporary folder
                                beside it and moved into place on close
==============================  ================================================================

A failed or abandoned write leaves no partial output. Every malformed input raises
:class:`~licodec.errors.LicodecError` with one line naming the file and what is wrong.
"""

from licodec.video.frames import FpsLike, Frame, VideoInfo
from licodec.video.readers import CONTAINER_SUFFIXES, DEFAULT_PNG_FPS, VideoReader, open_video
from licodec.video.writers import PNG_FRAME_NAME, VideoWriter, open_writer

__all__ = ["CONTAINER_SUFFIXES", "DEFAULT_PNG_FPS", "PNG_FRAME_NAME", "FpsLike", "Frame", "VideoInfo",
           "VideoReader", "VideoWriter", "open_video", "open_writer"]
