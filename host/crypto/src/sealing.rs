//! HPKE (RFC 9180) for the sealed transport, in one suite:
//! DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM, single-shot.
//!
//! A request is sealed to the server's transport key in base mode; a
//! response is sealed to the client's one-time key in auth mode, under the
//! server's transport key, so the client also learns that the server
//! sealed it and not something in between. Each seal is bound to what it
//! is about — the method, the path, the time and the key for a request;
//! the path, the version and the key for a response — through its AAD,
//! built here so server and clients agree on it byte for byte:
//!
//! ```text
//! request:  info "coffer sealed request v1"
//!           aad  "coffer.sealed-request.v1\n{METHOD}\n{path}\n{timestamp}\n{kid}"
//! response: info "coffer sealed response v1"
//!           aad  "coffer.sealed-response.v1\nGET\n{path}\n{version}\n{kid}"
//! ```

use std::fmt;

use hpke::aead::AesGcm256;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use zeroize::Zeroizing;

use crate::error::{CryptoError, Result};

type Kem = X25519HkdfSha256;
type PrivateKey = <Kem as hpke::Kem>::PrivateKey;
type PublicKey = <Kem as hpke::Kem>::PublicKey;
type EncappedKey = <Kem as hpke::Kem>::EncappedKey;

/// Length of an X25519 public key, private key and encapsulated key.
pub const KEY_LEN: usize = 32;

/// The request header carrying a client's one-time public key (base64):
/// the value read is sealed to it.
pub const SEAL_TO_HEADER: &str = "coffer-seal-to";

/// The suite, as documentation and `/v1/sys/transport-key` name it.
pub const SUITE: &str = "DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM";

const REQUEST_INFO: &[u8] = b"coffer sealed request v1";
const RESPONSE_INFO: &[u8] = b"coffer sealed response v1";

/// An X25519 key pair: the server's transport key, or a client's one-time
/// key. The private half is wiped when the key is dropped.
#[derive(Clone)]
pub struct TransportKey {
    private: PrivateKey,
    public: PublicKey,
}

impl fmt::Debug for TransportKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TransportKey(public {})", hex::encode(self.public_key()))
    }
}

impl TransportKey {
    /// A fresh key pair from the OS's randomness.
    pub fn generate() -> TransportKey {
        let (private, public) = Kem::gen_keypair(&mut rand::rngs::OsRng);
        TransportKey { private, public }
    }

    /// The key pair whose private key is `secret`: any 32 bytes make one
    /// (X25519 clamps them).
    pub fn from_secret(secret: &[u8]) -> Result<TransportKey> {
        let private = PrivateKey::from_bytes(secret)
            .map_err(|_| CryptoError::Malformed("an X25519 private key is 32 bytes"))?;
        let public = Kem::sk_to_pk(&private);
        Ok(TransportKey { private, public })
    }

    /// The public key's 32 bytes.
    pub fn public_key(&self) -> [u8; KEY_LEN] {
        let mut bytes = [0u8; KEY_LEN];
        self.public.write_exact(&mut bytes);
        bytes
    }
}

/// A sealed message: the encapsulated key and the ciphertext (the
/// plaintext's length plus a 16-byte tag).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sealed {
    pub enc: [u8; KEY_LEN],
    pub ciphertext: Vec<u8>,
}

/// The path a seal about the secret `name` in `namespace` is bound to:
/// the route's, decoded.
pub fn secret_path(namespace: &str, name: &str) -> String {
    format!("/v1/secrets/{namespace}/{name}")
}

/// What a sealed request is bound to. `path` is the request's path as its
/// route names it, decoded: `/v1/secrets/{namespace}/{name}`.
#[derive(Clone, Copy, Debug)]
pub struct RequestBinding<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// Seconds since the Unix epoch, as the client's clock tells them.
    pub timestamp: u64,
    /// The id of the server's transport key it is sealed to.
    pub kid: &'a str,
}

impl RequestBinding<'_> {
    /// The AAD this binding makes.
    pub fn aad(&self) -> Vec<u8> {
        format!(
            "coffer.sealed-request.v1\n{}\n{}\n{}\n{}",
            self.method, self.path, self.timestamp, self.kid
        )
        .into_bytes()
    }
}

/// What a sealed response is bound to: the path read, the version it
/// answers with, and the server key that sealed it.
#[derive(Clone, Copy, Debug)]
pub struct ResponseBinding<'a> {
    pub path: &'a str,
    pub version: u32,
    pub kid: &'a str,
}

impl ResponseBinding<'_> {
    /// The AAD this binding makes.
    pub fn aad(&self) -> Vec<u8> {
        format!(
            "coffer.sealed-response.v1\nGET\n{}\n{}\n{}",
            self.path, self.version, self.kid
        )
        .into_bytes()
    }
}

fn public_key(bytes: &[u8]) -> Result<PublicKey> {
    PublicKey::from_bytes(bytes)
        .map_err(|_| CryptoError::Malformed("an X25519 public key is 32 bytes"))
}

fn encapped_key(bytes: &[u8]) -> Result<EncappedKey> {
    EncappedKey::from_bytes(bytes)
        .map_err(|_| CryptoError::Malformed("an encapsulated key is 32 bytes"))
}

fn sealed(seal: std::result::Result<(EncappedKey, Vec<u8>), hpke::HpkeError>) -> Result<Sealed> {
    // Encapsulation fails only for a public key of low order, whose shared
    // secret would be all zeros.
    let (enc, ciphertext) =
        seal.map_err(|_| CryptoError::Malformed("not a usable X25519 public key"))?;
    let mut bytes = [0u8; KEY_LEN];
    enc.write_exact(&mut bytes);
    Ok(Sealed {
        enc: bytes,
        ciphertext,
    })
}

/// Seals a request's body to the server's transport key (a client's work).
pub fn seal_request(
    server_public: &[u8],
    binding: &RequestBinding<'_>,
    plaintext: &[u8],
) -> Result<Sealed> {
    let server = public_key(server_public)?;
    sealed(hpke::single_shot_seal::<AesGcm256, HkdfSha256, Kem, _>(
        &OpModeS::Base,
        &server,
        REQUEST_INFO,
        plaintext,
        &binding.aad(),
        &mut rand::rngs::OsRng,
    ))
}

/// Opens a request sealed to `server`. Any mismatch — another key, another
/// binding, one bit changed — is [`CryptoError::Integrity`].
pub fn open_request(
    server: &TransportKey,
    binding: &RequestBinding<'_>,
    enc: &[u8],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let enc = encapped_key(enc)?;
    hpke::single_shot_open::<AesGcm256, HkdfSha256, Kem>(
        &OpModeR::Base,
        &server.private,
        &enc,
        REQUEST_INFO,
        ciphertext,
        &binding.aad(),
    )
    .map(Zeroizing::new)
    .map_err(|_| CryptoError::Integrity)
}

/// Seals a response to a client's one-time key, authenticated as `server`.
pub fn seal_response(
    client_public: &[u8],
    server: &TransportKey,
    binding: &ResponseBinding<'_>,
    plaintext: &[u8],
) -> Result<Sealed> {
    let client = public_key(client_public)?;
    let mode = OpModeS::Auth((server.private.clone(), server.public.clone()));
    sealed(hpke::single_shot_seal::<AesGcm256, HkdfSha256, Kem, _>(
        &mode,
        &client,
        RESPONSE_INFO,
        plaintext,
        &binding.aad(),
        &mut rand::rngs::OsRng,
    ))
}

/// Opens a response sealed to `client` by the server whose transport key
/// is `server_public` (a client's work).
pub fn open_response(
    client: &TransportKey,
    server_public: &[u8],
    binding: &ResponseBinding<'_>,
    enc: &[u8],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let server = public_key(server_public)?;
    let enc = encapped_key(enc)?;
    hpke::single_shot_open::<AesGcm256, HkdfSha256, Kem>(
        &OpModeR::Auth(server),
        &client.private,
        &enc,
        RESPONSE_INFO,
        ciphertext,
        &binding.aad(),
    )
    .map(Zeroizing::new)
    .map_err(|_| CryptoError::Integrity)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const REQUEST: RequestBinding<'static> = RequestBinding {
        method: "PUT",
        path: "/v1/secrets/payments/db/password",
        timestamp: 1_765_000_000,
        kid: "1",
    };

    const RESPONSE: ResponseBinding<'static> = ResponseBinding {
        path: "/v1/secrets/payments/db/password",
        version: 3,
        kid: "1",
    };

    #[test]
    fn a_request_opens_with_the_server_key_and_its_own_binding_only() {
        let server = TransportKey::generate();
        let sealed = seal_request(&server.public_key(), &REQUEST, b"{\"value\":\"s3\"}").unwrap();
        assert_eq!(sealed.ciphertext.len(), 14 + 16);
        let opened = open_request(&server, &REQUEST, &sealed.enc, &sealed.ciphertext).unwrap();
        assert_eq!(opened.as_slice(), b"{\"value\":\"s3\"}");

        let other_server = TransportKey::generate();
        let open = |key: &TransportKey, binding: &RequestBinding<'_>| {
            open_request(key, binding, &sealed.enc, &sealed.ciphertext)
        };
        assert_eq!(open(&other_server, &REQUEST), Err(CryptoError::Integrity));
        for binding in [
            RequestBinding {
                method: "POST",
                ..REQUEST
            },
            RequestBinding {
                path: "/v1/secrets/payments/db/other",
                ..REQUEST
            },
            RequestBinding {
                timestamp: REQUEST.timestamp + 1,
                ..REQUEST
            },
            RequestBinding {
                kid: "2",
                ..REQUEST
            },
        ] {
            assert_eq!(open(&server, &binding), Err(CryptoError::Integrity));
        }
    }

    #[test]
    fn every_bit_of_a_sealed_request_is_authenticated() {
        let server = TransportKey::generate();
        let sealed = seal_request(&server.public_key(), &REQUEST, b"value").unwrap();
        let mut enc = sealed.enc;
        for bit in 0..enc.len() * 8 {
            enc[bit / 8] ^= 1 << (bit % 8);
            assert!(open_request(&server, &REQUEST, &enc, &sealed.ciphertext).is_err());
            enc[bit / 8] ^= 1 << (bit % 8);
        }
        let mut ciphertext = sealed.ciphertext.clone();
        for bit in 0..ciphertext.len() * 8 {
            ciphertext[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(
                open_request(&server, &REQUEST, &sealed.enc, &ciphertext),
                Err(CryptoError::Integrity)
            );
            ciphertext[bit / 8] ^= 1 << (bit % 8);
        }
        assert!(open_request(&server, &REQUEST, &sealed.enc[..31], &sealed.ciphertext).is_err());
    }

    #[test]
    fn a_response_opens_only_from_the_server_it_names() {
        let server = TransportKey::generate();
        let client = TransportKey::generate();
        let sealed = seal_response(&client.public_key(), &server, &RESPONSE, b"s3cret").unwrap();
        let opened = open_response(
            &client,
            &server.public_key(),
            &RESPONSE,
            &sealed.enc,
            &sealed.ciphertext,
        )
        .unwrap();
        assert_eq!(opened.as_slice(), b"s3cret");

        // Sealed to the same client by anyone else: refused.
        let impostor = TransportKey::generate();
        let forged = seal_response(&client.public_key(), &impostor, &RESPONSE, b"evil").unwrap();
        assert_eq!(
            open_response(
                &client,
                &server.public_key(),
                &RESPONSE,
                &forged.enc,
                &forged.ciphertext
            ),
            Err(CryptoError::Integrity)
        );
        let older = ResponseBinding {
            version: 2,
            ..RESPONSE
        };
        assert_eq!(
            open_response(
                &client,
                &server.public_key(),
                &older,
                &sealed.enc,
                &sealed.ciphertext
            ),
            Err(CryptoError::Integrity)
        );
    }

    #[test]
    fn a_key_is_its_secret_and_keys_of_the_wrong_length_are_refused() {
        let secret = [7u8; KEY_LEN];
        let key = TransportKey::from_secret(&secret).unwrap();
        assert_eq!(
            key.public_key(),
            TransportKey::from_secret(&secret).unwrap().public_key()
        );
        assert!(TransportKey::from_secret(&secret[..31]).is_err());
        assert!(seal_request(&[1u8; 31], &REQUEST, b"v").is_err());
        // The all-zero point has low order: no shared secret comes of it.
        assert!(seal_request(&[0u8; KEY_LEN], &REQUEST, b"v").is_err());
        assert!(!format!("{key:?}").contains(&hex::encode(secret)));
    }
}
