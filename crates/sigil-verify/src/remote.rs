//! Remote key source (feature `remote`). Placeholder while being written.
