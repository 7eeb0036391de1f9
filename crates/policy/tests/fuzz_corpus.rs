#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Replays the fuzz corpus through the parser: no panic, the same answer twice, and the
//! hand-written seeds (`valid_*`, `invalid_*`) load or fail as their names say.

use std::path::Path;

use aegis_policy::{Format, parse_policies};

fn outcome(text: &str, format: Format) -> Result<Vec<String>, String> {
    parse_policies(text, format)
        .map(|ps| ps.iter().map(|p| p.name().to_owned()).collect())
        .map_err(|e| e.to_string())
}

#[test]
fn every_corpus_file_parses_deterministically_as_its_name_says() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/parse_policies");
    let mut seeds = 0;
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        files += 1;
        let Ok(text) = std::str::from_utf8(&bytes) else {
            continue;
        };
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        for format in [Format::Json, Format::Yaml] {
            let first = outcome(text, format);
            assert_eq!(
                first,
                outcome(text, format),
                "{name} ({format:?}) is not deterministic"
            );
        }
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .and_then(Format::from_extension);
        if let Some(format) = ext {
            let result = outcome(text, format);
            if name.starts_with("valid_") {
                seeds += 1;
                assert!(
                    result.as_ref().is_ok_and(|names| !names.is_empty()),
                    "{name}: {result:?}"
                );
            } else if name.starts_with("invalid_") {
                seeds += 1;
                assert!(result.is_err(), "{name} unexpectedly validated");
            }
        }
    }
    assert!(
        seeds >= 10,
        "only {seeds} hand-written seeds in {}",
        dir.display()
    );
    assert!(files >= seeds);
}
