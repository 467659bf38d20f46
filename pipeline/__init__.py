"""livesub: offline streaming speech translation.

Public API: the event types, the configuration, the model resolver and the runner. Stages live
in ``pipeline.stages``, the models they call in ``pipeline.backends``, audio in ``pipeline.inputs``,
outputs in ``pipeline.outputs``, pure algorithms in
``pipeline.algos``.
"""

from pipeline.config import Config, load_config
from pipeline.errors import AudioError, ConfigError, LivesubError, ModelError
from pipeline.events import AudioChunk, SpeechAudio, SpeechSegment, Subtitle, Transcript, Translation, Word

__all__ = [
    "AudioChunk",
    "AudioError",
    "Config",
    "ConfigError",
    "LivesubError",
    "ModelError",
    "SpeechAudio",
    "SpeechSegment",
    "Subtitle",
    "Transcript",
    "Translation",
    "Word",
    "load_config",
]

__version__ = "0.1.0"
