//! The cost of the sealed transport's HPKE per request, next to the
//! envelope encryption every write and read does anyway (a fresh secret
//! key, AES-256-GCM, the key wrapped under the data key), measured in the
//! same run: `cargo bench -p coffer-crypto --bench sealing`.

#![allow(clippy::unwrap_used)]

use coffer_crypto::sealing::{
    self, RequestBinding, ResponseBinding, TransportKey, open_request, seal_request, seal_response,
};
use coffer_crypto::{Algorithm, KeyMaterial, OutputPrefix, WrappingKey, open_value, seal_value};
use criterion::{Criterion, criterion_group, criterion_main};

const VALUE: &[u8] =
    b"{\"value\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}";

const REQUEST: RequestBinding<'static> = RequestBinding {
    method: "PUT",
    path: "/v1/secrets/load/key-1",
    timestamp: 1_765_000_000,
    kid: "1",
};

const RESPONSE: ResponseBinding<'static> = ResponseBinding {
    path: "/v1/secrets/load/key-1",
    version: 1,
    kid: "1",
};

fn sealing(c: &mut Criterion) {
    let server = TransportKey::generate();
    let client = TransportKey::generate();
    let data_key = WrappingKey::new(
        1,
        OutputPrefix::Tink,
        KeyMaterial::generate(Algorithm::Aes256Gcm),
    );
    let stored = seal_value(&data_key, "load", "key-1", 1, VALUE);
    let request = seal_request(&server.public_key(), &REQUEST, VALUE).unwrap();

    let mut group = c.benchmark_group("per request");
    group.bench_function("baseline: envelope seal (write)", |b| {
        b.iter(|| seal_value(&data_key, "load", "key-1", 1, VALUE))
    });
    group.bench_function("baseline: envelope open (read)", |b| {
        b.iter(|| open_value(&data_key, "load", "key-1", 1, &stored).unwrap())
    });
    group.bench_function("server: open a sealed write", |b| {
        b.iter(|| open_request(&server, &REQUEST, &request.enc, &request.ciphertext).unwrap())
    });
    group.bench_function("server: seal a read (auth mode)", |b| {
        b.iter(|| seal_response(&client.public_key(), &server, &RESPONSE, VALUE).unwrap())
    });
    group.bench_function("client: seal a write", |b| {
        b.iter(|| seal_request(&server.public_key(), &REQUEST, VALUE).unwrap())
    });
    group.bench_function("client: one-time key", |b| b.iter(TransportKey::generate));
    let response = seal_response(&client.public_key(), &server, &RESPONSE, VALUE).unwrap();
    group.bench_function("client: open a sealed read", |b| {
        b.iter(|| {
            sealing::open_response(
                &client,
                &server.public_key(),
                &RESPONSE,
                &response.enc,
                &response.ciphertext,
            )
            .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, sealing);
criterion_main!(benches);
