//! The adapters against the simulators and the fixtures.
