//! Generated types of the Seismo gRPC API, package `seismo.v1`.
//!
//! The schema lives in `proto/seismo/v1/detector.proto`.

/// Messages and services of `seismo.v1`.
pub mod v1 {
    tonic::include_proto!("seismo.v1");
}

/// Messages and services of `seismo.experiments.v1`, the A/B test analysis
/// API in `proto/seismo/experiments/v1/experiments.proto`.
pub mod experiments {
    pub mod v1 {
        tonic::include_proto!("seismo.experiments.v1");
    }
}

/// Messages and services of `seismo.forecast.v1`, the forecast API in
/// `proto/seismo/forecast/v1/forecast.proto`.
pub mod forecast {
    pub mod v1 {
        tonic::include_proto!("seismo.forecast.v1");
    }
}

/// Encoded `FileDescriptorSet` of the API, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("seismo_descriptor");
