//! memlens facade (in progress).
