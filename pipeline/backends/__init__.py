"""The models and programs the stages call: Whisper, Silero, translators."""
