//! Pure numeric detection code: features, isolation forest, random forest. No HTTP types.
