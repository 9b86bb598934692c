fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Prefer a protoc named by the environment; otherwise Debian's protobuf-compiler.
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_protos(&["proto/geowallet.proto", "proto/raft.proto"], &["proto"])?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
