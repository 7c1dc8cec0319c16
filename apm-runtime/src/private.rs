//! Items the macros' generated code names. Not part of the public API: no stability promise.
