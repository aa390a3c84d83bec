//! Writing the output envelope (DESIGN.md rule 5): exactly one JSON document, compact with
//! a trailing newline (`--pretty` to indent), to stdout or `--output FILE`.
//!
//! This is the only place in the workspace that writes stdout.

use crate::envelope::Envelope;
use crate::ui::redact;
use std::io::Write;
use std::path::Path;

/// Renders the envelope as the text that is written.
pub fn render(envelope: &Envelope, pretty: bool) -> String {
    let json = if pretty {
        serde_json::to_string_pretty(envelope)
    } else {
        serde_json::to_string(envelope)
    }
    .expect("an envelope always serialises: its maps have string keys");
    // Defence in depth: a secret that slipped into a field is still never written.
    let mut text = redact(&json);
    text.push('\n');
    text
}

/// Writes `bytes` to `path`, or to stdout when `path` is `None`. A closed stdout (the
/// reader went away: `| head`) is not an error.
pub fn write_document(bytes: &[u8], path: Option<&Path>) -> std::io::Result<()> {
    match path {
        Some(path) => std::fs::write(path, bytes),
        None => {
            let mut stdout = std::io::stdout().lock();
            match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
                Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                other => other,
            }
        }
    }
}

/// Writes input that is passed through unchanged (upstream failed), ending it with a
/// newline if it lacked one.
pub fn write_raw(raw: &[u8], path: Option<&Path>) -> std::io::Result<()> {
    let mut bytes = raw.to_vec();
    if bytes.last() != Some(&b'\n') {
        bytes.push(b'\n');
    }
    write_document(&bytes, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_output_is_one_line_with_a_newline() {
        let text = render(&Envelope::default(), false);
        assert_eq!(text, "{\"schema\":\"shipkit/v1\",\"failed\":null}\n");
    }

    #[test]
    fn pretty_output_is_indented() {
        let text = render(&Envelope::default(), true);
        assert!(text.starts_with("{\n  \"schema\""), "{text}");
        assert!(text.ends_with("}\n"));
    }
}
