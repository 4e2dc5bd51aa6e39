"""Transcription of audio files of any length: streamed windows, text/JSON/SRT/VTT output."""
