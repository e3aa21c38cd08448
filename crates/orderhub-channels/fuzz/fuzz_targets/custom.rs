#![no_main]

use libfuzzer_sys::fuzz_target;

// The configurable channel, read by the example Acme B2B portal mapping.
fuzz_target!(|data: &[u8]| orderhub_channels_fuzz::exercise_mapped(data));
