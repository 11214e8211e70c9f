"""Live capture from a PortAudio input device, kept alive by a watchdog."""

from __future__ import annotations

import logging
import threading
import time

from edge_asd.audio import SAMPLE_RATE
from edge_asd.capture.device_lookup import AudioDeviceError, InputDevice, find_input_device
from edge_asd.capture.producer import DEFAULT_CAPACITY_SECONDS
from edge_asd.capture.resampler import RingResampler
from edge_asd.capture.ringbuffer import RingBuffer
from edge_asd.capture.source import FINISHED, REALTIME, REOPENING, RUNNING, Source
from edge_asd.capture.watchdog import Backoff, stream_problem

log = logging.getLogger(__name__)

SAMPLE_FORMATS = {"int16": 1.0 / 32768.0, "float32": None}  # format -> scale into the ring
CHECK_SECONDS = 0.1  # how often the watchdog looks at the stream
HEALTHY_SECONDS = 10.0  # a stream that ran this long resets the reopen backoff


class DeviceSource(Source):
    """Frames of `channels` input channels of one device, at `sample_rate`, in real time.

    `device` is an index, a name or name substring, or None for the default input.
    When the device cannot capture at `sample_rate` (or `device_rate` is given), it is
    opened at its own rate and a thread resamples with soxr into the ring.

    `sample_format` is what PortAudio delivers: `int16` (the default: the models learn
    from 16-bit recordings, every card supports it natively, and it is what ALSA's file
    plugin replays exactly) or `float32` (the card's full resolution).

    A watchdog thread reopens the stream, waiting `backoff_seconds` doubling up to
    `max_backoff_seconds`, when PortAudio ends it or no audio came for `stall_seconds`;
    `health()` says why. Frames of a reopened stream follow a gap, so no window mixes
    audio from before and after it. `stop_after_seconds` makes a bounded capture that
    finishes (and is not reopened) after that much input.

    Construction raises AudioDeviceError when the device is not found or lacks channels;
    `start()` raises it when the first open fails.
    """

    pacing = REALTIME

    def __init__(
        self,
        device: int | str | None = None,
        channels: int = 1,
        sample_rate: int = SAMPLE_RATE,
        device_rate: int | None = None,
        sample_format: str = "int16",
        capacity_seconds: float = DEFAULT_CAPACITY_SECONDS,
        stall_seconds: float = 2.0,
        backoff_seconds: float = 0.5,
        max_backoff_seconds: float = 30.0,
        blocksize: int = 0,
        stop_after_seconds: float | None = None,
    ) -> None:
        if sample_format not in SAMPLE_FORMATS:
            raise ValueError(f"sample_format must be one of {tuple(SAMPLE_FORMATS)}")
        self._device_spec = device
        self.device = self._check_channels(find_input_device(device), channels)
        super().__init__(RingBuffer(round(capacity_seconds * sample_rate), channels, sample_rate))
        self.device_rate = device_rate
        self.opened_rate: int | None = None  # the rate the stream was last opened at, Hz
        self.sample_format = sample_format
        self.capacity_seconds = capacity_seconds
        self.stall_seconds = stall_seconds
        self.blocksize = blocksize
        self.stop_after_seconds = stop_after_seconds
        self._scale = SAMPLE_FORMATS[sample_format]
        self._backoff = Backoff(backoff_seconds, max_backoff_seconds)
        self._stream = None
        self._capture_ring = self.ring  # what the callback writes: `ring`, or a device-rate ring
        self._resampler: RingResampler | None = None
        self._frame_limit: int | None = None
        self._limit_reached = False
        self._callback_stop: type[Exception] = Exception  # sounddevice.CallbackStop, once open
        self._stream_finished = False
        self._closing = False
        self._opened_at = 0.0
        self._next_open_at = 0.0
        self._overflow_count = 0
        self._stopping = threading.Event()
        self._watchdog: threading.Thread | None = None

    @staticmethod
    def _check_channels(device: InputDevice, channels: int) -> InputDevice:
        if not 1 <= channels <= device.max_input_channels:
            raise AudioDeviceError(
                f"input device {device.name!r} has {device.max_input_channels} input "
                f"channels; {channels} were asked for"
            )
        return device

    @property
    def capture_rate(self) -> int:
        """The rate the device is opened at (before any resampling), in Hz."""
        return self._capture_ring.sample_rate

    def overflows(self) -> int:
        return self._overflow_count

    def start(self) -> None:
        """Open the stream and start the watchdog; raises AudioDeviceError if it cannot open."""
        if self._watchdog is not None:
            return
        self._open()
        self._set_state(RUNNING)
        self._watchdog = threading.Thread(target=self._watch, name="capture-watchdog", daemon=True)
        self._watchdog.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._watchdog is not None:
            self._watchdog.join()
        self._close_stream(flush=True)
        self._set_stopped()

    # The audio callback: PortAudio's thread. It copies and counts, nothing else.
    def _callback(self, indata, frames, time_info, status) -> None:
        if status.input_overflow:
            self._overflow_count += 1
        ring = self._capture_ring
        limit = self._frame_limit
        if limit is not None and ring.total_frames + frames >= limit:
            ring.write(indata[: limit - ring.total_frames], self._scale)
            self._limit_reached = True
            raise self._callback_stop
        ring.write(indata, self._scale)

    def _on_finished(self) -> None:
        if not self._closing:
            self._stream_finished = True

    def _open(self) -> None:
        import sounddevice as sd

        device = self._check_channels(find_input_device(self._device_spec), self.channels)
        rate = self._choose_rate(sd, device)
        self._prepare_rings(rate)
        self._callback_stop = sd.CallbackStop
        self._stream_finished = False
        self._closing = False
        stream = None
        try:
            stream = sd.InputStream(
                samplerate=rate,
                blocksize=self.blocksize,
                device=device.index,
                channels=self.channels,
                dtype=self.sample_format,
                callback=self._callback,
                finished_callback=self._on_finished,
            )
            stream.start()
        except (sd.PortAudioError, ValueError) as exc:
            if stream is not None:
                self._closing = True
                stream.close(ignore_errors=True)
            self._stop_resampler(flush=False)
            raise AudioDeviceError(
                f"cannot open input device {device.name!r} ({self.channels} channels, "
                f"{rate} Hz, {self.sample_format}): {exc}"
            ) from None
        self.device = device
        self.opened_rate = rate
        self._stream = stream
        self._opened_at = time.monotonic()
        if self._resampler is not None:
            self._resampler.start()

    def _choose_rate(self, sd, device: InputDevice) -> int:
        if self.device_rate is not None:
            return int(self.device_rate)
        try:
            sd.check_input_settings(
                device=device.index,
                channels=self.channels,
                dtype=self.sample_format,
                samplerate=self.sample_rate,
            )
            return self.sample_rate
        except (sd.PortAudioError, ValueError):
            log.info("%s cannot capture at %d Hz; resampling", device.name, self.sample_rate)
            return int(device.default_sample_rate)

    def _prepare_rings(self, rate: int) -> None:
        """Point the callback at the ring it writes, with a resampler when rates differ.

        Runs while no writer does (no stream, no resampler): a new stream's frames do not
        continue the last one's, so both rings get a gap that no window may span.
        """
        self._capture_ring.mark_gap()
        self.ring.mark_gap()
        if rate == self.sample_rate:
            self._capture_ring = self.ring
        else:
            if self._capture_ring is self.ring or self._capture_ring.sample_rate != rate:
                capacity = round(self.capacity_seconds * rate)
                self._capture_ring = RingBuffer(capacity, self.channels, rate)
            self._resampler = RingResampler(self._capture_ring, self.ring)
        if self.stop_after_seconds is not None:
            self._frame_limit = round(self.stop_after_seconds * rate)

    def _close_stream(self, flush: bool) -> None:
        """Close the stream and stop the resampler (with `flush`, after its last frames)."""
        stream, self._stream = self._stream, None
        if stream is not None:
            self._closing = True
            try:
                stream.abort()
                stream.close()
            except Exception as exc:  # a vanished device may fail to close; it is gone anyway
                log.debug("closing the stream failed: %s", exc)
        self._stop_resampler(flush)

    def _stop_resampler(self, flush: bool) -> None:
        resampler, self._resampler = self._resampler, None
        if resampler is not None:
            resampler.stop(flush=flush)

    def _watch(self) -> None:
        """The watchdog: reopen a dead stream with backoff, finish a bounded capture."""
        while not self._stopping.wait(CHECK_SECONDS):
            now = time.monotonic()
            if self._stream is None:
                if now >= self._next_open_at:
                    self._reopen()
                continue
            if self._limit_reached:
                self._close_stream(flush=True)
                self._set_state(
                    FINISHED,
                    f"{self.device.name}: captured the {self.stop_after_seconds:g} s asked for "
                    "(stop_after_seconds)",
                )
                return
            last_audio = self._capture_ring.last_write_monotonic
            problem = stream_problem(
                now, self._opened_at, last_audio, self._stream_finished, self.stall_seconds
            )
            if problem is not None:
                log.warning("%s: %s; reopening", self.device.name, problem)
                # Said before closing: closing a stream whose device hangs can block until
                # the driver gives up, and the machines must be `unknown` meanwhile.
                self._set_state(REOPENING, problem)
                self._close_stream(flush=False)
                self._next_open_at = now + self._backoff.next_delay()
            elif now - self._opened_at > HEALTHY_SECONDS:
                self._backoff.reset()

    def _reopen(self) -> None:
        try:
            self._open()
        except AudioDeviceError as exc:
            self._set_state(REOPENING, str(exc))
            self._next_open_at = time.monotonic() + self._backoff.next_delay()
            log.warning("%s; retrying", exc)
            return
        with self._lock:  # one change: no reader sees `running` with the old count
            self._state = RUNNING
            self._reason = None
            self._reopens += 1
        log.info("%s: stream reopened", self.device.name)
