#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| opensim_circuit::fuzz::handle_datagram(data));
