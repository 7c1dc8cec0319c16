//! TLS for the intake transport: rustls with the `ring` provider (pure Rust plus a little
//! assembly; no OpenSSL headers or cmake needed to build).

/// Installs `ring` as rustls' process-wide crypto provider, unless one is already installed
/// (an application using rustls itself may have chosen one; we then use theirs).
pub(crate) fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
