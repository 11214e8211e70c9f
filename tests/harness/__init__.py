"""Real parts for tests: a mosquitto broker, an ALSA virtual microphone, the shared data."""
