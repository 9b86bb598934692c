fn main() -> Result<(), Box<dyn std::error::Error>> {
    // protoc: PROTOC if set, else Debian's protobuf-compiler. The simulated
    // variant (used under `--cfg madsim`) is generated beside the real code.
    madsim_tonic_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_protos(&["proto/geowallet.proto", "proto/raft.proto"], &["proto"])?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
