//! File connector (in progress).
