#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| geowallet_fuzz::client_api::run(data));
