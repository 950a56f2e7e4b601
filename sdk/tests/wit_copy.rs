//! The SDK carries its own copy of the WIT contract (so it builds outside
//! the coffer repository); in the repository, that copy must be the
//! contract the host is built from, file for file.

use std::path::Path;

#[test]
fn the_sdks_wit_is_the_hosts() {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("wit");
    let host = Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit");
    if !host.is_dir() {
        // Packaged: there is no repository around the crate.
        return;
    }
    let names = |dir: &Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(|entry| entry.ok())
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".wit"))
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        names(&sdk),
        names(&host),
        "sdk/wit and wit/ hold different files"
    );
    for name in names(&host) {
        let read = |dir: &Path| std::fs::read(dir.join(&name)).unwrap_or_default();
        assert!(
            read(&sdk) == read(&host),
            "sdk/wit/{name} differs from wit/{name}: copy wit/ into sdk/wit/"
        );
    }
}
