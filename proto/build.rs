fn main() -> Result<(), Box<dyn std::error::Error>> {
    // protoc: PROTOC if set, else Debian's protobuf-compiler. The simulated
    // variant (used under `--cfg madsim`) is generated beside the real code.
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    madsim_tonic_build::configure()
        .file_descriptor_set_path(out.join("geowallet_descriptor.bin"))
        .build_server(true)
        .build_client(true)
        .compile_protos(&["proto/geowallet.proto", "proto/raft.proto"], &["proto"])?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
