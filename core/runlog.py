"""The run log: an append-only file of framed, checksummed records.

Layout::

    header  = b"TLOG" | u16 format version | u16 reserved        (8 bytes)
    frame   = u32 payload length | u32 crc32(payload) | payload  (little endian)

A reader never returns a record whose checksum does not match. Bad bytes
between frames (a frame torn by a crash or a full disk, with whole frames
after it) are skipped by one rule, ``Resync``: readers, the agent and the
server all use it. Byte offsets are stable, which is what makes upload by log
shipping (byte ranges addressed by offset) possible.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import mmap
import os
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, NamedTuple

import msgspec

from .records import FORMAT_VERSION, Record, decode, encode

MAGIC = b"TLOG"
HEADER = struct.Struct("<4sHH")
FRAME = struct.Struct("<II")
HEADER_SIZE = HEADER.size
#: Frames larger than this are treated as corruption by readers.
MAX_FRAME = 256 * 1024 * 1024


class RunLogError(Exception):
    """The file is not a run log (bad magic) or has an unknown format version."""


def header_bytes() -> bytes:
    return HEADER.pack(MAGIC, FORMAT_VERSION, 0)


def frame(payload: bytes) -> bytes:
    """Frame one encoded record."""
    return FRAME.pack(len(payload), zlib.crc32(payload)) + payload


_pack_frame = FRAME.pack_into
_crc32 = zlib.crc32


def frame_record(record: Record) -> bytes:
    return frame(encode(record))


def check_header(data: bytes) -> None:
    """Raise ``RunLogError`` unless ``data`` starts with a valid header."""
    if len(data) < HEADER_SIZE:
        raise RunLogError("run log header is incomplete")
    magic, version, _ = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise RunLogError("not a trackline run log (bad magic)")
    if version > FORMAT_VERSION:
        raise RunLogError(
            f"run log format {version} is newer than this trackline ({FORMAT_VERSION})"
        )


class Frame(NamedTuple):
    """A decoded record and the byte range it occupies in its file."""

    start: int
    end: int
    record: Record


def frame_end(view: memoryview, pos: int) -> int | None:
    """End of the frame at ``pos`` if its length and CRC check out, else ``None``.

    No record encodes to nothing, so a frame of length 0 is never valid: a zero header
    is either the end of the data or bad bytes (a frame whose header has not arrived).
    """
    size = len(view)
    if pos + FRAME.size > size:
        return None
    length, crc = FRAME.unpack_from(view, pos)
    end: int = pos + FRAME.size + length
    if not 0 < length <= MAX_FRAME or end > size or zlib.crc32(view[pos + FRAME.size : end]) != crc:
        return None
    return end


#: Bytes of checksumming ``Resync`` may spend per byte of its range (and 1 MiB more):
#: bad bytes crafted so that every offset claims a long frame cannot cost quadratic time.
RESYNC_WORK = 8


class Resync:
    """The resynchronisation rule, over one byte range: where the next whole frame starts.

    After a bad frame at ``pos``, the next frame is the first offset after it whose
    length and CRC check out. Readers, the agent and the server all skip bad bytes
    by this rule. No such offset means the bad bytes are a torn *tail* (or a frame
    still being written), which a reader leaves alone; anything else is a torn
    *middle*, skipped.
    """

    def __init__(self, view: memoryview) -> None:
        self.view = view
        self.work_left = RESYNC_WORK * len(view) + (1 << 20)
        self._data_end: int | None = None

    @property
    def data_end(self) -> int:
        """Where the range's zero tail begins (``data_end``), computed once."""
        if self._data_end is None:
            self._data_end = data_end(self.view)
        return self._data_end

    def next_frame(self, pos: int) -> int | None:
        """The start of the first whole, valid frame after ``pos``; ``None`` if there is none."""
        view = self.view
        size = len(view)
        unpack = FRAME.unpack_from
        for candidate in range(pos + 1, size - FRAME.size + 1):
            length = unpack(view, candidate)[0]
            if length == 0 and candidate >= self.data_end:
                return None  # only zeros from here: no frame after the bad bytes
            # Cheap test first: most offsets of bad bytes claim a length past the end.
            if candidate + FRAME.size + length <= size:
                self.work_left -= length
                if self.work_left < 0:
                    return None  # give up: the rest counts as a torn tail
                if frame_end(view, candidate) is not None:
                    return candidate
        return None


class Scan(NamedTuple):
    """What ``scan_frames`` found in a byte range (offsets relative to the range)."""

    payloads: list[tuple[int, int]]  # (start, end) of each whole, valid frame's payload
    pos: int  # just past the last whole frame, or at the bad bytes that stopped the scan
    partial: int  # bytes the frame at ``pos`` needs in all, when it has not fully arrived
    bad: bool  # bad bytes at ``pos`` with no valid frame after them (a torn tail)

    @property
    def end(self) -> int:
        """Just past the last whole, valid frame (0: none): what a reader may take."""
        return self.payloads[-1][1] if self.payloads else 0

    @property
    def skipped(self) -> bool:
        """Whether bad bytes were skipped before or between the whole frames (``Resync``)."""
        head = FRAME.size
        last = 0
        for begin, end in self.payloads:
            if begin - head != last:
                return True
            last = end
        return False


#: How many times a reader reads a torn range again (``torn``) before it takes the range
#: as it is: the writer is past a frame within microseconds, so once is usually enough.
MAX_REREADS = 100


def torn(file: BinaryIO, offset: int, data: bytes, end: int, scan: Scan) -> bool:
    """Whether ``data``, read at ``offset`` of a log its writer may be appending to, was
    torn up to ``end`` (where ``scan`` of it took frames up to).

    A read copies the file page by page: descheduled after a page the writer had not
    filled yet, it reads on into pages the writer filled meanwhile, so a frame with a
    hole of zeros comes back with whole frames after it, and ``Resync`` would skip that
    frame for good. So where the scan skipped bad bytes, the same bytes are read again:
    if they differ, the read was torn (read it again); if not, the bad bytes are really
    there (a crash's torn frame) and are skipped, as every reader does.
    """
    if not scan.skipped:
        return False
    file.seek(offset)
    return file.read(end) != data[:end]


def data_end(view: memoryview) -> int:
    """Offset just past the last non-zero byte of ``view``: where its zero tail begins.

    A run log may be longer than its data (extended ahead of the writer, or zero-filled
    by a file system after a crash). A zero frame header (length 0, CRC 0) with only
    zeros after it is the end of the data, never a torn frame; zeros with a frame after
    them are read as before.
    """
    end = len(view)
    while end > 0:  # backwards a block at a time: copy and compare run at memory speed
        start = max(0, end - len(_ZERO_BLOCK))
        block = view[start:end].tobytes()
        if block != (_ZERO_BLOCK if len(block) == len(_ZERO_BLOCK) else bytes(len(block))):
            return start + len(block.rstrip(b"\0"))
        end = start
    return 0


_ZERO_BLOCK = bytes(64 * 1024)


def data_size(path: str | os.PathLike[str]) -> int:
    """The size of a run log file without its zero tail (a mapped log's reserved room).

    For progress and status; byte offsets of frames never depend on it. ``0`` if missing.
    """
    try:
        with open(path, "rb") as file:
            size = file.seek(0, os.SEEK_END)
            while size > 0:
                start = max(0, size - (256 << 10))
                file.seek(start)
                kept = data_end(memoryview(file.read(size - start)))
                if kept:
                    return start + kept
                size = start
    except FileNotFoundError:
        pass
    return 0


def scan_frames(view: memoryview, wait_for_partial: bool = False) -> Scan:
    """The frames of a byte range beginning at a frame: the one frame decoder.

    Bad bytes followed by a valid frame are skipped (``Resync``). With
    ``wait_for_partial`` (a range whose later bytes may still arrive), a frame whose
    length fits but whose end is past the range stops the scan with ``partial`` set
    instead of being treated as bad bytes. Readers, the agent and the server use this.
    """
    # The hottest loop of ingest: locals, no per-frame calls but the CRC.
    unpack, crc32 = FRAME.unpack_from, zlib.crc32
    head = FRAME.size
    size = len(view)
    payloads: list[tuple[int, int]] = []
    pos = 0
    resync: Resync | None = None
    while pos + head <= size:
        length, crc = unpack(view, pos)
        end = pos + head + length
        if length == 0:
            resync = resync or Resync(view)  # once: a scan never copies its range twice
            if crc == 0 and pos >= resync.data_end:
                return Scan(payloads, pos, 0, False)  # a pre-extended file's zeros: end of data
        elif length <= MAX_FRAME and end <= size and crc32(view[pos + head : end]) == crc:
            payloads.append((pos + head, end))
            pos = end
            continue
        if wait_for_partial and 0 < length <= MAX_FRAME and end > size:
            return Scan(payloads, pos, head + length, False)
        resync = resync or Resync(view)
        found = resync.next_frame(pos)
        if found is None:
            return Scan(payloads, pos, 0, True)
        pos = found
    partial = head if wait_for_partial and pos < size else 0
    return Scan(payloads, pos, partial, False)


def iter_frames(data: bytes | memoryview, start: int = 0) -> Iterator[Frame]:
    """Decode the frames of ``data`` (a byte range of a run log beginning at a frame).

    ``start`` is the file offset of ``data[0]``; yielded offsets are file offsets.
    Bad bytes followed by a valid frame are skipped (``Resync``); a frame whose
    checksum holds but which does not decode (a newer record type) is skipped
    whole. Iteration ends at a torn tail.
    """
    view = memoryview(data)
    for begin, end in scan_frames(view).payloads:
        try:
            record = decode(view[begin:end])
        except msgspec.DecodeError:
            continue
        yield Frame(start + begin - FRAME.size, start + end, record)


def valid_length(data: bytes | memoryview, start: int = 0) -> int:
    """Offset (relative to ``data``) just past the last whole, valid frame."""
    end = 0
    for f in iter_frames(data, start):
        end = f.end - start
    return end


def read_log(path: str | os.PathLike[str]) -> list[Frame]:
    """Read every valid frame of a run log file; ``[]`` if the file is missing or empty."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return []
    return decode_log(data)


def decode_log(data: bytes) -> list[Frame]:
    """Every valid frame of a whole run log already in memory; ``[]`` if it is empty."""
    if not data:
        return []
    check_header(data)
    return list(iter_frames(memoryview(data)[HEADER_SIZE:], HEADER_SIZE))


def read_records(path: str | os.PathLike[str]) -> list[Record]:
    return [f.record for f in read_log(path)]


class WriteFailed(OSError):
    """Only the first ``written`` frames reached the file (whole); the others, not a byte."""

    def __init__(self, cause: OSError, written: int) -> None:
        super().__init__(cause.errno, cause.strerror or str(cause))
        self.written = written


#: ``madvise`` option (Linux 5.14): fault pages in for writing, without changing them, so
#: that the training thread's copies never take a page fault. Not named in Python 3.11.
_MADV_POPULATE_WRITE = getattr(mmap, "MADV_POPULATE_WRITE", 23)


class RawFile:
    """The few system calls a ``LogFile`` makes on its descriptor (tests inject faults here)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def pwrite(self, data: memoryview, offset: int) -> int:
        return os.pwrite(self.fd, data, offset)

    def truncate(self, size: int) -> None:
        os.ftruncate(self.fd, size)

    def free_bytes(self) -> int:
        """What the file system has left for this file's owner."""
        stat = os.fstatvfs(self.fd)
        return stat.f_bavail * stat.f_frsize

    def allocate(self, offset: int, length: int) -> None:
        """Reserve disk blocks for ``[offset, offset + length)``, growing the file to cover it."""
        os.posix_fallocate(self.fd, offset, length)

    def map(self, offset: int, length: int) -> mmap.mmap:
        """Map ``[offset, offset + length)`` shared and writable, its pages faulted in now."""
        window = mmap.mmap(
            self.fd, length, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=offset
        )
        with contextlib.suppress(OSError):  # Linux < 5.14: the writes fault them in instead
            window.madvise(_MADV_POPULATE_WRITE)
        return window

    def fsync(self) -> None:
        os.fsync(self.fd)

    def close(self) -> None:
        os.close(self.fd)


#: File systems where a page of a reserved (``posix_fallocate``) range, written through a
#: shared mapping, never needs a new block: a full disk cannot fault (SIGBUS) the writer.
#: Copy-on-write and network file systems (btrfs, zfs, nfs, ...) are not among them.
MAPPABLE_FILE_SYSTEMS = frozenset({"ext4", "ext3", "xfs", "tmpfs", "overlay"})


def file_system(path: str | os.PathLike[str]) -> str | None:
    """The type of the file system ``path`` is on (``/proc/self/mountinfo``), or ``None``."""
    target = os.path.realpath(path)
    best, kind = -1, None
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as info:
            for line in info:
                fields = line.split()
                if "-" not in fields:
                    continue
                mount = fields[4].replace("\\040", " ")
                inside = target == mount or target.startswith(mount.rstrip("/") + "/")
                if inside and len(mount) > best:
                    best, kind = len(mount), fields[fields.index("-") + 1]
    except OSError:
        return None
    return kind


def can_map(path: str | os.PathLike[str]) -> bool:
    """Whether a run log at ``path`` may be written through a shared mapping."""
    return file_system(path) in MAPPABLE_FILE_SYSTEMS


#: A mapped run log is reserved and mapped in windows of this many bytes (a power of two).
WINDOW_SHIFT = 21
WINDOW = 1 << WINDOW_SHIFT
#: Whole windows kept reserved and mapped past the one the data ends in.
WINDOWS_AHEAD = 1
#: Room is reserved only while the disk keeps this much free besides: the reservation
#: must never be what fills a disk that the agent, the console log or the user's own
#: checkpoints need. Nearer full, frames go through the writer thread as unmapped.
RESERVE_FLOOR = 8 * 1024 * 1024


class LogFile:
    """Appends framed records to a run log, creating it with a header if needed.

    A frame reaches the file whole or not at all: the file's end is tracked as
    the end of the last whole frame, and a failed write is cut back to it. On
    open, a torn tail (a killed writer) is moved aside to ``<name>.torn-<offset>``
    and cut; bad bytes with valid frames after them stay (readers skip them).

    With ``mapped``, the file is also reserved on disk (``posix_fallocate``) and
    memory-mapped ahead of its data, a window at a time, so that ``put`` appends a
    frame with one memory copy: the bytes are in the page cache, which outlives the
    process, before ``put`` returns. The reserved zeros past the data are not a torn
    frame (``data_end``); ``extend`` keeps room ahead, ``close`` cuts them off. Where
    more than one thread uses the file, each call but ``extend`` is made holding ``lock``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        raw: Callable[[int], RawFile] = RawFile,
        mapped: bool = False,
    ) -> None:
        self.path = Path(path)
        self.lock = threading.Lock()
        #: Every byte of ``[end, room)`` is reserved on disk and mapped: ``put`` writes there.
        self.room = 0
        #: Why the last ``extend`` could not reserve room (``None``: it could).
        self.refused: OSError | None = None
        self._mapped = mapped
        self._windows: dict[int, mmap.mmap] = {}
        # Not O_APPEND: every write goes to an explicit offset (pwrite), so that
        # the bytes of a failed write are overwritten, never appended after.
        self._raw = raw(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644))
        _hold_shared(self._raw.fd)  # so that no one trims the file under this writer
        #: End of the last whole frame: where the next frame goes.
        self.end = 0
        self._torn = False
        self._open()
        if mapped:
            self.extend()

    def _open(self) -> None:
        existing = self.path.read_bytes()
        if header_bytes().startswith(existing):  # new, or only part of a header made it
            try:
                self._write_all(memoryview(header_bytes()), 0)
            except _Partial as partial:
                self.close()
                raise partial.cause from None
            self.end = HEADER_SIZE
            return
        check_header(existing)
        self.end = HEADER_SIZE + valid_length(memoryview(existing)[HEADER_SIZE:], HEADER_SIZE)
        tail = existing[self.end :]
        if tail.strip(b"\0"):
            self._set_aside(tail)
        elif tail:  # only zeros past the data (a pre-extended file): nothing to keep
            self._cut()

    def _set_aside(self, tail: bytes) -> None:
        """Keep a torn tail's bytes in a file of their own, then cut it."""
        aside = self.path.with_name(f"{self.path.name}.torn-{self.end}")
        try:
            aside.write_bytes(tail)
        except OSError:
            # Nowhere to keep them: leave them in place; new frames go after them
            # and readers skip them (``Resync``). Nothing is deleted.
            aside.unlink(missing_ok=True)
            self.end += len(tail)
            return
        self._cut()

    def _cut(self) -> None:
        self._unmap()  # a page past the end of the file must never be written
        try:
            self._raw.truncate(self.end)
            self._torn = False
        except OSError:
            self._torn = True  # the next write overwrites the bytes; try again then

    def _write_all(self, data: memoryview, offset: int) -> int:
        """Write ``data`` at ``offset``; the bytes written before an error, on the error."""
        done = 0
        while done < len(data):
            try:
                n = self._raw.pwrite(data[done:], offset + done)
            except OSError as exc:
                raise _Partial(exc, done) from exc
            if n <= 0:
                raise _Partial(OSError(errno.EIO, "no progress writing the run log"), done)
            done += n
        return done

    def put(self, data: bytes) -> bool:
        """Append one framed record into the mapped room; ``False`` (nothing written) if it
        does not fit. A memory copy, no system call: the training thread's path."""
        end = self.end
        new = end + len(data)
        if new > self.room:
            return False
        offset = end & (WINDOW - 1)
        if offset + len(data) <= WINDOW:
            self._windows[end >> WINDOW_SHIFT][offset : offset + len(data)] = data
        else:
            self._copy(end, memoryview(data))
        self.end = new
        return True

    def put_payload(self, payload: bytes) -> bool:
        """Frame ``payload`` straight into the mapped room; ``False`` (nothing written) if
        it does not fit. The payload is copied first and its header last, so that a frame
        shows (a non-zero length) only once it is whole: a process killed mid-copy leaves
        zeros, the end of the data, not a torn frame."""
        end = self.end
        size = len(payload) + 8
        new = end + size
        if new > self.room:
            return False
        offset = end & (WINDOW - 1)
        if offset + size <= WINDOW:
            window = self._windows[end >> WINDOW_SHIFT]
            window[offset + 8 : offset + size] = payload
            _pack_frame(window, offset, size - 8, _crc32(payload))
        else:
            self._copy(end, memoryview(frame(payload)))
        self.end = new
        return True

    def _copy(self, pos: int, data: memoryview) -> None:
        """Copy ``data`` to ``pos`` across as many windows as it spans."""
        done = 0
        while done < len(data):
            offset = (pos + done) & (WINDOW - 1)
            n = min(WINDOW - offset, len(data) - done)
            self._windows[(pos + done) >> WINDOW_SHIFT][offset : offset + n] = data[done : done + n]
            done += n

    def extend(self) -> bool:
        """Reserve and map room until ``WINDOWS_AHEAD`` whole windows lie past the data.

        Called by one thread (the writer's) without ``lock``: the new windows lie past
        ``room``, where nothing writes until they are published. ``False`` (and ``refused``
        set) when the disk refuses: ``put`` then finds no room and frames take ``write``.
        """
        if not self._mapped or self._raw.fd < 0:
            return False
        with self.lock:
            end, room = self.end, self.room
        target = ((end >> WINDOW_SHIFT) + 1 + WINDOWS_AHEAD) << WINDOW_SHIFT
        while room < target:
            start = max(room, end)
            index = start >> WINDOW_SHIFT
            stop = (index + 1) << WINDOW_SHIFT
            try:
                if self._raw.free_bytes() < stop - start + RESERVE_FLOOR:
                    raise OSError(errno.ENOSPC, "too little free space to reserve more room")
                self._raw.allocate(start, stop - start)
                window = self._raw.map(index << WINDOW_SHIFT, WINDOW)
            except (OSError, ValueError) as exc:
                self.refused = exc if isinstance(exc, OSError) else OSError(str(exc))
                return False
            with self.lock:
                if self.end > start or self._raw.fd < 0:  # written or closed meanwhile
                    window.close()
                    return False
                self._windows[index] = window
                self.room = room = stop
        self.refused = None
        with self.lock:
            for index in [i for i in self._windows if (i + 1) << WINDOW_SHIFT <= self.end]:
                self._windows.pop(index).close()  # wholly below the data: never written again
        return True

    def release(self) -> None:
        """Stop mapping: unmap and cut the reserved zeros off; ``put`` finds no room after."""
        if self._mapped and self._raw.fd >= 0:
            self._cut()
        self._mapped = False

    def _unmap(self) -> None:
        for window in self._windows.values():
            window.close()
        self._windows.clear()
        self.room = min(self.room, self.end)

    def write(self, frames: Sequence[bytes]) -> None:
        """Write already framed records and hand them to the OS.

        Into the mapped room when they fit; otherwise with ``pwrite``. Raises
        ``WriteFailed`` (an ``OSError``) saying how many of ``frames`` reached the
        file whole; nothing of the others is left in it.
        """
        if self._torn:
            self._cut()
        data = b"".join(frames)
        if self.room and self.put(data):
            return
        self._unmap()  # past the room: a failed write is cut back, under the mapped pages
        try:
            self._write_all(memoryview(data), self.end)
        except _Partial as partial:
            written, size = 0, 0
            for f in frames:
                if size + len(f) > partial.done:
                    break
                size += len(f)
                written += 1
            self.end += size
            self._cut()
            raise WriteFailed(partial.cause, written) from partial.cause
        self.end += len(data)

    def append(self, record: Record) -> None:
        self.write([frame_record(record)])

    def sync(self) -> None:
        """``fsync``: the mapped frames too (they are the same page cache)."""
        self._raw.fsync()

    def close(self) -> None:
        """Unmap, cut the reserved zeros off (a mapped file) and close."""
        if self._raw.fd >= 0:
            if self._torn or self._windows or self._mapped:
                self._cut()
            self._raw.close()
            self._raw.fd = -1


def _hold_shared(fd: int, wait: float = 2.0) -> None:
    """Take a shared ``flock`` on a writer's file, waiting out a ``trim_reserved`` (briefly)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                return  # held for long by someone else: write anyway, as before locks
            time.sleep(0.01)
        except OSError:
            return  # no locks on this file system


def trim_reserved(path: str | os.PathLike[str], end: int) -> bool:
    """Cut a dead writer's reserved zeros off a mapped run log at ``end`` (the end of its
    last whole frame, as its follower read it). Nothing happens while any writer has the
    file open (it holds a shared lock) or when anything but zeros lies past ``end``."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # a writer has it open, or no locks here: leave it
        size = os.fstat(fd).st_size
        if size <= end:
            return False
        position = end
        while position < size:  # only zeros past the end, or leave it alone
            piece = os.pread(fd, min(1 << 20, size - position), position)
            if not piece or piece.strip(b"\0"):
                return False
            position += len(piece)
        os.ftruncate(fd, end)
        return True
    finally:
        os.close(fd)  # and the lock with it


class _Partial(Exception):
    def __init__(self, cause: OSError, done: int) -> None:
        super().__init__(cause)
        self.cause = cause
        self.done = done
