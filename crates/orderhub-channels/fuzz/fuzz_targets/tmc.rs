#![no_main]

use libfuzzer_sys::fuzz_target;

// Taobao's message service: one WebSocket frame of its binary framing, as the relay reads it.
fuzz_target!(|data: &[u8]| orderhub_channels_fuzz::exercise_tmc(data));
