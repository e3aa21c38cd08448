#![no_main]

use libfuzzer_sys::fuzz_target;
use orderhub_channels::ChannelKind;

fuzz_target!(|data: &[u8]| orderhub_channels_fuzz::exercise(ChannelKind::Wechat, data));
