#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| opensim_packet::fuzz::packet_decode(data));
