//! The crate's golden files (`tests/golden/`), checked with the test kit's
//! [`GoldenFile`].

pub use geowallet_testkit::golden_file::GoldenFile;

/// `tests/golden/{name}` of this crate; today's encoding goes under the
/// test's temp dir for review when it differs.
pub fn golden(name: &'static str) -> GoldenFile {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let review = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("golden");
    GoldenFile::open(&dir, name, review)
}
