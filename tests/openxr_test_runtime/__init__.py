"""The headless OpenXR test runtime (``runtime.c``) and the helpers that build and drive it."""
