#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| geowallet_fuzz::move_step::run(data));
