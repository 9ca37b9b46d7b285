//! Generates the seismo.v1 types and the tonic client and server.
//!
//! protoc comes from `protoc-bin-vendored`, so building needs no system protoc.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; nothing else reads the environment concurrently.
    unsafe { std::env::set_var("PROTOC", protoc) };

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("seismo_descriptor.bin"))
        .compile_protos(
            &[
                "seismo/v1/detector.proto",
                "seismo/experiments/v1/experiments.proto",
                "seismo/forecast/v1/forecast.proto",
            ],
            &["."],
        )?;

    println!("cargo:rerun-if-changed=seismo/v1");
    println!("cargo:rerun-if-changed=seismo/forecast/v1");
    println!("cargo:rerun-if-changed=seismo/experiments/v1");
    Ok(())
}
